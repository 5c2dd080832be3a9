package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/syncproto"
)

// contested makes, for each village, a household that device a edits and
// device b then edits from the same base: an open conflict on members and
// an auto-resolved one on head_name per household, the villages' in the
// order given, each in a change set of its own. It returns the households.
func contested(t *testing.T, p *syncproto.PushService, villages ...string) []string {
	t.Helper()
	a, b := NewDevice("li.na"), NewDevice("zhao.lei")
	var ids []string
	for _, v := range villages {
		hh := uuid.NewString()
		ids = append(ids, hh)
		a.Push(t, p, Household(hh, v, T0))
		a.Push(t, p, Upsert("household", hh, 1, T0.Add(time.Minute), map[string]any{"members": 6, "head_name": "陈秀芳"}))
		b.Push(t, p, Upsert("household", hh, 1, T0.Add(2*time.Minute), map[string]any{"members": 7, "head_name": "陈秀瑛"}))
	}
	return ids
}

// listConflicts follows ListConflicts' positions from 0 with pages of
// limit until a page comes back short, and checks that the positions move
// forward.
func listConflicts(t *testing.T, s syncproto.Store, actor syncproto.Actor, state string, limit int) []syncproto.ConflictEntry {
	t.Helper()
	var all []syncproto.ConflictEntry
	var after int64
	for {
		page, next, err := s.ListConflicts(context.Background(), actor, state, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) > 0 && next <= after {
			t.Fatalf("conflict position went from %d to %d", after, next)
		}
		if len(page) < limit {
			return all
		}
		after = next
	}
}

func conflictIDs(list []syncproto.ConflictEntry) []string {
	var out []string
	for _, c := range list {
		out = append(out, c.ID)
	}
	return out
}

// testConflictQueue: ListConflicts returns the conflicts of the actor's
// scope in the order they were made (the order of Conflicts), optionally
// of one state, and its positions page through them without a repeat or a
// gap, each with the head of its household; Conflict returns one as
// listed, or ENotFound; Conflicts of one
// record lists that record's only.
func testConflictQueue(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0.Add(time.Hour)))
	ctx := context.Background()
	ids := contested(t, p, SouthVillage, NorthVillage, "500240108203")
	south, north := ids[0], ids[1]

	every, err := s.Conflicts(ctx, "")
	if err != nil || len(every) != 6 {
		t.Fatalf("conflicts %d, %v; want 6", len(every), err)
	}
	for i, c := range every {
		if want := ids[i/2]; c.RecordID != want {
			t.Fatalf("conflict %d is of %s, want %s: not in the order made", i, c.RecordID, want)
		}
	}
	for _, limit := range []int{1, 4, 100} {
		if got := listConflicts(t, s, All, "", limit); !slices.Equal(conflictIDs(got), conflictIDs(every)) {
			t.Fatalf("pages of %d: %v, want %v", limit, conflictIDs(got), conflictIDs(every))
		}
	}
	county := syncproto.Actor{UserID: "sup", Scope: []string{"500240"}}
	got := listConflicts(t, s, county, "", 1)
	if len(got) != 4 || got[0].RecordID != south || got[3].RecordID != ids[2] {
		t.Fatalf("the county's conflicts: %+v", got)
	}
	for _, c := range got {
		if c.Village == NorthVillage {
			t.Fatalf("a conflict outside the scope: %+v", c)
		}
	}
	open1 := listConflicts(t, s, county, syncproto.StateOpen, 1)
	if len(open1) != 2 || open1[0].Field != "members" || open1[0].State != syncproto.StateOpen || open1[1].RecordID != ids[2] {
		t.Fatalf("the county's open conflicts: %+v", open1)
	}
	if auto := listConflicts(t, s, county, syncproto.StateAutoResolved, 10); len(auto) != 2 || auto[0].Field != "head_name" {
		t.Fatalf("the county's auto-resolved conflicts: %+v", auto)
	}
	if none := listConflicts(t, s, syncproto.Actor{UserID: "nobody"}, "", 10); len(none) != 0 {
		t.Fatalf("an actor without a scope sees %d conflicts", len(none))
	}

	c, err := s.Conflict(ctx, open1[0].ID)
	if err != nil || c.ID != open1[0].ID || c.RecordID != south || c.Field != "members" || string(c.Kept) != "6" ||
		string(c.Incoming) != "7" || c.Village != SouthVillage || c.State != syncproto.StateOpen || c.Version != 3 {
		t.Fatalf("conflict %+v, %v", c, err)
	}
	if head := string(MustRecord(t, s, south).Fields["head_name"]); `"`+c.HouseholdName+`"` != head {
		t.Fatalf("conflict's household name %q, the household's head is %s", c.HouseholdName, head)
	}
	if _, err := s.Conflict(ctx, uuid.NewString()); syncproto.ErrorCode(err) != syncproto.ENotFound {
		t.Fatalf("an unknown conflict: %v", err)
	}
	if mine, err := s.Conflicts(ctx, north); err != nil || len(mine) != 2 || mine[0].RecordID != north || mine[1].RecordID != north {
		t.Fatalf("conflicts of one record: %+v, %v", mine, err)
	}
}

// testResolveConflict: a resolution, in one WriteSupervision, is stored:
// the conflict reads as resolved with who, when, the value and the note
// (Conflict, the state filter), OpenConflicts no longer lists it, the
// record has a new version with the value whose history names the
// conflict; a second resolution is EConflict and changes nothing, one
// outside the actor's scope EForbidden, an unknown one ENotFound.
func testResolveConflict(t *testing.T, open Opener) {
	clock := NewClock(T0.Add(time.Hour))
	s, p := Open(t, open, clock)
	ctx := context.Background()
	ids := contested(t, p, SouthVillage, NorthVillage)
	south := ids[0]
	sup := syncproto.Actor{UserID: "sup", DeviceID: uuid.NewString(), Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	service := NewSupervisionService(s, clock)

	openOf := func(record string) []string {
		t.Helper()
		var got []string
		err := s.WriteSupervision(ctx, "test", func(ctx context.Context, tx syncproto.SuperviseTx) error {
			list, err := tx.OpenConflicts(ctx, record)
			for _, c := range list {
				if c.State != syncproto.StateOpen || c.RecordID != record {
					t.Errorf("OpenConflicts of %s lists %+v", record, c)
				}
				got = append(got, c.ID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	pending := listConflicts(t, s, sup, syncproto.StateOpen, 10)
	if len(pending) != 1 || !slices.Equal(openOf(south), []string{pending[0].ID}) {
		t.Fatalf("open conflicts of the southern household: listed %+v, in the transaction %v", pending, openOf(south))
	}
	if got := openOf(ids[1]); len(got) != 1 {
		t.Fatalf("open conflicts of the northern household: %v", got)
	}
	clock.Advance(time.Hour)
	res, err := service.ResolveConflict(ctx, sup, syncproto.Resolution{ConflictID: pending[0].ID, Value: json.RawMessage(`8`), Note: "asked the family"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Record.Version != 4 || string(res.Record.Fields["members"]) != "8" {
		t.Fatalf("resolution's record %+v", res.Record)
	}
	c, err := s.Conflict(ctx, pending[0].ID)
	if err != nil || c.State != syncproto.StateResolved || c.Resolved == nil || c.Resolved.By != "sup" || c.Resolved.Device != sup.DeviceID ||
		c.Resolved.Note != "asked the family" || string(c.Resolved.Value) != "8" || c.Resolved.Version != 4 || !c.Resolved.At.Equal(clock.Now()) {
		t.Fatalf("resolved conflict %+v (%+v), %v", c, c.Resolved, err)
	}
	if got := openOf(south); len(got) != 0 {
		t.Fatalf("a resolved conflict still open: %v", got)
	}
	if got := listConflicts(t, s, sup, syncproto.StateOpen, 10); len(got) != 0 {
		t.Fatalf("open conflicts after the resolution: %+v", got)
	}
	if got := listConflicts(t, s, sup, syncproto.StateResolved, 10); len(got) != 1 || got[0].ID != c.ID {
		t.Fatalf("resolved conflicts: %+v", got)
	}
	r := MustRecord(t, s, south)
	if r.Version != 4 || string(r.Fields["members"]) != "8" || r.UpdatedBy != "sup" {
		t.Fatalf("record after the resolution %+v", r)
	}
	hist, err := s.History(ctx, south)
	if last := hist[len(hist)-1]; err != nil || last.Version != 4 || !slices.Contains(last.ConflictIDs, c.ID) ||
		string(last.Changes["members"].After) != "8" {
		t.Fatalf("history after the resolution %+v, %v", hist, err)
	}

	if _, err := service.ResolveConflict(ctx, sup, syncproto.Resolution{ConflictID: c.ID, Value: json.RawMessage(`9`)}); syncproto.ErrorCode(err) != syncproto.EConflict {
		t.Fatalf("a second resolution: %v", err)
	}
	if r := MustRecord(t, s, south); r.Version != 4 || string(r.Fields["members"]) != "8" {
		t.Fatalf("a refused resolution changed the record: %+v", r)
	}
	northern := listConflicts(t, s, All, syncproto.StateOpen, 10)
	if len(northern) != 1 {
		t.Fatalf("open conflicts of every region %+v", northern)
	}
	if _, err := service.ResolveConflict(ctx, sup, syncproto.Resolution{ConflictID: northern[0].ID, Value: json.RawMessage(`8`)}); syncproto.ErrorCode(err) != syncproto.EForbidden {
		t.Fatalf("a resolution outside the scope: %v", err)
	}
	if c, _ := s.Conflict(ctx, northern[0].ID); c.State != syncproto.StateOpen {
		t.Fatalf("a refused resolution changed the conflict: %+v", c)
	}
	if _, err := service.ResolveConflict(ctx, sup, syncproto.Resolution{ConflictID: uuid.NewString(), Value: json.RawMessage(`8`)}); syncproto.ErrorCode(err) != syncproto.ENotFound {
		t.Fatalf("an unknown conflict: %v", err)
	}
}

// testDuplicates: SimilarHouseholds finds the live households of a village
// with the registration number or the head name asked, but the one named;
// a second household with a live one's registration number is a suspected
// duplicate (AddDuplicate once per pair), listed in the actor's
// scope with both heads; merging it (in one WriteSupervision) makes the
// other a tombstone naming the survivor, moves its live inspections
// (Children, deleted ones included, are read; the deleted stay) and
// records the decision (MarkDecided); state filters hold.
func testDuplicates(t *testing.T, open Opener) {
	clock := NewClock(T0.Add(time.Hour))
	s, p := Open(t, open, clock)
	ctx := context.Background()
	dev := NewDevice("li.na")
	a, b, c, d, far := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	insB, goneB := uuid.NewString(), uuid.NewString()
	dev.Push(t, p, named(a, SouthVillage, "R-1", "王大山"), named(far, NorthVillage, "R-1", "王大山"))
	dev.Push(t, p, named(b, SouthVillage, "R-1", "王小山"), HousingInspection(insB, b, "C", T0), HousingInspection(goneB, b, "D", T0))
	dev.Push(t, p, named(c, SouthVillage, "R-3", "王大山"), Delete("housing_inspection", goneB, 1, T0))
	dev.Push(t, p, named(d, SouthVillage, "R-3", "李四"))

	// SimilarHouseholds and AddDuplicate, directly.
	err := s.WriteSupervision(ctx, "test", func(ctx context.Context, tx syncproto.SuperviseTx) error {
		similar, err := tx.SimilarHouseholds(ctx, SouthVillage, uuid.NewString(), "R-1", "nobody")
		if err != nil {
			return err
		}
		if got := recordIDs(similar); !sameSet(got, []string{a, b}) {
			t.Errorf("similar by registration number: %v, want %v", got, []string{a, b})
		}
		similar, err = tx.SimilarHouseholds(ctx, SouthVillage, a, "R-9", "王大山")
		if err != nil {
			return err
		}
		if got := recordIDs(similar); !sameSet(got, []string{c}) {
			t.Errorf("similar by head name, other than the household itself: %v, want %v", got, []string{c})
		}
		children, err := tx.Children(ctx, b)
		if err != nil {
			return err
		}
		if got := recordIDs(children); !sameSet(got, []string{insB, goneB}) {
			t.Errorf("children of b: %v, want both inspections, the deleted one too", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	sup := syncproto.Actor{UserID: "sup", DeviceID: uuid.NewString(), Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	dups, err := s.ListDuplicates(ctx, sup, "")
	if err != nil || len(dups) != 2 {
		t.Fatalf("duplicates %+v, %v; want a~b and c~d", dups, err)
	}
	var ab syncproto.Duplicate
	for _, dup := range dups {
		if dup.Village != SouthVillage || dup.State != syncproto.StateOpen || dup.CreatedAt.IsZero() ||
			!(dup.HouseholdA == a && dup.HouseholdB == b || dup.HouseholdA == c && dup.HouseholdB == d) {
			t.Fatalf("duplicate %+v", dup)
		}
		if dup.HouseholdB == b {
			ab = dup
		}
	}
	if ab.ID == "" || ab.NameA != "王大山" || ab.NameB != "王小山" {
		t.Fatalf("the duplicate of a and b: %+v", ab)
	}
	// Once per pair: the same pair recorded again is still one.
	err = s.WriteSupervision(ctx, "test", func(ctx context.Context, tx syncproto.SuperviseTx) error {
		return tx.AddDuplicate(ctx, syncproto.Duplicate{ID: uuid.NewString(), Village: SouthVillage, HouseholdA: a, HouseholdB: b,
			Reason: ab.Reason, State: syncproto.StateOpen, CreatedAt: clock.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.ListDuplicates(ctx, sup, ""); len(again) != 2 {
		t.Fatalf("the pair recorded twice: %+v", again)
	}
	if north, _ := s.ListDuplicates(ctx, syncproto.Actor{UserID: "n", Scope: []string{"150422"}}, ""); len(north) != 0 {
		t.Fatalf("the north sees the south's duplicates: %+v", north)
	}

	clock.Advance(time.Hour)
	res, err := NewSupervisionService(s, clock).MergeHouseholds(ctx, sup, ab.ID, a, "the same family")
	if err != nil {
		t.Fatal(err)
	}
	if res.Survivor != a || res.Tombstone != b || !slices.Equal(res.Repointed, []string{insB}) {
		t.Fatalf("merge result %+v", res)
	}
	if g := MustRecord(t, s, b); !g.Deleted || g.MergedInto != a {
		t.Fatalf("the merged household %+v", g)
	}
	if in := MustRecord(t, s, insB); in.Parent != a || string(in.Fields["household_id"]) != `"`+a+`"` || in.Deleted {
		t.Fatalf("the moved inspection %+v", in)
	}
	if in := MustRecord(t, s, goneB); in.Parent != b {
		t.Fatalf("a deleted inspection moved: %+v", in)
	}
	merged, err := s.ListDuplicates(ctx, sup, syncproto.StateMerged)
	if m := merged; err != nil || len(m) != 1 || m[0].ID != ab.ID || m[0].Survivor != a || m[0].DecidedBy != "sup" ||
		m[0].Note != "the same family" || !m[0].DecidedAt.Equal(clock.Now()) {
		t.Fatalf("merged duplicates %+v, %v", merged, err)
	}
	if open, _ := s.ListDuplicates(ctx, sup, syncproto.StateOpen); len(open) != 1 || open[0].HouseholdB != d {
		t.Fatalf("open duplicates after the merge: %+v", open)
	}
	// The tombstone is no longer a live household that looks alike.
	err = s.WritePush(ctx, 1, func(ctx context.Context, tx syncproto.PushTx) error {
		similar, err := tx.SimilarHouseholds(ctx, SouthVillage, uuid.NewString(), "R-1", "")
		if got := recordIDs(similar); err == nil && !sameSet(got, []string{a}) {
			t.Errorf("similar after the merge: %v, want only the survivor %s", got, a)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSupervisionService(s, clock).MergeHouseholds(ctx, sup, ab.ID, a, ""); syncproto.ErrorCode(err) != syncproto.EConflict {
		t.Fatalf("merging a decided duplicate again: %v", err)
	}
}

// named builds the creation of a household with a registration number and
// a head of its own.
func named(id, village, registrationNo, head string) syncproto.Change {
	return Upsert("household", id, 0, T0, map[string]any{"village": village, "head_name": head,
		"registration_no": registrationNo, "members": 5, "category": "registered_poor", "status": "in_poverty"})
}

func recordIDs(list []*syncproto.StoredRecord) []string {
	var out []string
	for _, r := range list {
		out = append(out, r.ID)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// testQuarantineQueue: ListQuarantine returns the rejected changes of the
// actor's scope (by the village of the record they would have written, or
// of its household) in the order received, with the household's head,
// optionally of one state, paged without a repeat or a gap; Quarantined lists every one, or one change
// set's.
func testQuarantineQueue(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s, p := Open(t, open, clock)
	ctx := context.Background()
	dev := NewDevice("li.na")
	south, north := uuid.NewString(), uuid.NewString()
	dev.Push(t, p, Household(south, SouthVillage, T0), Household(north, NorthVillage, T0))
	bad := func(household string) syncproto.Change {
		return Upsert("water_inspection", uuid.NewString(), 0, T0, map[string]any{"household_id": household,
			"inspected_on": "2026-11-20", "reliability_pct": 140})
	}
	var want []string
	var sets []string
	for i := range 5 {
		hh := south
		if i == 2 {
			hh = north
		}
		ch := bad(hh)
		cs := dev.Changeset(ch)
		if _, err := p.Push(ctx, dev.Actor, cs); err != nil {
			t.Fatal(err)
		}
		sets = append(sets, cs.ChangesetID)
		if hh == south {
			want = append(want, ch.ID)
		}
	}
	every, err := s.Quarantined(ctx, "")
	if err != nil || len(every) != 5 {
		t.Fatalf("quarantined %d, %v", len(every), err)
	}
	for i, q := range every {
		if q.ChangesetID != sets[i] {
			t.Fatalf("quarantine entry %d is of change set %s, want %s: not in the order received", i, q.ChangesetID, sets[i])
		}
	}
	if one, err := s.Quarantined(ctx, sets[2]); err != nil || len(one) != 1 || one[0].Village != NorthVillage {
		t.Fatalf("one change set's quarantine: %+v, %v", one, err)
	}
	county := syncproto.Actor{UserID: "sup", Scope: []string{"500240"}}
	list := func(state string, limit int) []string {
		t.Helper()
		var got []string
		var after int64
		for {
			page, next, err := s.ListQuarantine(ctx, county, state, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range page {
				if q.Village != SouthVillage || q.State == "" || q.HouseholdName != "陈秀英" {
					t.Fatalf("an entry outside the scope, without a state or its household's head: %+v", q)
				}
				got = append(got, q.RecordID)
			}
			if len(page) < limit {
				return got
			}
			if next <= after {
				t.Fatalf("quarantine position went from %d to %d", after, next)
			}
			after = next
		}
	}
	for _, limit := range []int{1, 3, 10} {
		if got := list("", limit); !slices.Equal(got, want) {
			t.Fatalf("pages of %d: %v, want %v", limit, got, want)
		}
	}
	q, _, err := s.ListQuarantine(ctx, county, syncproto.StateOpen, 0, 1)
	if err != nil || len(q) != 1 {
		t.Fatal(err)
	}
	if _, err := NewSupervisionService(s, clock).CloseQuarantine(ctx, syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, Scope: county.Scope}, q[0].ID, "sent again"); err != nil {
		t.Fatal(err)
	}
	if got := list(syncproto.StateOpen, 2); !slices.Equal(got, want[1:]) {
		t.Fatalf("open entries after a close: %v, want %v", got, want[1:])
	}
	if got := list(syncproto.StateClosed, 2); !slices.Equal(got, want[:1]) {
		t.Fatalf("closed entries: %v, want %v", got, want[:1])
	}
}
