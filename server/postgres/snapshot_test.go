package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// collected is a snapshot read into memory, for tests.
type collected struct {
	at   syncproto.Cursor
	rows []syncproto.SnapshotRow
	// onRow, when set, runs before each row is kept.
	onRow func(n int) error
}

func (c *collected) Start(at syncproto.Cursor) error { c.at = at; return nil }

func (c *collected) Row(r syncproto.SnapshotRow) error {
	if c.onRow != nil {
		if err := c.onRow(len(c.rows)); err != nil {
			return err
		}
	}
	c.rows = append(c.rows, r)
	return nil
}

func (c *collected) byID() map[string]syncproto.SnapshotRow {
	out := map[string]syncproto.SnapshotRow{}
	for _, r := range c.rows {
		out[r.Record.ID] = r
	}
	return out
}

func mustSnapshot(t *testing.T, s *Store, actor syncproto.Actor, q syncproto.SnapshotQuery) *collected {
	t.Helper()
	c := &collected{}
	if err := s.Snapshot(context.Background(), actor, q, c); err != nil {
		t.Fatalf("snapshot %+v: %v", q, err)
	}
	return c
}

func headOf(t *testing.T, s *Store) syncproto.Cursor {
	t.Helper()
	c := mustSnapshot(t, s, syncproto.Actor{}, syncproto.SnapshotQuery{})
	return c.at
}

var withLatest = syncproto.SnapshotQuery{Entities: []string{"household"},
	Latest: []string{"housing_inspection", "water_inspection"}, LatestBy: "inspected_on"}

// TestSnapshotCurrentState reads the current state: in scope only, without
// tombstones unless asked, with the latest inspection of each household.
func TestSnapshotCurrentState(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	dev := storetest.NewDevice("li.na")
	south, north, gone := uuid.NewString(), uuid.NewString(), uuid.NewString()
	older, newer, water := uuid.NewString(), uuid.NewString(), uuid.NewString()
	day1, day2 := storetest.T0, storetest.T0.Add(48*time.Hour)
	clock.Advance(48 * time.Hour) // the visit of day2 is not in the future
	dev.Push(t, pushes(s), storetest.Household(south, storetest.SouthVillage, day1),
		storetest.Household(north, storetest.NorthVillage, day1),
		storetest.Household(gone, storetest.SouthVillage, day1),
		// The later visit is pushed first: "latest" is by inspection date.
		storetest.HousingInspection(newer, south, "B", day2),
		storetest.HousingInspection(older, south, "D", day1),
		storetest.WaterInspection(water, south, day1))
	dev.Push(t, pushes(s), storetest.Delete("household", gone, 1, day1))

	county := syncproto.Actor{UserID: "sup", Scope: []string{"500240"}}
	c := mustSnapshot(t, s, county, withLatest)
	if c.at != headOf(t, s) {
		t.Fatalf("cursor %+v, want the head", c.at)
	}
	got := c.byID()
	if len(got) != 1 || got[south].Record.ID == "" {
		t.Fatalf("county snapshot holds %v", got)
	}
	latest := got[south].Latest
	if h := latest["housing_inspection"]; h == nil || h.ID != newer || string(h.Fields["grade"]) != `"B"` || h.Parent != south {
		t.Fatalf("latest housing inspection %+v", h)
	}
	if w := latest["water_inspection"]; w == nil || w.ID != water {
		t.Fatalf("latest water inspection %+v", w)
	}

	c = mustSnapshot(t, s, syncproto.Actor{UserID: "admin", AllRegions: true},
		syncproto.SnapshotQuery{Entities: []string{"household", "housing_inspection"}, Tombstones: true})
	if len(c.rows) != 5 {
		t.Fatalf("all regions with tombstones: %d rows", len(c.rows))
	}
	for i, r := range c.rows {
		if i < 3 && r.Record.Entity != "household" || i >= 3 && r.Record.Entity != "housing_inspection" {
			t.Fatalf("rows not grouped by entity in order: %d is a %s", i, r.Record.Entity)
		}
	}
	if !c.byID()[gone].Record.Deleted {
		t.Fatal("the tombstone is not marked deleted")
	}
	// Overlapping and empty prefixes read each record once; no scope reads
	// nothing.
	c = mustSnapshot(t, s, syncproto.Actor{Scope: []string{"500240107", "", "50", "150422"}}, withLatest)
	if len(c.rows) != 2 {
		t.Fatalf("overlapping scope: %d rows", len(c.rows))
	}
	if c = mustSnapshot(t, s, syncproto.Actor{Scope: []string{""}}, withLatest); len(c.rows) != 0 {
		t.Fatalf("empty scope: %d rows", len(c.rows))
	}
}

// TestSnapshotAsOf rebuilds earlier states from the change log: an edit and
// a deletion undone, a later record absent, a moved household in its old
// village, the latest inspection as it was, a re-pointed inspection under
// its old household.
func TestSnapshotAsOf(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	dev := storetest.NewDevice("li.na")
	hh, other, ins, water := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	dev.Push(t, pushes(s), storetest.Household(hh, storetest.SouthVillage, storetest.T0),
		storetest.Household(other, storetest.SouthVillage, storetest.T0),
		storetest.HousingInspection(ins, hh, "C", storetest.T0),
		storetest.WaterInspection(water, hh, storetest.T0))
	at1 := headOf(t, s)
	clock.Advance(time.Hour)

	later := uuid.NewString()
	dev.Push(t, pushes(s),
		storetest.Upsert("housing_inspection", ins, 1, storetest.T0, map[string]any{"grade": "D", "renovation": nil}),
		storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"village": "500240112201", "members": 6}),
		storetest.Household(later, storetest.SouthVillage, storetest.T0))
	dev.Push(t, pushes(s), storetest.Delete("water_inspection", water, 1, storetest.T0),
		storetest.Upsert("housing_inspection", ins, 2, storetest.T0, map[string]any{"household_id": other}))

	all := syncproto.Actor{UserID: "admin", AllRegions: true}
	now := mustSnapshot(t, s, all, syncproto.SnapshotQuery{Entities: []string{"household", "housing_inspection", "water_inspection"}}).byID()
	if len(now) != 4 || string(now[ins].Record.Fields["grade"]) != `"D"` || now[water].Record.ID != "" {
		t.Fatalf("current state %v", now)
	}

	q := syncproto.SnapshotQuery{Entities: []string{"household", "housing_inspection", "water_inspection"}, AsOf: &at1}
	c := mustSnapshot(t, s, all, q)
	if c.at != at1 {
		t.Fatalf("as_of snapshot at %+v, want %+v", c.at, at1)
	}
	then := c.byID()
	if len(then) != 4 || then[later].Record.ID != "" {
		t.Fatalf("state at the cursor %v", then)
	}
	h := then[hh].Record
	if string(h.Fields["village"]) != `"`+storetest.SouthVillage+`"` || h.Village != storetest.SouthVillage ||
		string(h.Fields["members"]) != "5" || h.Version != 1 || !h.UpdatedAt.Equal(storetest.T0) {
		t.Fatalf("household at the cursor %+v", h)
	}
	i := then[ins].Record
	if string(i.Fields["grade"]) != `"C"` || string(i.Fields["renovation"]) != `"none"` || i.Parent != hh ||
		i.Village != storetest.SouthVillage || i.Version != 1 {
		t.Fatalf("inspection at the cursor %+v", i)
	}
	if w := then[water].Record; w.Deleted || w.Version != 1 {
		t.Fatalf("water inspection at the cursor %+v", w)
	}

	// The village at the cursor scopes it: the household and its
	// inspections were in 500240107 then, not now.
	township := syncproto.Actor{Scope: []string{"500240107"}}
	if got := mustSnapshot(t, s, township, q).byID(); len(got) != 4 || got[hh].Record.ID == "" {
		t.Fatalf("township at the cursor %v", got)
	}
	if got := mustSnapshot(t, s, township, syncproto.SnapshotQuery{Entities: q.Entities}).byID(); got[hh].Record.ID != "" {
		t.Fatalf("the moved household is still in its old township now: %v", got)
	}

	// Latest inspections as of the cursor: the C grade, under hh although
	// the inspection was re-pointed to other since.
	lq := withLatest
	lq.AsOf = &at1
	got := mustSnapshot(t, s, all, lq).byID()
	if l := got[hh].Latest["housing_inspection"]; l == nil || l.ID != ins || string(l.Fields["grade"]) != `"C"` {
		t.Fatalf("latest housing of hh at the cursor %+v", l)
	}
	if l := got[hh].Latest["water_inspection"]; l == nil || l.ID != water {
		t.Fatalf("latest water of hh at the cursor %+v", l)
	}
	if l := got[other].Latest; l != nil {
		t.Fatalf("other had no inspection at the cursor: %+v", l)
	}
	// And now: under other, no water inspection left.
	got = mustSnapshot(t, s, all, withLatest).byID()
	if l := got[other].Latest["housing_inspection"]; l == nil || string(l.Fields["grade"]) != `"D"` || got[hh].Latest != nil {
		t.Fatalf("latest now: hh %+v, other %+v", got[hh].Latest, got[other].Latest)
	}

	// The beginning of the log holds nothing; a cursor ahead is refused.
	zero := syncproto.Cursor{}
	if got := mustSnapshot(t, s, all, syncproto.SnapshotQuery{Entities: q.Entities, AsOf: &zero}); len(got.rows) != 0 {
		t.Fatalf("state at 0: %d rows", len(got.rows))
	}
	ahead := syncproto.Cursor{Seq: headOf(t, s).Seq + 1}
	var se *syncproto.Error
	err := s.Snapshot(context.Background(), all, syncproto.SnapshotQuery{Entities: q.Entities, AsOf: &ahead}, &collected{})
	if !errors.As(err, &se) || se.Code != syncproto.EInvalid || se.Errors[0].Path != "as_of" {
		t.Fatalf("cursor ahead: %v", err)
	}
	err = s.Snapshot(context.Background(), all, syncproto.SnapshotQuery{Entities: []string{"school"}}, &collected{})
	if syncproto.ErrorCode(err) != syncproto.EInvalid {
		t.Fatalf("unknown entity: %v", err)
	}
}

// TestSnapshotStopsWhenCancelled cancels a snapshot in the middle: it
// returns the context's error and its transaction ends.
func TestSnapshotStopsWhenCancelled(t *testing.T) {
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	dev := storetest.NewDevice("li.na")
	var changes []syncproto.Change
	for i := 0; i < 50; i++ {
		changes = append(changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	}
	dev.Push(t, pushes(s), changes...)
	for _, asOf := range []*syncproto.Cursor{nil, {Seq: 10}} {
		ctx, cancel := context.WithCancel(context.Background())
		c := &collected{onRow: func(n int) error {
			if n == 5 {
				cancel()
			}
			return nil
		}}
		err := s.Snapshot(ctx, syncproto.Actor{AllRegions: true}, syncproto.SnapshotQuery{Entities: []string{"household"}, AsOf: asOf, Latest: withLatest.Latest, LatestBy: "inspected_on"}, c)
		if !errors.Is(err, context.Canceled) || len(c.rows) > 7 {
			t.Fatalf("as_of %v: %v after %d rows", asOf, err, len(c.rows))
		}
		cancel()
	}
	// The read pool is not left holding a transaction: a push and a new
	// snapshot go through.
	dev.Push(t, pushes(s), storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	if c := mustSnapshot(t, s, syncproto.Actor{AllRegions: true}, syncproto.SnapshotQuery{Entities: []string{"household"}}); len(c.rows) != 51 {
		t.Fatalf("%d rows after cancellations", len(c.rows))
	}
}

// TestSnapshotAsOfBeforeAMerge rebuilds the state before two duplicate
// households were merged: both alive, the inspection under the one it
// belonged to then; and after: a tombstone naming the survivor.
func TestSnapshotAsOfBeforeAMerge(t *testing.T) {
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	dev := storetest.NewDevice("li.na")
	first, second, ins := uuid.NewString(), uuid.NewString(), uuid.NewString()
	dev.Push(t, pushes(s), storetest.RegisteredHousehold(first, storetest.SouthVillage, "5002401072010042", storetest.T0))
	// The same registration number in the same village: a duplicate.
	dev.Push(t, pushes(s), storetest.RegisteredHousehold(second, storetest.SouthVillage, "5002401072010042", storetest.T0),
		storetest.HousingInspection(ins, second, "D", storetest.T0))
	before := headOf(t, s)
	admin := syncproto.Actor{UserID: "sup", DeviceID: uuid.NewString(), Role: syncproto.RoleSupervisor, AllRegions: true}
	dups, err := s.ListDuplicates(context.Background(), admin, "")
	if err != nil || len(dups) != 1 {
		t.Fatalf("duplicates %v, %v", dups, err)
	}
	if _, err := supervision(s).MergeHouseholds(context.Background(), admin, dups[0].ID, first, ""); err != nil {
		t.Fatal(err)
	}

	q := withLatest
	q.Tombstones = true
	now := mustSnapshot(t, s, admin, q).byID()
	if g := now[second].Record; !g.Deleted || g.MergedInto != first || now[first].Latest["housing_inspection"].ID != ins {
		t.Fatalf("after the merge: %+v, latest of the survivor %+v", g, now[first].Latest)
	}
	q.AsOf = &before
	then := mustSnapshot(t, s, admin, q).byID()
	g := then[second]
	if g.Record.Deleted || g.Record.MergedInto != "" || g.Latest["housing_inspection"] == nil || then[first].Latest != nil {
		t.Fatalf("before the merge: %+v, latest %+v; survivor's latest %+v", g.Record, g.Latest, then[first].Latest)
	}
	if _, ok := g.Record.Fields["_merged_into"]; ok {
		t.Fatalf("a pseudo-field leaked into the fields: %v", g.Record.Fields)
	}
}

// TestSnapshotReadsEveryBatch: a snapshot larger than one fetch of its
// cursor (snapshotBatch rows) emits every record once, with its latest
// inspection, at the head and as of an earlier point.
func TestSnapshotReadsEveryBatch(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	dev := storetest.NewDevice("li.na")
	const n = 3*snapshotBatch + 7
	var changes []syncproto.Change
	for range n {
		hh := uuid.NewString()
		changes = append(changes, storetest.Household(hh, storetest.SouthVillage, storetest.T0),
			storetest.HousingInspection(uuid.NewString(), hh, "B", storetest.T0))
	}
	dev.Push(t, pushes(s), changes...)
	at := headOf(t, s)
	dev.Push(t, pushes(s), storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	all := syncproto.Actor{AllRegions: true}
	for _, asOf := range []*syncproto.Cursor{nil, &at} {
		q := withLatest
		q.AsOf = asOf
		c := mustSnapshot(t, s, all, q)
		want := n + 1
		if asOf != nil {
			want = n
		}
		got := c.byID()
		if len(c.rows) != want || len(got) != want {
			t.Fatalf("as_of %v: %d rows, %d households, want %d", asOf, len(c.rows), len(got), want)
		}
		withInspection := 0
		for _, r := range c.rows {
			if r.Latest["housing_inspection"] != nil {
				withInspection++
			}
		}
		if withInspection != n {
			t.Fatalf("as_of %v: %d households with their latest inspection, want %d", asOf, withInspection, n)
		}
	}
}
