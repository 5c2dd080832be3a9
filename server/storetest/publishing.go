package storetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// FixtureCatalog loads versions 1..n of schema/testdata/migrations (1→2
// renames, maps, defaults, derives and drops water fields; 2→3 renames
// renovation, maps hazards, derives quantity_met).
func FixtureCatalog(t testing.TB, n int) *schema.Catalog {
	t.Helper()
	dir := t.TempDir()
	for v := 1; v <= n; v++ {
		name := strconv.Itoa(v)
		if err := os.CopyFS(filepath.Join(dir, name), os.DirFS(filepath.Join("..", "..", "schema", "testdata", "migrations", name))); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := schema.LoadCatalog(os.DirFS(dir), ".")
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// FailingMigrator fails the migration at its nth record, after the
// records before it were rewritten in the transaction.
type FailingMigrator struct {
	syncproto.Store
	N int
}

// ErrInjected is the failure of a FailingMigrator.
var ErrInjected = errors.New("injected failure")

// MigrateRecords migrates as the store does until its Nth record.
func (f FailingMigrator) MigrateRecords(ctx context.Context, to int, fn func(*syncproto.StoredRecord) error) error {
	seen := 0
	return f.Store.MigrateRecords(ctx, to, func(rec *syncproto.StoredRecord) error {
		if seen++; seen == f.N {
			return ErrInjected
		}
		return fn(rec)
	})
}

// PublishingMigratesStoredRecords: records written under v1 are, once
// v2 and v3 are published, in v3's shape — fields and per-field metadata —
// at the versions they had, with no new change-log entries or conflicts;
// a failure midway leaves them in v1 and the next open completes it; a v3
// edit and a stale v1 edit then merge per field as on a v3-born record,
// and a pull down-converts to v1 correctly.
// Every store runs it with its own Open (it reopens nothing: the store it
// opens is published to, failed and completed in place).
func PublishingMigratesStoredRecords(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock(T0)
	s := open(t, clock)
	v1, v3 := FixtureCatalog(t, 1), FixtureCatalog(t, 3)
	if _, err := syncproto.OpenCatalog(ctx, s, v1, clock.Now()); err != nil {
		t.Fatal(err)
	}
	p1 := syncproto.NewPushService(s, syncproto.PushOptions{Catalog: v1, Now: clock.Now})
	a, b := NewDevice("a"), NewDevice("b")
	hID, wID, goneID, hiID := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	resp := a.Push(t, p1, Household(hID, "500240107201", clock.Now()),
		WaterInspection(wID, hID, clock.Now()), WaterInspection(goneID, hID, clock.Now()),
		HousingInspection(hiID, hID, "B", clock.Now()))
	for _, r := range resp.Results {
		if r.Status != syncproto.StatusApplied {
			t.Fatalf("v1 records: %+v", resp.Results)
		}
	}
	clock.Advance(time.Minute)
	b.Push(t, p1, Upsert("water_inspection", wID, 1, clock.Now(), map[string]any{"fetch_minutes": 30}),
		Delete("water_inspection", goneID, 1, clock.Now()))
	ids := []string{hID, wID, goneID, hiID}
	before := map[string]*syncproto.StoredRecord{}
	history := map[string]int{}
	for _, id := range ids {
		before[id] = MustRecord(t, s, id)
		h, err := s.History(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		history[id] = len(h)
	}
	conflicts, _ := s.Conflicts(ctx, "")
	sumBefore, _, _ := s.Checksum(ctx, a.Actor)

	// A failure midway: the records stay in v1, whole.
	if _, err := syncproto.OpenCatalog(ctx, FailingMigrator{s, 3}, v3, clock.Now()); !errors.Is(err, ErrInjected) {
		t.Fatalf("a failed migration: %v", err)
	}
	if n, err := s.RecordsSchemaVersion(ctx); n != 1 || err != nil {
		t.Fatalf("after a failed migration the records are in %d (%v)", n, err)
	}
	for _, id := range ids {
		if got := MustRecord(t, s, id); !reflect.DeepEqual(got, before[id]) {
			t.Fatalf("a failed migration changed %s:\n%+v\n%+v", id, got, before[id])
		}
	}

	// The next open completes it.
	clock.Advance(time.Hour)
	if _, err := syncproto.OpenCatalog(ctx, s, v3, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RecordsSchemaVersion(ctx); n != 3 || err != nil {
		t.Fatalf("records in %d (%v)", n, err)
	}
	after := map[string]*syncproto.StoredRecord{}
	for _, id := range ids {
		r := MustRecord(t, s, id)
		after[id] = r
		if r.Version != before[id].Version || r.Deleted != before[id].Deleted || !r.UpdatedAt.Equal(before[id].UpdatedAt) {
			t.Errorf("%s: version %d→%d deleted %v→%v", id, before[id].Version, r.Version, before[id].Deleted, r.Deleted)
		}
		if h, _ := s.History(ctx, id); len(h) != history[id] {
			t.Errorf("%s: the migration wrote %d change-log entries", id, len(h)-history[id])
		}
		for name := range r.Fields {
			if v3.Latest().Form(r.Entity).Field(name) == nil {
				t.Errorf("%s: field %s is not v3's", id, name)
			}
		}
		for name := range r.Meta {
			if name != syncproto.FieldDeleted && v3.Latest().Form(r.Entity).Field(name) == nil {
				t.Errorf("%s: metadata of %s, not a v3 field", id, name)
			}
		}
	}
	if c, _ := s.Conflicts(ctx, ""); len(c) != len(conflicts) {
		t.Errorf("the migration made %d conflicts", len(c)-len(conflicts))
	}
	if sum, _, _ := s.Checksum(ctx, a.Actor); sum != sumBefore {
		t.Errorf("checksum %+v → %+v", sumBefore, sum)
	}
	w, old := after[wID], before[wID]
	for field, want := range map[string]string{"quantity_lpd": "80", "fetch_minutes": "30", "convenience": `"not_met"`, "quantity_met": "true", "source": `"piped"`} {
		if string(w.Fields[field]) != want {
			t.Errorf("w.%s = %s, want %s (%s)", field, w.Fields[field], want, w.Fields)
		}
	}
	for field, from := range map[string]string{"quantity_lpd": "liters_per_person_day", "quantity_met": "liters_per_person_day",
		"convenience": "fetch_minutes", "fetch_minutes": "fetch_minutes", "reliability_pct": "reliability_pct"} {
		if w.Meta[field] != old.Meta[from] {
			t.Errorf("w meta %s = %+v, want %s's %+v", field, w.Meta[field], from, old.Meta[from])
		}
	}
	if _, ok := w.Meta["quality_ok"]; ok {
		t.Error("the dropped field kept its metadata")
	}
	if hi := after[hiID]; string(hi.Fields["renovation_state"]) != `"none"` || hi.Meta["renovation_state"] != before[hiID].Meta["renovation"] {
		t.Errorf("housing inspection: %s %+v", hi.Fields, hi.Meta)
	}
	if g := after[goneID]; string(g.Fields["quantity_lpd"]) != "80" || g.Meta[syncproto.FieldDeleted] != before[goneID].Meta[syncproto.FieldDeleted] {
		t.Errorf("tombstone: %s %+v", g.Fields, g.Meta)
	}
	// A default fills a field new in its version on every stored record
	// (tombstones too), with the metadata of the record's last update.
	if h := after[hID]; string(h.Fields["borderline"]) != "false" ||
		h.Meta["borderline"] != (syncproto.FieldMeta{Version: h.Version, Device: h.UpdatedDevice, At: h.UpdatedAt}) {
		t.Errorf("household: v3's new borderline (default false) is %s, meta %+v", h.Fields["borderline"], h.Meta["borderline"])
	}
	for _, id := range []string{wID, goneID} {
		if q := after[id].Fields["quality_basis"]; string(q) != `"not_established"` {
			t.Errorf("%s: v2's new quality_basis (default not_established) is %s", id, q)
		}
	}

	// Opened again, nothing moves.
	if _, err := syncproto.OpenCatalog(ctx, FailingMigrator{s, 1}, v3, clock.Now()); err != nil {
		t.Fatalf("the records were migrated again: %v", err)
	}

	// Merges per field as on a v3-born record: a v3 edit at the current
	// version applies alone; a stale v1 edit of a field nobody else
	// changed applies, of one b changed (fetch_minutes, now also behind
	// convenience) is a decision.
	p3 := syncproto.NewPushService(s, syncproto.PushOptions{Catalog: v3, Now: clock.Now})
	c := NewDevice("c")
	cs := c.Changeset(Upsert("water_inspection", wID, w.Version, clock.Now(), map[string]any{"quantity_lpd": 90}))
	cs.SchemaVersion = 3
	resp, err := p3.Push(ctx, c.Actor, cs)
	if err != nil || resp.Results[0].Status != syncproto.StatusApplied || len(resp.Results[0].Conflicts) != 0 {
		t.Fatalf("a v3 edit: %+v %v", resp, err)
	}
	clock.Advance(time.Minute)
	resp = a.Push(t, p3, Upsert("water_inspection", wID, 1, clock.Now(), map[string]any{"reliability_pct": 90}))
	if resp.Results[0].Status != syncproto.StatusApplied || len(resp.Results[0].Conflicts) != 0 {
		t.Fatalf("a stale v1 edit of a field nobody changed: %+v", resp.Results[0])
	}
	resp = a.Push(t, p3, Upsert("water_inspection", wID, 1, clock.Now(), map[string]any{"fetch_minutes": 10}))
	if len(resp.Results[0].Conflicts) == 0 {
		t.Fatalf("a stale v1 edit of a field b changed is no decision: %+v", resp.Results[0])
	}

	// A v1 pull down-converts the migrated record.
	recs, _ := PullAll(t, s, a.Actor, syncproto.Cursor{}, 100)
	if err := syncproto.DownRecords(v3, 1, recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.ID == wID && (string(r.Fields["liters_per_person_day"]) != "90" || r.Fields["quantity_lpd"] != nil || r.Fields["convenience"] != nil) {
			t.Errorf("w pulled in v1: %s", r.Fields)
		}
		if r.ID == hiID && string(r.Fields["renovation"]) != `"none"` {
			t.Errorf("hi pulled in v1: %s", r.Fields)
		}
	}
}
