package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// streamed is what a test keeps of one household of the stream.
type streamed struct {
	village     string
	inspections map[string]survey.InspectionFacts
}

// streamHouseholds reads the whole stream of actor's households.
func streamHouseholds(t *testing.T, s syncproto.Store, actor syncproto.Actor, q syncproto.HouseholdQuery) ([]string, map[string]streamed, syncproto.Cursor) {
	t.Helper()
	var order []string
	got := map[string]streamed{}
	at, err := s.HouseholdInspections(context.Background(), actor, q, func(h *survey.HouseholdInspections) error {
		if _, twice := got[h.ID]; twice {
			t.Fatalf("household %s streamed twice", h.ID)
		}
		order = append(order, h.ID)
		st := streamed{village: h.Village, inspections: map[string]survey.InspectionFacts{}}
		for _, in := range h.Inspections {
			st.inspections[in.ID] = in
		}
		got[h.ID] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return order, got, at
}

// testHouseholdStream: HouseholdInspections streams every live household
// of the actor's scope once, in village order, each with its accepted
// live inspections and their facts (water fields only when asked), and
// returns the head of the change log under the actor's scope; an error of
// emit stops it and is returned.
func testHouseholdStream(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	ctx := context.Background()
	dev := NewDevice("li.na")
	other := "500240108203"
	south1, south2, north, east, gone := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	housing, water, water2, eastHousing, dropped := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	at := T0.Add(-time.Hour)
	dev.Push(t, p, Household(east, other, at), Household(south1, SouthVillage, at), Household(north, NorthVillage, at),
		Household(south2, SouthVillage, at), Household(gone, SouthVillage, at),
		HousingInspection(housing, south1, "D", at), WaterInspection(water, south1, at), WaterInspection(water2, south2, at),
		HousingInspection(eastHousing, east, "B", at), HousingInspection(dropped, south2, "C", at))
	dev.Push(t, p, Delete("household", gone, 1, at), Delete("housing_inspection", dropped, 1, at))

	scoped := syncproto.Actor{UserID: "w", Scope: []string{"500240"}}
	order, got, cur := streamHouseholds(t, s, scoped, syncproto.HouseholdQuery{Forms: v1Forms})
	want := map[string][]string{south1: {housing, water}, south2: {water2}, east: {eastHousing}}
	if len(got) != len(want) {
		t.Fatalf("streamed %v, want the live households of 500240 %v", order, want)
	}
	villages := make([]string, len(order))
	for i, id := range order {
		villages[i] = got[id].village
	}
	if !slices.IsSorted(villages) {
		t.Fatalf("households not in village order: %v", villages)
	}
	for id, ins := range want {
		h, ok := got[id]
		if !ok || len(h.inspections) != len(ins) {
			t.Fatalf("household %s: %+v, want inspections %v", id, h, ins)
		}
		for _, in := range ins {
			if _, ok := h.inspections[in]; !ok {
				t.Fatalf("household %s lacks inspection %s: %+v", id, in, h.inspections)
			}
		}
	}
	if f := got[south1].inspections[housing]; f.Entity != "housing_inspection" || f.Kind != survey.KindHousing || f.Grade != "D" || f.Device != dev.Actor.DeviceID ||
		f.InspectedOn != at.Format(time.DateOnly) || f.Seq == 0 || f.Fields != nil {
		t.Fatalf("housing facts %+v", f)
	}
	if f := got[south1].inspections[water]; f.Entity != "water_inspection" || f.Kind != survey.KindWater || f.Fields != nil {
		t.Fatalf("water facts without WaterFields: %+v", f)
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Seq != head || cur.Scope != scoped.ScopeKey() {
		t.Fatalf("stream at %+v, head %d under %q", cur, head, scoped.ScopeKey())
	}

	_, got, _ = streamHouseholds(t, s, All, syncproto.HouseholdQuery{Forms: v1Forms, WaterFields: true})
	if _, ok := got[north]; !ok || len(got) != 4 {
		t.Fatalf("every region: %d households, north %v", len(got), ok)
	}
	if f := got[south1].inspections[water]; f.Fields == nil || string(f.Fields["source"]) != `"piped"` {
		t.Fatalf("water facts with WaterFields: %+v", f)
	}
	if f := got[south1].inspections[housing]; f.Fields != nil {
		t.Fatalf("a housing inspection came with fields: %+v", f)
	}

	stop := errors.New("stop")
	calls := 0
	_, err = s.HouseholdInspections(ctx, All, syncproto.HouseholdQuery{Forms: v1Forms}, func(*survey.HouseholdInspections) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("emit's error: returned %v after %d calls", err, calls)
	}
}

// testSupervisionDecisions: the SupervisionService's decisions, each in
// one WriteSupervision, are stored: a dismissed duplicate and a closed
// quarantine entry list as such, with who, when and the note; the
// transaction's lookups of unknown entries are nil, not errors.
func testSupervisionDecisions(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s, p := Open(t, open, clock)
	ctx := context.Background()
	sup := NewSupervisionService(s, clock)
	dev := NewDevice("li.na")
	a, b := uuid.NewString(), uuid.NewString()
	bad := Upsert("water_inspection", uuid.NewString(), 0, T0, map[string]any{"household_id": a,
		"inspected_on": "2026-11-20", "reliability_pct": 140})
	dev.Push(t, p, RegisteredHousehold(a, SouthVillage, "R-9", T0), RegisteredHousehold(b, SouthVillage, "R-9", T0), bad)
	clock.Advance(time.Hour)
	actor := syncproto.Actor{UserID: "sup", DeviceID: uuid.NewString(), Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}

	dups, err := s.ListDuplicates(ctx, actor, syncproto.StateOpen)
	if err != nil || len(dups) != 1 {
		t.Fatalf("duplicates %+v, %v", dups, err)
	}
	if _, err := sup.DismissDuplicate(ctx, actor, dups[0].ID, "two brothers"); err != nil {
		t.Fatal(err)
	}
	dups, err = s.ListDuplicates(ctx, actor, "")
	if d := dups[0]; err != nil || d.State != syncproto.StateDismissed || d.DecidedBy != "sup" || d.Note != "two brothers" ||
		!d.DecidedAt.Equal(T0.Add(time.Hour)) {
		t.Fatalf("dismissed duplicate %+v, %v", dups, err)
	}

	q, _, err := s.ListQuarantine(ctx, actor, syncproto.StateOpen, 0, 10)
	if err != nil || len(q) != 1 {
		t.Fatalf("quarantine %+v, %v", q, err)
	}
	if _, err := sup.CloseQuarantine(ctx, actor, q[0].ID, "sent again"); err != nil {
		t.Fatal(err)
	}
	q, _, err = s.ListQuarantine(ctx, actor, "", 0, 10)
	if e := q[0]; err != nil || e.State != syncproto.StateClosed || e.Closed == nil || e.Closed.By != "sup" ||
		e.Closed.Note != "sent again" || !e.Closed.At.Equal(T0.Add(time.Hour)) {
		t.Fatalf("closed entry %+v, %v", q, err)
	}

	err = s.WriteSupervision(ctx, "test", func(ctx context.Context, tx syncproto.SuperviseTx) error {
		c, err := tx.Conflict(ctx, uuid.NewString())
		if err != nil || c != nil {
			return errors.Join(errBroken, err)
		}
		d, err := tx.Duplicate(ctx, uuid.NewString())
		if err != nil || d != nil {
			return errors.Join(errBroken, err)
		}
		e, err := tx.QuarantineEntry(ctx, uuid.NewString())
		if err != nil || e != nil {
			return errors.Join(errBroken, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("lookups of unknown entries: %v", err)
	}
}

// v1Forms are the roles of the v1 forms, which the suite's records use.
var v1Forms = survey.FormsOf(schema.V1())
