package syncproto

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// memTx is an in-memory PushTx: the push algorithm's rules are tested here
// in isolation, and again against real SQLite by the store contract tests.
type memTx struct {
	receipts   map[string]Receipt
	devices    map[string]int64
	records    map[string]StoredRecord
	log        []LogEntry
	conflicts  []ConflictEntry
	quarantine []QuarantineEntry
	duplicates []Duplicate
	rescoped   []rescoped
}

func newMemTx() *memTx {
	return &memTx{receipts: map[string]Receipt{}, devices: map[string]int64{}, records: map[string]StoredRecord{}}
}

func (m *memTx) Receipt(_ context.Context, id string) (*Receipt, error) {
	if r, ok := m.receipts[id]; ok {
		return &r, nil
	}
	return nil, nil
}
func (m *memTx) LastDeviceSeq(_ context.Context, d string) (int64, error) { return m.devices[d], nil }
func (m *memTx) Record(_ context.Context, id string) (*StoredRecord, error) {
	if r, ok := m.records[id]; ok {
		return &r, nil
	}
	return nil, nil
}
func (m *memTx) WriteVersion(_ context.Context, rec *StoredRecord, e LogEntry) (int64, error) {
	e.Seq = int64(len(m.log) + 1)
	m.log = append(m.log, e)
	m.records[rec.ID] = *rec
	return e.Seq, nil
}
func (m *memTx) UpdateMeta(_ context.Context, id string, meta map[string]FieldMeta) error {
	r := m.records[id]
	r.Meta = meta
	m.records[id] = r
	return nil
}
func (m *memTx) AddConflict(_ context.Context, c ConflictEntry) error {
	m.conflicts = append(m.conflicts, c)
	return nil
}
func (m *memTx) AddQuarantine(_ context.Context, q QuarantineEntry) error {
	m.quarantine = append(m.quarantine, q)
	return nil
}
func (m *memTx) SaveReceipt(_ context.Context, r Receipt) error {
	m.receipts[r.ChangesetID] = r
	m.devices[r.DeviceID] = r.DeviceSeq
	return nil
}
func (m *memTx) Head(context.Context) (int64, error) { return int64(len(m.log)), nil }
func (m *memTx) SimilarHouseholds(_ context.Context, village, id, regNo, name string) ([]*StoredRecord, error) {
	var out []*StoredRecord
	for _, r := range m.records {
		if r.Entity != "household" || r.ID == id || r.Village != village || r.Deleted {
			continue
		}
		if s, _ := stringField(r.Fields, "registration_no"); regNo != "" && s == regNo {
			out = append(out, &r)
		} else if s, _ := stringField(r.Fields, "head_name"); s == name {
			out = append(out, &r)
		}
	}
	return out, nil
}
func (m *memTx) AddDuplicate(_ context.Context, d Duplicate) error {
	m.duplicates = append(m.duplicates, d)
	return nil
}

func (m *memTx) ChildPlacements(_ context.Context, id string) ([]Placement, error) {
	var out []Placement
	for _, r := range m.records {
		if r.Parent == id {
			out = append(out, Placement{Entity: r.Entity, ID: r.ID, Version: r.Version, Village: r.Village})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
func (m *memTx) Rescope(_ context.Context, from Placement, village string, e LogEntry) error {
	e.Seq = int64(len(m.log) + 1)
	m.log = append(m.log, e)
	r := m.records[from.ID]
	r.Village = village
	m.records[from.ID] = r
	m.rescoped = append(m.rescoped, rescoped{from: from, village: village})
	return nil
}

// rescoped is one call of memTx.Rescope.
type rescoped struct {
	from    Placement
	village string
}

// memTx is its own PushStore: WritePush runs the push on it (nothing is
// rolled back; the tests of atomicity run against SQLite).
func (m *memTx) WritePush(ctx context.Context, _ int, fn func(context.Context, PushTx) error) error {
	return fn(ctx, m)
}
func (m *memTx) WriteReplay(ctx context.Context, n int, fn func(context.Context, ReplayTx, int) error) error {
	return errors.New("memTx replays no outboxes")
}
func (m *memTx) CursorKey() []byte { return []byte("test cursor key") }

var testCursors = NewCursorCodec([]byte("test cursor key"))

// applyChangeset pushes cs as actor into tx through a PushService whose
// clock stands at now.
func applyChangeset(tx *memTx, actor Actor, cs Changeset, now time.Time) (PushResponse, error) {
	return NewPushService(tx, PushOptions{Now: func() time.Time { return now }}).Push(context.Background(), actor, cs)
}

const (
	hhID   = "0193a000-0000-7000-8000-000000000101"
	hhID2  = "0193a000-0000-7000-8000-000000000102"
	insID  = "0193a000-0000-7000-8000-000000000201"
	csID1  = "0193a000-0000-7000-8000-000000000301"
	csID2  = "0193a000-0000-7000-8000-000000000302"
	csID3  = "0193a000-0000-7000-8000-000000000303"
	south  = "500240107201"
	north  = "150422103202"
	userWS = "wang.shu"
)

func change(entity, id, op string, base int64, at time.Time, fields map[string]any) Change {
	f := map[string]json.RawMessage{}
	for k, v := range fields {
		b, _ := json.Marshal(v)
		f[k] = b
	}
	return Change{Entity: entity, ID: id, Op: op, BaseVersion: base, At: FormatTime(at), Fields: f}
}

func household(id, village string) Change {
	return change("household", id, OpUpsert, 0, t0, map[string]any{"village": village, "head_name": "张伟", "members": 4})
}

func push(t *testing.T, tx *memTx, actor Actor, csID string, seq int64, now time.Time, changes ...Change) PushResponse {
	t.Helper()
	resp, err := applyChangeset(tx, actor,
		Changeset{ChangesetID: csID, DeviceID: actor.DeviceID, DeviceSeq: seq, SchemaVersion: 1, Changes: changes}, now)
	if err != nil {
		t.Fatalf("push %s: %v", csID, err)
	}
	return resp
}

func TestApplyReplayReturnsStoredResponse(t *testing.T) {
	tx := newMemTx()
	a := Actor{UserID: userWS, DeviceID: devA, AllRegions: true}
	cs := Changeset{ChangesetID: csID1, DeviceID: devA, DeviceSeq: 1, SchemaVersion: 1, Changes: []Change{household(hhID, south)}}
	first, err := applyChangeset(tx, a, cs, t0)
	if err != nil {
		t.Fatal(err)
	}
	again, err := applyChangeset(tx, a, cs, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || first.Replayed {
		t.Fatalf("replayed flags: first %v, again %v", first.Replayed, again.Replayed)
	}
	again.Replayed = false
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("replay differs:\n%+v\n%+v", first, again)
	}
	if len(tx.log) != 1 {
		t.Fatalf("applied twice: %d log entries", len(tx.log))
	}
	// Same id, other content: 409.
	cs.Changes = []Change{household(hhID2, south)}
	_, err = applyChangeset(tx, a, cs, t0)
	if ErrorCode(err) != EConflict {
		t.Fatalf("reused id with other content: %v", err)
	}
}

func TestApplyDeviceSeqMustIncrease(t *testing.T) {
	tx := newMemTx()
	a := Actor{UserID: userWS, DeviceID: devA, AllRegions: true}
	push(t, tx, a, csID1, 5, t0, household(hhID, south))
	_, err := applyChangeset(tx, a,
		Changeset{ChangesetID: csID2, DeviceID: devA, DeviceSeq: 5, SchemaVersion: 1, Changes: []Change{household(hhID2, south)}}, t0)
	var e *Error
	if ErrorCode(err) != EConflict || !asError(err, &e) || e.LastDeviceSeq == nil || *e.LastDeviceSeq != 5 {
		t.Fatalf("lower device_seq: %v", err)
	}
	if _, ok := tx.records[hhID2]; ok {
		t.Fatal("out-of-order change set was applied")
	}
	// Gaps are allowed.
	push(t, tx, a, csID3, 9, t0, household(hhID2, south))
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	*target = e
	return ok
}

func TestApplyClampsClockSkew(t *testing.T) {
	tx := newMemTx()
	a := Actor{UserID: userWS, DeviceID: devA, AllRegions: true}
	ahead := change("household", hhID, OpUpsert, 0, t0.Add(6*time.Minute), map[string]any{"village": south, "head_name": "张伟"})
	resp := push(t, tx, a, csID1, 1, t0, ahead)
	if got := resp.Results[0].Flags; len(got) != 1 || got[0] != FlagClockClamped {
		t.Fatalf("flags %v, want clock_clamped", got)
	}
	if at := tx.records[hhID].Meta["head_name"].At; !at.Equal(t0) {
		t.Fatalf("stored device time %v, want the server's %v", at, t0)
	}
	// Within 5 minutes: kept as sent, not flagged.
	ok := change("household", hhID2, OpUpsert, 0, t0.Add(4*time.Minute), map[string]any{"village": south, "head_name": "张伟"})
	resp = push(t, tx, a, csID2, 2, t0, ok)
	if len(resp.Results[0].Flags) != 0 || !tx.records[hhID2].Meta["head_name"].At.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("a 4-minute lead was clamped: %+v", resp.Results[0])
	}
}

func TestApplyQuarantinesInvalidChangesAndAppliesTheRest(t *testing.T) {
	tx := newMemTx()
	a := Actor{UserID: userWS, DeviceID: devA, AllRegions: true}
	bad := change("housing_inspection", insID, OpUpsert, 0, t0, map[string]any{
		"household_id": hhID2, "grade": "E", "inspected_on": "2026-11-20"})
	resp := push(t, tx, a, csID1, 1, t0, household(hhID, south), bad)
	if resp.Results[0].Status != StatusApplied || resp.Results[1].Status != StatusRejected {
		t.Fatalf("results %+v", resp.Results)
	}
	paths := map[string]bool{}
	for _, e := range resp.Results[1].Errors {
		paths[e.Path] = true
	}
	if !paths["fields.grade"] {
		t.Fatalf("errors %+v, want fields.grade", resp.Results[1].Errors)
	}
	if len(tx.quarantine) != 1 || tx.quarantine[0].RecordID != insID || len(tx.quarantine[0].Raw) == 0 {
		t.Fatalf("quarantine %+v", tx.quarantine)
	}
	if _, ok := tx.records[insID]; ok {
		t.Fatal("a rejected change was applied")
	}
}

func TestApplyDanglingHouseholdIsRejected(t *testing.T) {
	tx := newMemTx()
	a := Actor{UserID: userWS, DeviceID: devA, AllRegions: true}
	ins := change("housing_inspection", insID, OpUpsert, 0, t0, map[string]any{
		"household_id": hhID2, "grade": "C", "inspected_on": "2026-11-20", "ventilation": "adequate"})
	resp := push(t, tx, a, csID1, 1, t0, ins)
	if r := resp.Results[0]; r.Status != StatusRejected || r.Errors[0].Path != "fields.household_id" {
		t.Fatalf("result %+v", r)
	}
}

func TestApplyRegionRules(t *testing.T) {
	tx := newMemTx()
	a := Actor{UserID: userWS, DeviceID: devA, AllRegions: true}
	southIns := change("housing_inspection", insID, OpUpsert, 0, t0, map[string]any{
		"household_id": hhID, "grade": "B", "inspected_on": "2026-11-20"})
	northIns := change("housing_inspection", "0193a000-0000-7000-8000-000000000202", OpUpsert, 0, t0, map[string]any{
		"household_id": hhID2, "grade": "B", "inspected_on": "2026-11-20", "ventilation": "adequate"})
	resp := push(t, tx, a, csID1, 1, t0, household(hhID, south), household(hhID2, north), southIns, northIns)
	want := map[int]string{2: "fields.ventilation", 3: "fields.heating_insulation"}
	for i, path := range want {
		r := resp.Results[i]
		if r.Status != StatusRejected || len(r.Errors) != 1 || r.Errors[0].Path != path {
			t.Errorf("result %d: %+v, want rejected at %s", i, r, path)
		}
	}
}

func TestApplyScopeRefusesWholeChangeset(t *testing.T) {
	tx := newMemTx()
	admin := Actor{UserID: "admin", DeviceID: devB, AllRegions: true}
	push(t, tx, admin, csID1, 1, t0, household(hhID2, north))
	worker := Actor{UserID: userWS, DeviceID: devA, Scope: []string{"500240"}}
	ins := change("water_inspection", insID, OpUpsert, 0, t0, map[string]any{
		"household_id": hhID2, "inspected_on": "2026-11-20", "source": "well"})
	_, err := applyChangeset(tx, worker,
		Changeset{ChangesetID: csID2, DeviceID: devA, DeviceSeq: 1, SchemaVersion: 1,
			Changes: []Change{household(hhID, south), ins}}, t0)
	if ErrorCode(err) != EForbidden {
		t.Fatalf("inspection of an out-of-scope household: %v", err)
	}
	if _, ok := tx.records[hhID]; ok || len(tx.receipts) != 1 {
		t.Fatal("something was written for a refused change set")
	}
	// Moving an in-scope household out of scope is refused too.
	push(t, tx, admin, csID3, 2, t0, household(hhID, south))
	move := change("household", hhID, OpUpsert, 1, t0, map[string]any{"village": north})
	_, err = applyChangeset(tx, worker,
		Changeset{ChangesetID: "0193a000-0000-7000-8000-000000000304", DeviceID: devA, DeviceSeq: 1, SchemaVersion: 1,
			Changes: []Change{move}}, t0)
	if ErrorCode(err) != EForbidden {
		t.Fatalf("moving a household out of scope: %v", err)
	}
}

func TestApplyRecordsEveryConcurrentDecision(t *testing.T) {
	tx := newMemTx()
	a, b := Actor{UserID: "a", DeviceID: devA, AllRegions: true}, Actor{UserID: "b", DeviceID: devB, AllRegions: true}
	ins := change("housing_inspection", insID, OpUpsert, 0, t0, map[string]any{
		"household_id": hhID, "grade": "C", "inspected_on": "2026-11-20", "ventilation": "adequate"})
	push(t, tx, a, csID1, 1, t0, household(hhID, south), ins)
	push(t, tx, a, csID2, 2, t0, change("housing_inspection", insID, OpUpsert, 1, t0.Add(time.Minute), map[string]any{"grade": "D"}))
	resp := push(t, tx, b, csID3, 1, t0, change("housing_inspection", insID, OpUpsert, 1, t0.Add(2*time.Minute), map[string]any{"grade": "B"}))
	r := resp.Results[0]
	if r.Status != StatusMerged || len(r.Conflicts) != 1 || string(r.Conflicts[0].Kept) != `"D"` {
		t.Fatalf("result %+v", r)
	}
	if len(tx.conflicts) != 1 || tx.conflicts[0].State != StateAutoResolved || tx.conflicts[0].ID != r.Conflicts[0].ConflictID {
		t.Fatalf("conflicts %+v", tx.conflicts)
	}
	if r.Version != 2 {
		t.Fatalf("a decision that changed nothing made version %d", r.Version)
	}
}

func TestContentHashIgnoresWhitespace(t *testing.T) {
	a := Changeset{ChangesetID: csID1, Changes: []Change{{Fields: map[string]json.RawMessage{"x": raw(`{"a": 1}`)}}}}
	b := Changeset{ChangesetID: csID1, Changes: []Change{{Fields: map[string]json.RawMessage{"x": raw(`{"a":1}`)}}}}
	if ContentHash(a) != ContentHash(b) {
		t.Fatal("whitespace changed the content hash")
	}
	b.Changes[0].Fields["x"] = raw(`{"a":2}`)
	if ContentHash(a) == ContentHash(b) {
		t.Fatal("different content, same hash")
	}
}

// TestApplyScopeJudgesCanonicalIDs: an upper-case household id must not
// slip past the scope check.
func TestApplyScopeJudgesCanonicalIDs(t *testing.T) {
	tx := newMemTx()
	admin := Actor{UserID: "admin", DeviceID: devB, AllRegions: true}
	push(t, tx, admin, csID1, 1, t0, household(hhID2, north))
	worker := Actor{UserID: userWS, DeviceID: devA, Scope: []string{"5002"}}
	ins := change("water_inspection", insID, OpUpsert, 0, t0, map[string]any{
		"household_id": strings.ToUpper(hhID2), "inspected_on": "2026-11-20", "source": "well"})
	_, err := applyChangeset(tx, worker,
		Changeset{ChangesetID: csID2, DeviceID: devA, DeviceSeq: 1, SchemaVersion: 1, Changes: []Change{ins}}, t0)
	if ErrorCode(err) != EForbidden {
		t.Fatalf("upper-case id of an out-of-scope household: %v", err)
	}
}

// TestApplyVillageConflictDoesNotMove: a household move that opens a
// manual conflict leaves the record where it is.
func TestApplyVillageConflictDoesNotMove(t *testing.T) {
	tx := newMemTx()
	a, b := Actor{UserID: "a", DeviceID: devA, AllRegions: true}, Actor{UserID: "b", DeviceID: devB, AllRegions: true}
	push(t, tx, a, csID1, 1, t0, household(hhID, south))
	push(t, tx, a, csID2, 2, t0, change("household", hhID, OpUpsert, 1, t0, map[string]any{"village": "500240107299"}))
	resp := push(t, tx, b, csID3, 1, t0, change("household", hhID, OpUpsert, 1, t0.Add(time.Minute),
		map[string]any{"village": north, "head_name": "王芳"}))
	if resp.Results[0].Status != StatusConflict {
		t.Fatalf("%+v", resp.Results[0])
	}
	if r := tx.records[hhID]; r.Village != "500240107299" || string(r.Fields["village"]) != `"500240107299"` {
		t.Fatalf("record scoped to %s with village field %s", r.Village, r.Fields["village"])
	}
}

// TestApplyFlagsHouseholdsRegisteredTwice: the same head name within 100 m
// in one village is flagged; the same name farther away, or without a
// location, is not.
func TestApplyFlagsHouseholdsRegisteredTwice(t *testing.T) {
	tx := newMemTx()
	a, b := Actor{UserID: "a", DeviceID: devA, AllRegions: true}, Actor{UserID: "b", DeviceID: devB, AllRegions: true}
	at := func(id string, lat float64) Change {
		return change("household", id, OpUpsert, 0, t0, map[string]any{"village": south, "head_name": "王芳",
			"location": map[string]float64{"lat": lat, "lon": 108.1}})
	}
	push(t, tx, a, csID1, 1, t0, at(hhID, 30.0))
	push(t, tx, b, csID2, 1, t0, at(hhID2, 30.0005))                                // about 55 m north
	push(t, tx, b, csID3, 2, t0, at("0193a000-0000-7000-8000-000000000103", 30.01)) // about 1.1 km
	push(t, tx, b, "0193a000-0000-7000-8000-000000000305", 3, t0,
		change("household", "0193a000-0000-7000-8000-000000000104", OpUpsert, 0, t0, map[string]any{"village": south, "head_name": "王芳"}))
	if len(tx.duplicates) != 1 || tx.duplicates[0].HouseholdA != hhID || tx.duplicates[0].HouseholdB != hhID2 {
		t.Fatalf("duplicates %+v", tx.duplicates)
	}
}
