package syncproto

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

var (
	t0      = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	devA    = "0193a000-0000-7000-8000-00000000000a"
	devB    = "0193a000-0000-7000-8000-00000000000b"
	housing = schema.V1().Form("housing_inspection")
	water   = schema.V1().Form("water_inspection")
	hh      = schema.V1().Form("household")
)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// storedBy builds a stored record whose fields were all written at version
// `version` by device dev at time at.
func storedBy(version int64, dev string, at time.Time, fields map[string]string) *StoredRecord {
	r := &StoredRecord{Version: version, Fields: map[string]json.RawMessage{}, Meta: map[string]FieldMeta{}}
	for k, v := range fields {
		r.Fields[k] = raw(v)
		r.Meta[k] = FieldMeta{Version: version, Device: dev, At: at}
	}
	return r
}

func in(op string, base int64, dev string, at time.Time, fields map[string]string) Incoming {
	m := map[string]json.RawMessage{}
	for k, v := range fields {
		m[k] = raw(v)
	}
	return Incoming{Op: op, BaseVersion: base, Fields: m, At: at, Device: dev}
}

func TestMergeCreateAppliesEveryField(t *testing.T) {
	out := Merge(housing, nil, in(OpUpsert, 0, devA, t0, map[string]string{"grade": `"C"`, "inspected_on": `"2026-11-20"`}))
	if out.Status != StatusApplied || out.Version != 1 {
		t.Fatalf("status %s version %d, want applied 1", out.Status, out.Version)
	}
	if string(out.Fields["grade"]) != `"C"` || out.Meta["grade"].Device != devA || out.Meta["grade"].Version != 1 {
		t.Fatalf("fields %v meta %v", out.Fields, out.Meta)
	}
}

func TestMergeRejectsImpossibleBases(t *testing.T) {
	if out := Merge(housing, nil, in(OpUpsert, 3, devA, t0, map[string]string{"grade": `"C"`})); out.Status != StatusRejected || out.Errors[0].Path != "base_version" {
		t.Errorf("create at base 3: %+v", out)
	}
	if out := Merge(housing, nil, in(OpDelete, 0, devA, t0, nil)); out.Status != StatusRejected || out.Errors[0].Path != "id" {
		t.Errorf("delete of missing record: %+v", out)
	}
	st := storedBy(2, devA, t0, map[string]string{"grade": `"A"`})
	if out := Merge(housing, st, in(OpUpsert, 5, devB, t0, map[string]string{"grade": `"B"`})); out.Status != StatusRejected {
		t.Errorf("base ahead of record: %+v", out)
	}
}

func TestMergeCurrentBaseAppliesAsIs(t *testing.T) {
	st := storedBy(3, devA, t0, map[string]string{"grade": `"D"`, "renovation": `"planned"`})
	out := Merge(housing, st, in(OpUpsert, 3, devB, t0.Add(-time.Hour), map[string]string{"grade": `"B"`}))
	if out.Status != StatusApplied || out.Version != 4 || string(out.Fields["grade"]) != `"B"` || len(out.Decisions) != 0 {
		t.Fatalf("got %+v", out)
	}
	if string(st.Fields["grade"]) != `"D"` {
		t.Fatal("Merge modified the stored record")
	}
}

func TestMergeStaleBaseUntouchedFieldApplies(t *testing.T) {
	st := storedBy(1, devA, t0, map[string]string{"grade": `"C"`, "renovation": `"none"`})
	st.Version = 2
	st.Fields["grade"] = raw(`"D"`)
	st.Meta["grade"] = FieldMeta{Version: 2, Device: devA, At: t0}
	out := Merge(housing, st, in(OpUpsert, 1, devB, t0, map[string]string{"renovation": `"planned"`}))
	if out.Status != StatusApplied || string(out.Fields["renovation"]) != `"planned"` || out.Version != 3 {
		t.Fatalf("got %+v", out)
	}
	if string(out.Fields["grade"]) != `"D"` {
		t.Fatalf("untouched field changed: %s", out.Fields["grade"])
	}
}

func TestMergeConcurrentSameValueIsNoOp(t *testing.T) {
	st := storedBy(2, devA, t0, map[string]string{"grade": `"D"`})
	out := Merge(housing, st, in(OpUpsert, 1, devB, t0, map[string]string{"grade": `"D"`}))
	if out.Status != StatusApplied || len(out.Changes) != 0 || len(out.Decisions) != 0 || out.Version != 2 {
		t.Fatalf("got %+v", out)
	}
}

func TestMergePolicies(t *testing.T) {
	type tc struct {
		name      string
		form      *schema.Form
		field     string
		stored    string
		incoming  string
		inAt      time.Time
		inDev     string
		wantKept  string
		wantState string
		status    string
	}
	cases := []tc{
		{"lww later incoming wins", housing, "inspected_on", `"2026-11-19"`, `"2026-11-20"`, t0.Add(time.Minute), devB, `"2026-11-20"`, StateAutoResolved, StatusMerged},
		{"lww earlier incoming loses", housing, "inspected_on", `"2026-11-19"`, `"2026-11-20"`, t0.Add(-time.Minute), devB, `"2026-11-19"`, StateAutoResolved, StatusMerged},
		{"lww tie larger device wins", housing, "renovation", `"planned"`, `"completed"`, t0, devB, `"completed"`, StateAutoResolved, StatusMerged},
		{"safety_first D over C", housing, "grade", `"D"`, `"C"`, t0.Add(time.Hour), devB, `"D"`, StateAutoResolved, StatusMerged},
		{"safety_first C to D", housing, "grade", `"C"`, `"D"`, t0.Add(-time.Hour), devB, `"D"`, StateAutoResolved, StatusMerged},
		{"safety_first quality false wins", water, "quality_ok", `true`, `false`, t0, devB, `false`, StateAutoResolved, StatusMerged},
		{"safety_first quality true loses", water, "quality_ok", `false`, `true`, t0.Add(time.Hour), devB, `false`, StateAutoResolved, StatusMerged},
		{"union merges sets", housing, "hazards", `["roof","walls"]`, `["foundation","roof"]`, t0, devB, `["foundation","roof","walls"]`, StateAutoResolved, StatusMerged},
		{"manual keeps stored and opens", hh, "members", `5`, `6`, t0.Add(time.Hour), devB, `5`, StateOpen, StatusConflict},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := storedBy(2, devA, t0, map[string]string{c.field: c.stored})
			out := Merge(c.form, st, in(OpUpsert, 1, c.inDev, c.inAt, map[string]string{c.field: c.incoming}))
			if out.Status != c.status {
				t.Fatalf("status %s, want %s", out.Status, c.status)
			}
			if len(out.Decisions) != 1 {
				t.Fatalf("decisions %+v, want one", out.Decisions)
			}
			d := out.Decisions[0]
			if string(d.Kept) != c.wantKept || d.State != c.wantState || string(d.Incoming) != c.incoming || string(d.Stored) != c.stored {
				t.Fatalf("decision %+v (kept %s), want kept %s state %s", d, d.Kept, c.wantKept, c.wantState)
			}
			got := out.Fields[c.field]
			if string(got) != c.wantKept {
				t.Fatalf("field now %s, want %s", got, c.wantKept)
			}
			if changed := c.wantKept != c.stored; changed != (out.Version == 3) {
				t.Fatalf("version %d; value changed: %v", out.Version, changed)
			}
		})
	}
}

func TestMergeDeviceNeverConflictsWithItself(t *testing.T) {
	// Device A pushed version 2 from base 1; its next offline edit still
	// carries base 1 and must apply, not conflict.
	st := storedBy(1, devB, t0, map[string]string{"members": `4`, "head_name": `"王芳"`})
	st.Version = 2
	st.Fields["members"] = raw(`5`)
	st.Meta["members"] = FieldMeta{Version: 2, Device: devA, At: t0}
	out := Merge(hh, st, in(OpUpsert, 1, devA, t0.Add(time.Minute), map[string]string{"members": `6`}))
	if out.Status != StatusApplied || len(out.Decisions) != 0 || string(out.Fields["members"]) != `6` {
		t.Fatalf("got %+v", out)
	}
}

func TestMergeDeleteAtStaleBase(t *testing.T) {
	st := storedBy(2, devA, t0, map[string]string{"members": `5`})
	out := Merge(hh, st, in(OpDelete, 1, devB, t0, nil))
	if out.Status != StatusConflict || out.Deleted || len(out.Decisions) != 1 || out.Decisions[0].Field != FieldDeleted || out.Decisions[0].State != StateOpen {
		t.Fatalf("stale delete after another device's edit: %+v", out)
	}
	if out.Version != 2 || len(out.Changes) != 0 {
		t.Fatalf("stale delete made a version: %+v", out)
	}
	// Only the deleting device changed the record since its base: applies.
	out = Merge(hh, st, in(OpDelete, 1, devA, t0, nil))
	if out.Status != StatusApplied || !out.Deleted || out.Version != 3 {
		t.Fatalf("own stale delete: %+v", out)
	}
}

func TestMergeUpsertToDeletedRecordOpensConflict(t *testing.T) {
	st := storedBy(1, devA, t0, map[string]string{"members": `5`})
	st.Version, st.Deleted = 2, true
	st.Meta[FieldDeleted] = FieldMeta{Version: 2, Device: devA, At: t0}
	out := Merge(hh, st, in(OpUpsert, 1, devB, t0.Add(time.Hour), map[string]string{"members": `6`}))
	if out.Status != StatusConflict || !out.Deleted || out.Decisions[0].Field != FieldDeleted || len(out.Changes) != 0 {
		t.Fatalf("got %+v", out)
	}
	if string(out.Decisions[0].Incoming) != `{"members":6}` {
		t.Fatalf("incoming not kept for the supervisor: %s", out.Decisions[0].Incoming)
	}
	// The deleting device's own later edit restores the record.
	out = Merge(hh, st, in(OpUpsert, 2, devA, t0.Add(time.Hour), map[string]string{"members": `6`}))
	if out.Status != StatusApplied || out.Deleted || string(out.Fields["members"]) != `6` {
		t.Fatalf("own restore: %+v", out)
	}
}

// TestMergeEditOfAMergedHouseholdNeverRestoresIt: a tablet that pulled the
// merge (its base is the merge version) and edits the merged-away
// household opens a _deleted conflict instead of bringing it back; the
// tombstone stays, its edit kept for the supervisor.
func TestMergeEditOfAMergedHouseholdNeverRestoresIt(t *testing.T) {
	st := storedBy(1, devA, t0, map[string]string{"members": `5`})
	st.Version, st.Deleted, st.MergedInto = 2, true, "0193a000-0000-7000-8000-0000000000ff"
	st.Meta[FieldDeleted] = FieldMeta{Version: 2, Device: devA, At: t0}
	for _, dev := range []string{devA, devB} {
		out := Merge(hh, st, in(OpUpsert, 2, dev, t0.Add(time.Hour), map[string]string{"members": `6`}))
		if out.Status != StatusConflict || !out.Deleted || len(out.Decisions) != 1 || out.Decisions[0].Field != FieldDeleted ||
			string(out.Decisions[0].Incoming) != `{"members":6}` || len(out.Changes) != 0 {
			t.Fatalf("edit by %s at the merge version: %+v", dev, out)
		}
	}
}

func TestMergeNoChangeNoVersion(t *testing.T) {
	st := storedBy(4, devA, t0, map[string]string{"grade": `"B"`})
	out := Merge(housing, st, in(OpUpsert, 4, devA, t0, map[string]string{"grade": `"B"`}))
	if out.Version != 4 || len(out.Changes) != 0 || out.Status != StatusApplied {
		t.Fatalf("got %+v", out)
	}
}

func TestMergeManualStillAppliesOtherFields(t *testing.T) {
	st := storedBy(2, devA, t0, map[string]string{"members": `5`, "head_name": `"李强"`})
	out := Merge(hh, st, in(OpUpsert, 1, devB, t0.Add(time.Hour), map[string]string{"members": `6`, "head_name": `"李 强"`}))
	if out.Status != StatusConflict {
		t.Fatalf("status %s", out.Status)
	}
	if string(out.Fields["members"]) != `5` || string(out.Fields["head_name"]) != `"李 强"` {
		t.Fatalf("fields %v", out.Fields)
	}
}

// TestMergedValueIsNotOneDevicesOwn: after a union or safety_first
// decision the value holds another device's contribution; the winning
// device's next stale edit must contend again, not overwrite it.
func TestMergedValueIsNotOneDevicesOwn(t *testing.T) {
	st := storedBy(2, devB, t0, map[string]string{"hazards": `["roof","walls"]`, "grade": `"C"`})
	first := Merge(housing, st, in(OpUpsert, 1, devA, t0, map[string]string{"hazards": `["foundation","roof"]`, "grade": `"D"`}))
	if string(first.Fields["hazards"]) != `["foundation","roof","walls"]` || string(first.Fields["grade"]) != `"D"` {
		t.Fatalf("first merge %v", first.Fields)
	}
	after := &StoredRecord{Version: first.Version, Fields: first.Fields, Meta: first.Meta}
	next := Merge(housing, after, in(OpUpsert, 1, devA, t0.Add(time.Minute), map[string]string{"hazards": `["foundation"]`, "grade": `"A"`}))
	if string(next.Fields["hazards"]) != `["foundation","roof","walls"]` || string(next.Fields["grade"]) != `"D"` {
		t.Fatalf("device A's stale edit erased device B's work: %v", next.Fields)
	}
	if len(next.Decisions) != 2 {
		t.Fatalf("decisions %+v", next.Decisions)
	}
}

// TestUpsertAfterSeenDeletionRestores: a device whose base includes the
// deletion edits the tombstone as it is.
func TestUpsertAfterSeenDeletionRestores(t *testing.T) {
	st := storedBy(1, devA, t0, map[string]string{"members": `5`})
	st.Version, st.Deleted = 2, true
	st.Meta[FieldDeleted] = FieldMeta{Version: 2, Device: devA, At: t0}
	out := Merge(hh, st, in(OpUpsert, 2, devB, t0.Add(time.Hour), map[string]string{"members": `6`}))
	if out.Status != StatusApplied || out.Deleted || out.Version != 3 {
		t.Fatalf("got %+v", out)
	}
}
