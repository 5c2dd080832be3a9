package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Collected is a snapshot read into memory (a syncproto.SnapshotSink), for
// the tests of the stores and of the suite.
type Collected struct {
	starts int
	// At is the position the snapshot was taken at (given to Start).
	At syncproto.Cursor
	// Rows are the snapshot's rows, in the order the store emitted them.
	Rows []syncproto.SnapshotRow
	// onRow, when set, runs before each row is kept; its error stops the
	// snapshot.
	onRow func(n int) error
}

// Start records the snapshot's position.
func (c *Collected) Start(at syncproto.Cursor) error {
	c.starts++
	c.At = at
	return nil
}

// Row keeps a row; a row before Start is an error.
func (c *Collected) Row(r syncproto.SnapshotRow) error {
	if c.starts != 1 {
		return errors.New("a row before Start")
	}
	if c.onRow != nil {
		if err := c.onRow(len(c.Rows)); err != nil {
			return err
		}
	}
	c.Rows = append(c.Rows, r)
	return nil
}

// ByID returns the rows by record id; a record twice in the snapshot
// panics.
func (c *Collected) ByID() map[string]syncproto.SnapshotRow {
	out := map[string]syncproto.SnapshotRow{}
	for _, r := range c.Rows {
		if _, twice := out[r.Record.ID]; twice {
			panic("a record twice in one snapshot: " + r.Record.ID)
		}
		out[r.Record.ID] = r
	}
	return out
}

// MustSnapshot reads the snapshot of q for actor from s, failing the test
// on an error or when Start was not called exactly once.
func MustSnapshot(t testing.TB, s syncproto.Store, actor syncproto.Actor, q syncproto.SnapshotQuery) *Collected {
	t.Helper()
	c := &Collected{}
	if err := s.Snapshot(context.Background(), actor, q, c); err != nil {
		t.Fatalf("snapshot %+v: %v", q, err)
	}
	if c.starts != 1 {
		t.Fatalf("snapshot %+v: Start called %d times", q, c.starts)
	}
	return c
}

// MustHead returns the head of s's change log as a cursor, failing the test on
// an error.
func MustHead(t testing.TB, s syncproto.Store) syncproto.Cursor {
	t.Helper()
	head, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return syncproto.Cursor{Seq: head}
}

// WithLatest asks for the households with the latest housing and water
// inspection of each, by inspection date.
var WithLatest = syncproto.SnapshotQuery{Entities: []string{"household"},
	Latest: []string{"housing_inspection", "water_inspection"}, LatestBy: "inspected_on"}

// testSnapshotCurrentState: a snapshot without as_of starts at the head of
// the change log, holds the records of the actor's scope only (each once,
// however the scope's prefixes overlap; nothing for an empty scope),
// entity by entity in the query's order, tombstones only when asked, the
// latest live inspection of each household by date, each row's parent when
// asked, and the same fields whether raw or decoded.
func testSnapshotCurrentState(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s, p := Open(t, open, clock)
	dev := NewDevice("li.na")
	south, north, gone := uuid.NewString(), uuid.NewString(), uuid.NewString()
	older, newer, water, dropped := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	day1, day2, day3 := T0, T0.Add(48*time.Hour), T0.Add(72*time.Hour)
	clock.Advance(72 * time.Hour) // the visits are not in the future
	dev.Push(t, p, Household(south, SouthVillage, day1), Household(north, NorthVillage, day1), Household(gone, SouthVillage, day1),
		// The later visit is pushed first: "latest" is by inspection date.
		HousingInspection(newer, south, "B", day2), HousingInspection(older, south, "D", day1),
		WaterInspection(water, south, day1), HousingInspection(dropped, south, "C", day3))
	dev.Push(t, p, Delete("household", gone, 1, day1), Delete("housing_inspection", dropped, 1, day3))

	county := syncproto.Actor{UserID: "sup", Scope: []string{"500240"}}
	c := MustSnapshot(t, s, county, WithLatest)
	if c.At.Seq != MustHead(t, s).Seq {
		t.Fatalf("snapshot at %+v, want the head %+v", c.At, MustHead(t, s))
	}
	got := c.ByID()
	if len(got) != 1 || got[south].Record.ID == "" {
		t.Fatalf("county snapshot holds %v, want the live household of 500240", got)
	}
	if r := got[south].Record; r.Version != 1 || r.Village != SouthVillage || string(r.Fields["head_name"]) != `"陈秀英"` ||
		r.UpdatedBy != "li.na" || r.Deleted {
		t.Fatalf("household row %+v", r)
	}
	latest := got[south].Latest
	if h := latest["housing_inspection"]; h == nil || h.ID != newer || string(h.Fields["grade"]) != `"B"` || h.Parent != south {
		t.Fatalf("latest live housing inspection %+v, want %s (the deleted later one does not count)", h, newer)
	}
	if w := latest["water_inspection"]; w == nil || w.ID != water {
		t.Fatalf("latest water inspection %+v", w)
	}

	c = MustSnapshot(t, s, All, syncproto.SnapshotQuery{Entities: []string{"housing_inspection", "household"}, Tombstones: true})
	if len(c.Rows) != 6 {
		t.Fatalf("all regions with tombstones: %d rows, want 6", len(c.Rows))
	}
	for i, r := range c.Rows {
		if i < 3 && r.Record.Entity != "housing_inspection" || i >= 3 && r.Record.Entity != "household" {
			t.Fatalf("rows not in the query's entity order: row %d is a %s", i, r.Record.Entity)
		}
	}
	if all := c.ByID(); !all[gone].Record.Deleted || !all[dropped].Record.Deleted || all[south].Record.Deleted {
		t.Fatal("tombstones not marked deleted")
	}
	if c := MustSnapshot(t, s, All, syncproto.SnapshotQuery{Entities: []string{"household"}}); len(c.Rows) != 2 {
		t.Fatalf("without tombstones: %d households, want 2", len(c.Rows))
	}
	// Overlapping and empty prefixes read each record once; no scope reads
	// nothing.
	if c := MustSnapshot(t, s, syncproto.Actor{Scope: []string{"500240107", "", "50", "150422"}}, WithLatest); len(c.ByID()) != 2 {
		t.Fatalf("overlapping scope: %d rows", len(c.Rows))
	}
	if c := MustSnapshot(t, s, syncproto.Actor{Scope: []string{""}}, WithLatest); len(c.Rows) != 0 {
		t.Fatalf("empty scope: %d rows", len(c.Rows))
	}
	if c := MustSnapshot(t, s, syncproto.Actor{UserID: "nobody"}, WithLatest); len(c.Rows) != 0 {
		t.Fatalf("no scope: %d rows", len(c.Rows))
	}

	// Parents: each inspection with its household; a household has none.
	c = MustSnapshot(t, s, All, syncproto.SnapshotQuery{Entities: []string{"water_inspection", "household"}, Parents: true})
	for _, r := range c.Rows {
		switch r.Record.Entity {
		case "water_inspection":
			if r.Parent == nil || r.Parent.ID != south || string(r.Parent.Fields["head_name"]) != `"陈秀英"` {
				t.Fatalf("parent of %s: %+v", r.Record.ID, r.Parent)
			}
		case "household":
			if r.Parent != nil {
				t.Fatalf("a household with a parent: %+v", r.Parent)
			}
		}
	}
	if c := MustSnapshot(t, s, All, syncproto.SnapshotQuery{Entities: []string{"water_inspection"}}); c.Rows[0].Parent != nil {
		t.Fatalf("a parent not asked for: %+v", c.Rows[0].Parent)
	}

	// RawFields: the same fields, as stored.
	q := syncproto.SnapshotQuery{Entities: []string{"household", "housing_inspection"}, Tombstones: true}
	decoded := MustSnapshot(t, s, All, q).ByID()
	q.RawFields = true
	raw := MustSnapshot(t, s, All, q).ByID()
	if len(raw) != len(decoded) {
		t.Fatalf("raw snapshot %d rows, decoded %d", len(raw), len(decoded))
	}
	for id, r := range raw {
		fields := r.Record.Fields
		if r.Record.RawFields != nil {
			fields = nil
			if err := json.Unmarshal(r.Record.RawFields, &fields); err != nil {
				t.Fatalf("raw fields of %s: %v", id, err)
			}
		}
		if !equalFields(fields, decoded[id].Record.Fields) {
			t.Fatalf("raw fields of %s %s, decoded %v", id, r.Record.RawFields, decoded[id].Record.Fields)
		}
	}
}

// equalFields compares two field sets by their JSON values.
func equalFields(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		var x, y any
		if json.Unmarshal(v, &x) != nil || json.Unmarshal(b[k], &y) != nil || !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// testSnapshotAsOf: a snapshot as of an earlier position shows the state
// then and sees none of the later writes: an edit and a deletion undone, a
// later record absent, a moved household in its old village (and scoped by
// it), the latest inspection and the parent as they were, a re-pointed
// inspection under its old household, a record deleted before it only
// with tombstones asked; the beginning holds nothing; a
// position ahead of the log is refused before Start.
func testSnapshotAsOf(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s, p := Open(t, open, clock)
	dev := NewDevice("li.na")
	hh, other, ins, water := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	early := uuid.NewString()
	dev.Push(t, p, Household(hh, SouthVillage, T0), Household(other, SouthVillage, T0),
		HousingInspection(ins, hh, "C", T0), WaterInspection(water, hh, T0), HousingInspection(early, hh, "B", T0))
	// Deleted before the cursor, and moved with its household after it.
	dev.Push(t, p, Delete("housing_inspection", early, 1, T0))
	at1 := MustHead(t, s)
	clock.Advance(time.Hour)

	later := uuid.NewString()
	dev.Push(t, p,
		Upsert("housing_inspection", ins, 1, T0, map[string]any{"grade": "D", "renovation": nil}),
		Upsert("household", hh, 1, T0, map[string]any{"village": "500240112201", "members": 6, "head_name": "陈秀芳"}),
		Household(later, SouthVillage, T0))
	dev.Push(t, p, Delete("water_inspection", water, 1, T0),
		Upsert("housing_inspection", ins, 2, T0, map[string]any{"household_id": other}))

	entities := []string{"household", "housing_inspection", "water_inspection"}
	now := MustSnapshot(t, s, All, syncproto.SnapshotQuery{Entities: entities}).ByID()
	if len(now) != 4 || string(now[ins].Record.Fields["grade"]) != `"D"` || now[water].Record.ID != "" {
		t.Fatalf("current state %v", now)
	}

	q := syncproto.SnapshotQuery{Entities: entities, AsOf: &at1}
	c := MustSnapshot(t, s, All, q)
	if c.At.Seq != at1.Seq {
		t.Fatalf("as_of snapshot at %+v, want %+v", c.At, at1)
	}
	then := c.ByID()
	if len(then) != 4 || then[later].Record.ID != "" {
		t.Fatalf("state at the cursor %v", then)
	}
	h := then[hh].Record
	if string(h.Fields["village"]) != `"`+SouthVillage+`"` || h.Village != SouthVillage ||
		string(h.Fields["members"]) != "5" || h.Version != 1 || !h.UpdatedAt.Equal(T0) {
		t.Fatalf("household at the cursor %+v", h)
	}
	i := then[ins].Record
	if string(i.Fields["grade"]) != `"C"` || string(i.Fields["renovation"]) != `"none"` || i.Parent != hh ||
		i.Village != SouthVillage || i.Version != 1 {
		t.Fatalf("inspection at the cursor %+v", i)
	}
	if w := then[water].Record; w.Deleted || w.Version != 1 {
		t.Fatalf("water inspection at the cursor %+v", w)
	}
	// With tombstones asked: a deletion after the cursor is not yet one,
	// a deletion before it is.
	tq := q
	tq.Tombstones = true
	if got := MustSnapshot(t, s, All, tq).ByID(); got[water].Record.Deleted || !got[early].Record.Deleted || len(got) != 5 {
		t.Fatalf("tombstones at the cursor: %v", got)
	}

	// The village at the cursor scopes it: the household and its
	// inspections were in 500240107 then, not now.
	township := syncproto.Actor{Scope: []string{"500240107"}}
	if got := MustSnapshot(t, s, township, q).ByID(); len(got) != 4 || got[hh].Record.ID == "" {
		t.Fatalf("township at the cursor %v", got)
	}
	if got := MustSnapshot(t, s, township, syncproto.SnapshotQuery{Entities: entities}).ByID(); got[hh].Record.ID != "" {
		t.Fatalf("the moved household is still in its old township now: %v", got)
	}

	// Parents as of the cursor: the household as it was, the one the
	// inspection belonged to then.
	pq := syncproto.SnapshotQuery{Entities: []string{"housing_inspection"}, AsOf: &at1, Parents: true}
	if got := MustSnapshot(t, s, All, pq).Rows; len(got) != 1 || got[0].Parent == nil || got[0].Parent.ID != hh ||
		string(got[0].Parent.Fields["head_name"]) != `"陈秀英"` {
		t.Fatalf("parent at the cursor %+v", got)
	}

	// Latest inspections as of the cursor: the C grade, under hh although
	// the inspection was re-pointed to other since.
	lq := WithLatest
	lq.AsOf = &at1
	got := MustSnapshot(t, s, All, lq).ByID()
	if l := got[hh].Latest["housing_inspection"]; l == nil || l.ID != ins || string(l.Fields["grade"]) != `"C"` {
		t.Fatalf("latest housing of hh at the cursor %+v", l)
	}
	if l := got[hh].Latest["water_inspection"]; l == nil || l.ID != water {
		t.Fatalf("latest water of hh at the cursor %+v", l)
	}
	if l := got[other].Latest; len(l) != 0 {
		t.Fatalf("other had no inspection at the cursor: %+v", l)
	}
	got = MustSnapshot(t, s, All, WithLatest).ByID()
	if l := got[other].Latest["housing_inspection"]; l == nil || string(l.Fields["grade"]) != `"D"` || len(got[hh].Latest) != 0 {
		t.Fatalf("latest now: hh %+v, other %+v", got[hh].Latest, got[other].Latest)
	}

	// The beginning of the log holds nothing; a cursor ahead is refused,
	// before Start.
	zero := syncproto.Cursor{}
	if got := MustSnapshot(t, s, All, syncproto.SnapshotQuery{Entities: entities, AsOf: &zero}); len(got.Rows) != 0 {
		t.Fatalf("state at 0: %d rows", len(got.Rows))
	}
	ahead := syncproto.Cursor{Seq: MustHead(t, s).Seq + 1}
	sink := &Collected{}
	err := s.Snapshot(context.Background(), All, syncproto.SnapshotQuery{Entities: entities, AsOf: &ahead}, sink)
	if !hasPath(err, syncproto.EInvalid, "as_of") || sink.starts != 0 {
		t.Fatalf("cursor ahead: %v, Start called %d times", err, sink.starts)
	}
}

// hasPath reports whether err is an *Error of code naming path.
func hasPath(err error, code syncproto.Code, path string) bool {
	var se *syncproto.Error
	if !errors.As(err, &se) || se.Code != code {
		return false
	}
	for _, e := range se.Errors {
		if e.Path == path {
			return true
		}
	}
	return false
}

// testSnapshotAsOfSeesNoLaterWrite: a snapshot as of the head taken before
// a stream of writes, read while they commit, shows exactly the state at
// that head: each write after it is invisible, however it interleaves.
func testSnapshotAsOfSeesNoLaterWrite(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s, p := Open(t, open, clock)
	dev := NewDevice("li.na")
	var ids []string
	var changes []syncproto.Change
	for range 12 {
		id := uuid.NewString()
		ids = append(ids, id)
		changes = append(changes, Household(id, SouthVillage, T0))
	}
	dev.Push(t, p, changes...)
	at := MustHead(t, s)
	// Written before the snapshot begins, after its point.
	dev.Push(t, p, Upsert("household", ids[0], 1, T0, map[string]any{"members": 8}), Household(uuid.NewString(), SouthVillage, T0))
	// While the snapshot reads, every row triggers a write: an edit of a
	// record (read or not yet read) and a new household.
	n := 0
	c := &Collected{onRow: func(int) error {
		if n < len(ids)-1 {
			dev.Push(t, p, Upsert("household", ids[len(ids)-1-n], 1, T0, map[string]any{"members": 9}),
				Household(uuid.NewString(), SouthVillage, T0))
			n++
		}
		return nil
	}}
	if err := s.Snapshot(context.Background(), All, syncproto.SnapshotQuery{Entities: []string{"household"}, AsOf: &at}, c); err != nil {
		t.Fatal(err)
	}
	if c.At.Seq != at.Seq || len(c.Rows) != len(ids) {
		t.Fatalf("snapshot as of %d: at %d, %d rows, want %d", at.Seq, c.At.Seq, len(c.Rows), len(ids))
	}
	for _, r := range c.Rows {
		if r.Record.Version != 1 || string(r.Record.Fields["members"]) != "5" {
			t.Fatalf("a write after the cursor shows: %+v", r.Record)
		}
	}
	// The same holds of a snapshot of the current state: its point is the
	// head when it began.
	head := MustHead(t, s)
	c = &Collected{onRow: func(int) error {
		dev.Push(t, p, Household(uuid.NewString(), SouthVillage, T0))
		return nil
	}}
	if err := s.Snapshot(context.Background(), All, syncproto.SnapshotQuery{Entities: []string{"household"}}, c); err != nil {
		t.Fatal(err)
	}
	if c.At.Seq != head.Seq || len(c.Rows) != 2*len(ids) {
		t.Fatalf("current snapshot at %d with %d rows, want %d and %d", c.At.Seq, len(c.Rows), head.Seq, 2*len(ids))
	}
}

// testSnapshotErrors: an unknown entity is EInvalid at "entities" before
// Start; the sink's errors (of Start or of a row) stop the snapshot and are
// returned; a cancelled context stops it with the context's error, current
// or as of a position, and the store serves writes and snapshots after.
func testSnapshotErrors(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	dev := NewDevice("li.na")
	var changes []syncproto.Change
	for range 30 {
		changes = append(changes, Household(uuid.NewString(), SouthVillage, T0))
	}
	dev.Push(t, p, changes...)
	ctx := context.Background()

	sink := &Collected{}
	if err := s.Snapshot(ctx, All, syncproto.SnapshotQuery{Entities: []string{"household", "school"}}, sink); !hasPath(err, syncproto.EInvalid, "entities") || sink.starts != 0 {
		t.Fatalf("unknown entity: %v, Start called %d times", err, sink.starts)
	}
	stop := errors.New("stop")
	if err := s.Snapshot(ctx, All, syncproto.SnapshotQuery{Entities: []string{"household"}}, startFails{stop}); !errors.Is(err, stop) {
		t.Fatalf("Start's error: %v", err)
	}
	sink = &Collected{onRow: func(n int) error {
		if n == 3 {
			return stop
		}
		return nil
	}}
	if err := s.Snapshot(ctx, All, syncproto.SnapshotQuery{Entities: []string{"household"}}, sink); !errors.Is(err, stop) || len(sink.Rows) != 3 {
		t.Fatalf("a row's error: %v after %d rows", err, len(sink.Rows))
	}
	for _, asOf := range []*syncproto.Cursor{nil, {Seq: 10}} {
		ctx, cancel := context.WithCancel(context.Background())
		c := &Collected{onRow: func(n int) error {
			if n == 5 {
				cancel()
			}
			return nil
		}}
		q := syncproto.SnapshotQuery{Entities: []string{"household"}, AsOf: asOf, Latest: WithLatest.Latest, LatestBy: "inspected_on"}
		err := s.Snapshot(ctx, All, q, c)
		if !errors.Is(err, context.Canceled) || len(c.Rows) > 7 {
			t.Fatalf("as_of %v: %v after %d rows", asOf, err, len(c.Rows))
		}
		cancel()
	}
	dev.Push(t, p, Household(uuid.NewString(), SouthVillage, T0))
	if c := MustSnapshot(t, s, All, syncproto.SnapshotQuery{Entities: []string{"household"}}); len(c.Rows) != 31 {
		t.Fatalf("%d rows after the stopped snapshots, want 31", len(c.Rows))
	}
}

// startFails is a sink whose Start fails.
type startFails struct{ err error }

func (s startFails) Start(syncproto.Cursor) error  { return s.err }
func (startFails) Row(syncproto.SnapshotRow) error { return errors.New("a row after a failed Start") }

// testSnapshotAsOfBeforeAMerge: as of a position before two duplicate
// households were merged, both are alive and the inspection is under the
// one it belonged to; after, a tombstone names the survivor.
func testSnapshotAsOfBeforeAMerge(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s, p := Open(t, open, clock)
	dev := NewDevice("li.na")
	first, second, ins := uuid.NewString(), uuid.NewString(), uuid.NewString()
	dev.Push(t, p, RegisteredHousehold(first, SouthVillage, "5002401072010042", T0))
	dev.Push(t, p, RegisteredHousehold(second, SouthVillage, "5002401072010042", T0), HousingInspection(ins, second, "D", T0))
	before := MustHead(t, s)
	sup := syncproto.Actor{UserID: "sup", DeviceID: uuid.NewString(), Role: syncproto.RoleSupervisor, AllRegions: true}
	dups, err := s.ListDuplicates(context.Background(), sup, "")
	if err != nil || len(dups) != 1 {
		t.Fatalf("duplicates %v, %v", dups, err)
	}
	if _, err := NewSupervisionService(s, clock).MergeHouseholds(context.Background(), sup, dups[0].ID, first, ""); err != nil {
		t.Fatal(err)
	}
	q := WithLatest
	q.Tombstones = true
	now := MustSnapshot(t, s, sup, q).ByID()
	if g := now[second].Record; !g.Deleted || g.MergedInto != first || now[first].Latest["housing_inspection"] == nil ||
		now[first].Latest["housing_inspection"].ID != ins {
		t.Fatalf("after the merge: %+v, latest of the survivor %+v", g, now[first].Latest)
	}
	q.AsOf = &before
	then := MustSnapshot(t, s, sup, q).ByID()
	g := then[second]
	if g.Record.Deleted || g.Record.MergedInto != "" || g.Latest["housing_inspection"] == nil || len(then[first].Latest) != 0 {
		t.Fatalf("before the merge: %+v, latest %+v; survivor's latest %+v", g.Record, g.Latest, then[first].Latest)
	}
	for name := range g.Record.Fields {
		if name[0] == '_' {
			t.Fatalf("a pseudo-field leaked into the fields: %v", g.Record.Fields)
		}
	}
}

// testSnapshotLatestTies: of a household's inspections on the same date,
// the latest is the one updated last, then the one with the larger id —
// in a current snapshot and in one as of a position.
func testSnapshotLatestTies(t *testing.T, open Opener) {
	clock := NewClock(T0.Add(time.Hour))
	s, p := Open(t, open, clock)
	dev := NewDevice("li.na")
	hh, tied := uuid.NewString(), uuid.NewString()
	// Two inspections of one date, pushed together: the larger id wins.
	small, large := "00000000-0000-4000-8000-000000000001", "ffffffff-0000-4000-8000-000000000001"
	dev.Push(t, p, Household(hh, SouthVillage, T0), HousingInspection(large, hh, "B", T0), HousingInspection(small, hh, "C", T0),
		Household(tied, SouthVillage, T0))
	latest := func(q syncproto.SnapshotQuery) string {
		t.Helper()
		row := MustSnapshot(t, s, All, q).ByID()[hh]
		if l := row.Latest["housing_inspection"]; l != nil {
			return l.ID
		}
		return ""
	}
	q := syncproto.SnapshotQuery{Entities: []string{"household"}, Latest: []string{"housing_inspection"}, LatestBy: "inspected_on"}
	if got := latest(q); got != large {
		t.Fatalf("latest of two inspections of one date and one update: %s, want the larger id %s", got, large)
	}
	at := MustHead(t, s)
	// The smaller id is updated later: it wins now, not as of before.
	clock.Advance(time.Minute)
	dev.Push(t, p, Upsert("housing_inspection", small, 1, T0.Add(time.Minute), map[string]any{"grade": "D"}))
	if got := latest(q); got != small {
		t.Fatalf("latest after an update of the other: %s, want %s", got, small)
	}
	// A later write elsewhere makes the snapshot at the cursor a rebuilt one.
	dev.Push(t, p, Upsert("household", hh, 1, T0, map[string]any{"members": 3}))
	q.AsOf = &at
	if got := latest(q); got != large {
		t.Fatalf("latest as of before the update: %s, want %s", got, large)
	}
}

// testSnapshotStopsWhenCancelled: a snapshot cancelled in the middle (at
// the head and as of an earlier position) returns the context's error
// within a row or two, and leaves nothing held: a push and a new snapshot
// go through.
func testSnapshotStopsWhenCancelled(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	dev := NewDevice("li.na")
	var changes []syncproto.Change
	for range 50 {
		changes = append(changes, Household(uuid.NewString(), SouthVillage, T0))
	}
	dev.Push(t, p, changes...)
	for _, asOf := range []*syncproto.Cursor{nil, {Seq: 10}} {
		ctx, cancel := context.WithCancel(context.Background())
		c := &Collected{onRow: func(n int) error {
			if n == 5 {
				cancel()
			}
			return nil
		}}
		err := s.Snapshot(ctx, All, syncproto.SnapshotQuery{Entities: []string{"household"}, AsOf: asOf,
			Latest: WithLatest.Latest, LatestBy: "inspected_on"}, c)
		if !errors.Is(err, context.Canceled) || len(c.Rows) > 7 {
			t.Fatalf("as_of %v: %v after %d rows, want context.Canceled within 7", asOf, err, len(c.Rows))
		}
		cancel()
	}
	dev.Push(t, p, Household(uuid.NewString(), SouthVillage, T0))
	if c := MustSnapshot(t, s, All, syncproto.SnapshotQuery{Entities: []string{"household"}}); len(c.Rows) != 51 {
		t.Fatalf("%d rows after the cancellations, want 51", len(c.Rows))
	}
}

// testSnapshotReadsEveryBatch: a snapshot larger than a store reads at
// once (PostgreSQL fetches its cursor 64 rows at a time) emits every
// record once, each with its latest inspection, at the head and as of an
// earlier position.
func testSnapshotReadsEveryBatch(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	dev := NewDevice("li.na")
	const n = 3*64 + 7
	var changes []syncproto.Change
	for range n {
		hh := uuid.NewString()
		changes = append(changes, Household(hh, SouthVillage, T0), HousingInspection(uuid.NewString(), hh, "B", T0))
	}
	dev.Push(t, p, changes...)
	at := MustHead(t, s)
	dev.Push(t, p, Household(uuid.NewString(), SouthVillage, T0))
	for _, asOf := range []*syncproto.Cursor{nil, &at} {
		q := WithLatest
		q.AsOf = asOf
		c := MustSnapshot(t, s, All, q)
		want := n + 1
		if asOf != nil {
			want = n
		}
		if got := c.ByID(); len(c.Rows) != want || len(got) != want {
			t.Fatalf("as_of %v: %d rows, %d households, want %d", asOf, len(c.Rows), len(got), want)
		}
		withInspection := 0
		for _, r := range c.Rows {
			if r.Latest["housing_inspection"] != nil {
				withInspection++
			}
		}
		if withInspection != n {
			t.Fatalf("as_of %v: %d households with their latest inspection, want %d", asOf, withInspection, n)
		}
	}
}
