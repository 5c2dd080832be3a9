package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// testReports: the household stream carries what the reports judge by —
// the household's head, registration number and status, each housing
// inspection's grade and renovation, the device that created it (not the
// last to edit it), and the open or auto-resolved conflicts on its grade —
// and the ReportService builds from it, over the store, the coverage of
// each village of the scope in code order with its roll-ups, and the
// re-inspection list, both at the head of the change log; emit's error
// stops either and is returned.
func testReports(t *testing.T, open Opener) {
	clock := NewClock(T0.Add(time.Hour))
	s, p := Open(t, open, clock)
	ctx := context.Background()
	a, b := NewDevice("li.na"), NewDevice("zhao.lei")
	east := "500240108203"
	h1, h2, h3, h4, h5 := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	i1, i2, w2, i4 := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	dangerous := HousingInspection(i1, h1, "D", T0)
	north := HousingInspection(i4, h4, "C", T0)
	delete(north.Fields, "ventilation")
	north.Fields["heating_insulation"] = []byte(`"adequate"`)
	a.Push(t, p, RegisteredHousehold(h1, SouthVillage, "R-1", T0), dangerous,
		RegisteredHousehold(h2, SouthVillage, "R-2", T0), HousingInspection(i2, h2, "B", T0), WaterInspection(w2, h2, T0),
		RegisteredHousehold(h3, east, "R-3", T0),
		RegisteredHousehold(h4, NorthVillage, "R-4", T0), north,
		RegisteredHousehold(h5, SouthVillage, "R-5", T0))
	a.Push(t, p, Delete("household", h5, 1, T0), Upsert("housing_inspection", i4, 1, T0.Add(time.Minute), map[string]any{"grade": "D"}))
	resp := b.Push(t, p, Upsert("housing_inspection", i2, 1, T0.Add(time.Minute), map[string]any{"renovation": "planned"}),
		Upsert("housing_inspection", i4, 1, T0.Add(2*time.Minute), map[string]any{"grade": "B"}))
	if r := resp.Results[1]; r.Status != syncproto.StatusMerged || len(r.Conflicts) != 1 || r.Conflicts[0].Field != "grade" {
		t.Fatalf("the contested grade: %+v", r)
	}
	gradeConflict := resp.Results[1].Conflicts[0].ConflictID
	head := MustHead(t, s).Seq

	_, got, _ := streamHouseholds(t, s, All, syncproto.HouseholdQuery{Forms: v1Forms})
	if len(got) != 4 {
		t.Fatalf("streamed %d households, want the 4 live ones", len(got))
	}
	if f := got[h2].inspections[i2]; f.Device != a.Actor.DeviceID || f.Grade != "B" || f.Renovation != "planned" || len(f.GradeConflicts) != 0 ||
		f.UpdatedAt.IsZero() {
		t.Fatalf("facts of an inspection another device edited: %+v", f)
	}
	if f := got[h4].inspections[i4]; f.Grade != "D" || !slices.Equal(f.GradeConflicts, []string{gradeConflict}) {
		t.Fatalf("facts of a contested grade: %+v", f)
	}
	// The household's own facts.
	var h1Facts *survey.HouseholdInspections
	if _, err := s.HouseholdInspections(ctx, All, syncproto.HouseholdQuery{Forms: v1Forms}, func(h *survey.HouseholdInspections) error {
		if h.ID == h1 {
			c := *h
			h1Facts = &c
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if h1Facts == nil || h1Facts.HeadName != "陈秀英" || h1Facts.RegistrationNo != "R-1" || h1Facts.Status != "in_poverty" || h1Facts.Village != SouthVillage {
		t.Fatalf("household facts %+v", h1Facts)
	}

	reports := syncproto.NewReportService(s, syncproto.ReportOptions{})
	coverage := func(actor syncproto.Actor) ([]*survey.VillageCoverage, *syncproto.CoverageReport) {
		t.Helper()
		var villages []*survey.VillageCoverage
		sum, err := reports.Coverage(ctx, actor, func(v *survey.VillageCoverage) error {
			villages = append(villages, v)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return villages, sum
	}
	villages, sum := coverage(All)
	var codes []string
	for _, v := range villages {
		codes = append(codes, v.Code)
	}
	if want := []string{NorthVillage, SouthVillage, east}; !slices.Equal(codes, want) {
		t.Fatalf("coverage of villages %v, want %v (code order, each once)", codes, want)
	}
	if c := villages[1].Counts; c.Households != 2 || c.WithHousing != 2 || c.WithWater != 1 || c.NeverInspected != 0 || c.Grades["D"] != 1 || c.Grades["B"] != 1 {
		t.Fatalf("coverage of %s: %+v", SouthVillage, c)
	}
	if c := villages[2].Counts; c.Households != 1 || c.NeverInspected != 1 {
		t.Fatalf("coverage of %s: %+v", east, c)
	}
	if sum.Totals.Households != 4 || sum.Totals.NeverInspected != 1 || sum.At.Seq != head || len(sum.Counties) != 2 {
		t.Fatalf("coverage totals %+v at %+v, counties %d", sum.Totals, sum.At, len(sum.Counties))
	}
	county := syncproto.Actor{UserID: "sup", Scope: []string{"500240"}}
	if villages, sum := coverage(county); len(villages) != 2 || sum.Totals.Households != 3 || sum.At.Scope != county.ScopeKey() {
		t.Fatalf("coverage of the county: %d villages, %+v at %+v", len(villages), sum.Totals, sum.At)
	}

	var due []string
	rsum, err := reports.Reinspections(ctx, All, survey.ReinspectionQuery{Now: clock.Now(), After: 365 * 24 * time.Hour}, func(d *survey.DueHousehold) error {
		due = append(due, d.HouseholdID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sameSet(due, []string{h1, h4}) || rsum.Households != 2 || rsum.ByReason[survey.ReasonDangerousHouse] != 2 ||
		rsum.ByReason[survey.ReasonGradeConflict] != 1 || rsum.At.Seq != head {
		t.Fatalf("due for re-inspection %v (want %s and %s), summary %+v", due, h1, h4, rsum)
	}

	stop := errors.New("stop")
	if _, err := reports.Coverage(ctx, All, func(*survey.VillageCoverage) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("coverage's emit error: %v", err)
	}
	if _, err := reports.Reinspections(ctx, All, survey.ReinspectionQuery{Now: clock.Now(), After: time.Hour}, func(*survey.DueHousehold) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("re-inspection's emit error: %v", err)
	}
}

// testHouseholdStreamIsOnePoint: the household stream reads one point of
// the change log, the head when it began: households pushed and edits made
// while it is read do not show, and the cursor it returns is that head.
func testHouseholdStreamIsOnePoint(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0.Add(time.Hour)))
	dev := NewDevice("li.na")
	var ids []string
	var changes []syncproto.Change
	for range 10 {
		id := uuid.NewString()
		ids = append(ids, id)
		changes = append(changes, Household(id, SouthVillage, T0))
	}
	dev.Push(t, p, changes...)
	head := MustHead(t, s)
	n := 0
	at, err := s.HouseholdInspections(context.Background(), All, syncproto.HouseholdQuery{Forms: v1Forms}, func(h *survey.HouseholdInspections) error {
		if h.HeadName != "陈秀英" || len(h.Inspections) != 0 {
			return errors.New("a write made while the stream is read shows in it: " + h.ID)
		}
		// Each household read: a new household and an inspection of one
		// not yet read, both committed before the next is read.
		dev.Push(t, p, Household(uuid.NewString(), SouthVillage, T0), HousingInspection(uuid.NewString(), ids[len(ids)-1-n%len(ids)], "D", T0),
			Upsert("household", ids[len(ids)-1-n%len(ids)], int64(1), T0, map[string]any{"head_name": "改名"}))
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ids) || at.Seq != head.Seq {
		t.Fatalf("streamed %d households at %d, want %d at the head %d when it began", n, at.Seq, len(ids), head.Seq)
	}
}
