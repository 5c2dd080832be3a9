package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// summaryStore returns the store's SummaryStore, or skips the test for a
// store that keeps no household summaries (its reports read every
// household, which the report service falls back to).
func summaryStore(t *testing.T, s syncproto.Store) syncproto.SummaryStore {
	t.Helper()
	ss, ok := s.(syncproto.SummaryStore)
	if !ok {
		t.Skip("the store keeps no household summaries (syncproto.SummaryStore)")
	}
	return ss
}

// summaryVillages are the villages of the property: two of one township,
// one of another township of the same county, one of another county.
var summaryVillages = []string{SouthVillage, "500240107202", "500240108203", NorthVillage}

// summaryWorld drives random writes through the services: what the
// property needs to know of the records it made.
type summaryWorld struct {
	t       *testing.T
	s       syncproto.Store
	p       *syncproto.PushService
	sup     *syncproto.SupervisionService
	clock   *Clock
	rng     *rand.Rand
	devices []*Device
	house   []string            // households made (some deleted or merged since)
	insp    map[string][]string // a household's inspections, by id
}

func (w *summaryWorld) version(id string) int64 {
	r, err := w.s.Record(context.Background(), id)
	if err != nil {
		return -1
	}
	return r.Version
}

// live returns a household that is neither deleted nor merged, or "".
func (w *summaryWorld) live() string {
	for range 8 {
		id := w.house[w.rng.IntN(len(w.house))]
		if r, err := w.s.Record(context.Background(), id); err == nil && !r.Deleted && r.MergedInto == "" {
			return id
		}
	}
	return ""
}

func (w *summaryWorld) device() *Device { return w.devices[w.rng.IntN(len(w.devices))] }

func (w *summaryWorld) day() time.Time { return T0.AddDate(0, 0, -w.rng.IntN(5)) }

// step makes one random write: a household, an inspection of either kind,
// a status change, a move to another village, a delete, a merge of
// duplicates, a contested grade and its resolution.
func (w *summaryWorld) step() {
	t, ctx := w.t, context.Background()
	w.clock.Advance(time.Minute)
	at := w.clock.Now()
	switch op := w.rng.IntN(12); {
	case op < 3 || len(w.house) == 0:
		id := uuid.NewString()
		village := summaryVillages[w.rng.IntN(len(summaryVillages))]
		ch := Household(id, village, at)
		if w.rng.IntN(3) == 0 { // a likely duplicate of another
			ch = RegisteredHousehold(id, village, "R-dup", at)
		}
		w.device().Push(t, w.p, ch)
		w.house = append(w.house, id)
	case op < 5:
		hh := w.live()
		if hh == "" {
			return
		}
		id := uuid.NewString()
		grade := []string{"A", "B", "C", "D"}[w.rng.IntN(4)]
		fields := map[string]any{"household_id": hh, "grade": grade, "inspected_on": w.day().Format(time.DateOnly),
			"ventilation": "adequate", "heating_insulation": "adequate",
			"renovation": []string{"none", "planned", "completed", "verified"}[w.rng.IntN(4)]}
		if prev := w.insp[hh]; len(prev) > 0 && w.rng.IntN(3) == 0 {
			fields["previous_id"] = prev[w.rng.IntN(len(prev))]
		}
		if w.rng.IntN(4) == 0 {
			delete(fields, "renovation")
		}
		w.device().Push(t, w.p, Upsert("housing_inspection", id, 0, at, fields))
		w.insp[hh] = append(w.insp[hh], id)
	case op < 7:
		hh := w.live()
		if hh == "" {
			return
		}
		id := uuid.NewString()
		fields := map[string]any{"household_id": hh, "inspected_on": w.day().Format(time.DateOnly), "source": "piped",
			"quality_ok": w.rng.IntN(4) > 0, "liters_per_person_day": 20 + w.rng.IntN(80), "fetch_minutes": w.rng.IntN(40),
			"reliability_pct": 80 + w.rng.IntN(20)}
		for _, f := range []string{"quality_ok", "fetch_minutes"} {
			if w.rng.IntN(5) == 0 {
				delete(fields, f)
			}
		}
		w.device().Push(t, w.p, Upsert("water_inspection", id, 0, at, fields))
		w.insp[hh] = append(w.insp[hh], id)
	case op == 7:
		if hh := w.live(); hh != "" {
			status := []string{"in_poverty", "lifted_out", "relapse_risk"}[w.rng.IntN(3)]
			w.device().Push(t, w.p, Upsert("household", hh, w.version(hh), at, map[string]any{"status": status}))
		}
	case op == 8:
		if hh := w.live(); hh != "" {
			village := summaryVillages[w.rng.IntN(len(summaryVillages))]
			w.device().Push(t, w.p, Upsert("household", hh, w.version(hh), at, map[string]any{"village": village}))
		}
	case op == 9:
		hh := w.live()
		if hh == "" {
			return
		}
		if ins := w.insp[hh]; len(ins) > 0 && w.rng.IntN(2) == 0 {
			id := ins[w.rng.IntN(len(ins))]
			if v := w.version(id); v > 0 {
				w.device().Push(t, w.p, Delete(w.entityOf(id), id, v, at))
			}
			return
		}
		w.device().Push(t, w.p, Delete("household", hh, w.version(hh), at))
	case op == 10:
		dups, err := w.s.ListDuplicates(ctx, All, syncproto.StateOpen)
		if err != nil {
			t.Fatal(err)
		}
		if len(dups) == 0 {
			return
		}
		d := dups[w.rng.IntN(len(dups))]
		// A duplicate whose household went since is refused: that is fine.
		_, _ = w.sup.MergeHouseholds(ctx, syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, AllRegions: true},
			d.ID, []string{d.HouseholdA, d.HouseholdB}[w.rng.IntN(2)], "the same family")
	default:
		// Two devices change one housing grade from the same base; a
		// supervisor settles it the other way.
		hh := w.live()
		var id string
		for _, in := range w.insp[hh] {
			if w.entityOf(in) == "housing_inspection" && w.version(in) > 0 {
				id = in
			}
		}
		if id == "" {
			return
		}
		base := w.version(id)
		a, b := w.devices[0], w.devices[1]
		a.Push(t, w.p, Upsert("housing_inspection", id, base, at, map[string]any{"grade": "B"}))
		resp := b.Push(t, w.p, Upsert("housing_inspection", id, base, at.Add(time.Second), map[string]any{"grade": "A"}))
		for _, c := range resp.Results[0].Conflicts {
			grade := []string{"A", "C", "D"}[w.rng.IntN(3)]
			_, _ = w.sup.ResolveConflict(ctx, syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, AllRegions: true},
				syncproto.Resolution{ConflictID: c.ConflictID, Value: json.RawMessage(`"` + grade + `"`), Note: "seen again"})
		}
	}
}

func (w *summaryWorld) entityOf(id string) string {
	r, err := w.s.Record(context.Background(), id)
	if err != nil {
		return ""
	}
	return r.Entity
}

// checkSummaries asserts that the aggregates equal the coverage report
// computed by reading every household, for the actor: every village's
// counts, the townships', counties' and totals, and each village's
// never-inspected households.
func checkSummaries(t *testing.T, s syncproto.Store, actor syncproto.Actor, clock *Clock, when string) {
	t.Helper()
	ctx := context.Background()
	ss := summaryStore(t, s)
	reports := syncproto.NewReportService(s, syncproto.ReportOptions{Now: clock.Now})
	var scanned []*survey.VillageCoverage
	sum, err := reports.Coverage(ctx, actor, func(v *survey.VillageCoverage) error {
		scanned = append(scanned, v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The summaries' reads answer the report's point of the change log,
	// judged as of the day (the report reads the records that day).
	sum.At.JudgedAsOf = clock.Now().UTC().Format(time.DateOnly)
	read := func(level string) []survey.AreaCoverage {
		var out []survey.AreaCoverage
		at, err := ss.AreaSummaries(ctx, actor, level, clock.Now(), func(a *survey.AreaCoverage) error {
			out = append(out, *a)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: area summaries (%s): %v", when, level, err)
		}
		if at != sum.At {
			t.Fatalf("%s: area summaries at %+v, the report at %+v", when, at, sum.At)
		}
		return out
	}
	villages := read(survey.LevelVillage)
	if len(villages) != len(scanned) {
		t.Fatalf("%s: %d villages from the summaries, %d from the records", when, len(villages), len(scanned))
	}
	for i, v := range scanned {
		if villages[i].Code != v.Code || villages[i].Level != survey.LevelVillage || !reflect.DeepEqual(villages[i].Counts, v.Counts) {
			t.Fatalf("%s: village %s from the summaries:\n%+v\nfrom the records (%s):\n%+v", when, villages[i].Code, villages[i].Counts, v.Code, v.Counts)
		}
		marks, _, err := ss.NeverInspectedHouseholds(ctx, actor, v.Code)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(marks, v.NeverInspected) {
			t.Fatalf("%s: never inspected in %s from the summaries %+v, from the records %+v", when, v.Code, marks, v.NeverInspected)
		}
	}
	// The villages behind and those with households never inspected, in
	// their orders, cut at n: those of every village's counts.
	for _, order := range []string{syncproto.LagBehind, syncproto.LagNeverInspected} {
		for _, n := range []int{1, 3, 1000} {
			var want []survey.AreaCoverage
			for _, v := range villages {
				if order == syncproto.LagBehind && syncproto.VillageCoverage(&v.Counts) < 100 ||
					order == syncproto.LagNeverInspected && v.Counts.NeverInspected > 0 {
					want = append(want, v)
				}
			}
			syncproto.SortLagging(order, want)
			want = want[:min(n, len(want))]
			var got []survey.AreaCoverage
			at, err := ss.LaggingVillages(ctx, actor, order, n, func(a *survey.AreaCoverage) error {
				got = append(got, *a)
				return nil
			})
			if err != nil || at != sum.At {
				t.Fatalf("%s: lagging villages (%s, %d) at %+v: %v", when, order, n, at, err)
			}
			if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("%s: lagging villages (%s, %d):\n%+v\nfrom every village's counts:\n%+v", when, order, n, got, want)
			}
		}
	}
	// The townships' and counties' rows the store keeps equal the sums of
	// their villages' rows (as far as they lie in the actor's scope).
	roll := survey.NewSummarizer(schema.V1()).NewRollup()
	for i := range villages {
		roll.Add(villages[i].Code, &villages[i].Counts)
	}
	fromVillages := roll.Finish()
	for _, c := range []struct {
		level string
		want  []survey.AreaCoverage
	}{{survey.LevelTownship, fromVillages.Townships}, {survey.LevelCounty, fromVillages.Counties}} {
		if got := read(c.level); !reflect.DeepEqual(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Fatalf("%s: %ss kept:\n%+v\nthe sums of their villages:\n%+v", when, c.level, got, c.want)
		}
	}
	for _, c := range []struct {
		level string
		want  []survey.AreaCoverage
	}{{survey.LevelTownship, sum.Townships}, {survey.LevelCounty, sum.Counties}} {
		if got := read(c.level); !reflect.DeepEqual(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Fatalf("%s: %ss from the summaries:\n%+v\nfrom the records:\n%+v", when, c.level, got, c.want)
		}
	}
	// Inspections per day and form, counted from the households' stream.
	perDay := map[string]int{}
	if _, err := s.HouseholdInspections(ctx, actor, syncproto.HouseholdQuery{Forms: v1Forms}, func(h *survey.HouseholdInspections) error {
		for _, in := range h.Inspections {
			if in.InspectedOn != "" {
				perDay[in.InspectedOn+"/"+in.Entity]++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, since := range []string{"", T0.AddDate(0, 0, -2).Format(time.DateOnly)} {
		var want []syncproto.DayCount
		for _, k := range slices.Sorted(maps.Keys(perDay)) {
			day, entity, _ := strings.Cut(k, "/")
			if day >= since {
				want = append(want, syncproto.DayCount{Day: day, Entity: entity, Inspections: perDay[k]})
			}
		}
		days, at, err := ss.InspectionDays(ctx, actor, since)
		if err != nil || at != sum.At || !(slices.Equal(days, want) || len(days) == 0 && len(want) == 0) {
			t.Fatalf("%s: inspections per day from %q: %+v at %+v, %v; counted %+v", when, since, days, at, err, want)
		}
	}
	var counties []survey.AreaCoverage
	if _, err := reports.AreaSummaries(ctx, actor, survey.LevelCounty, func(a *survey.AreaCoverage) error {
		counties = append(counties, *a)
		return nil
	}); err != nil || !(reflect.DeepEqual(counties, sum.Counties) || len(counties) == 0 && len(sum.Counties) == 0) {
		t.Fatalf("%s: the report service's counties %+v, %v; from the records %+v", when, counties, err, sum.Counties)
	}
	var total survey.CoverageCounts
	rolled, err := reports.CoverageSummaries(ctx, actor, func(*survey.AreaCoverage) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	total = rolled.Totals
	if !reflect.DeepEqual(total, sum.Totals) {
		t.Fatalf("%s: totals from the summaries %+v, from the records %+v", when, total, sum.Totals)
	}
}

// testSummariesEqualTheCoverageScan is the property of the aggregates:
// after random pushes, moves, deletes, merges and resolved conflicts, in
// any order, the summaries' counts per village, township and county and
// the never-inspected lists equal the coverage report computed by reading
// every household, for every region and for a scoped actor; summaries
// kept from a store's first write and those rebuilt over existing records
// (KeepSummaries) alike.
func testSummariesEqualTheCoverageScan(t *testing.T, open Opener) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			clock := NewClock(T0)
			s, p := Open(t, open, clock)
			ss := summaryStore(t, s)
			ctx := context.Background()
			sum := survey.NewSummarizer(schema.V1())
			if seed%2 == 0 { // kept from the first write; else rebuilt after half
				if err := ss.KeepSummaries(ctx, sum, clock.Now()); err != nil {
					t.Fatal(err)
				}
			}
			w := &summaryWorld{t: t, s: s, p: p, sup: NewSupervisionService(s, clock), clock: clock,
				rng: rand.New(rand.NewPCG(seed, 17)), insp: map[string][]string{},
				devices: []*Device{NewDevice("li.na"), NewDevice("zhao.lei"), NewDevice("wang.fang")}}
			for i := range 120 {
				w.step()
				if i == 59 && seed%2 == 1 {
					if err := ss.KeepSummaries(ctx, sum, clock.Now()); err != nil {
						t.Fatal(err)
					}
				}
				if i%30 == 29 && (seed%2 == 0 || i > 59) {
					checkSummaries(t, s, All, clock, fmt.Sprintf("after %d writes", i+1))
				}
			}
			checkSummaries(t, s, syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, Scope: []string{"500240107"}}, clock, "a township's supervisor")
			checkSummaries(t, s, syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, Scope: []string{"150422", "500240108"}}, clock, "two regions")
		})
	}
}

// testSummariesBeforeKeep asserts that a store not told to keep summaries
// says so (ErrSummariesNotKept) rather than answer sums it never kept,
// that the report service then reads every household instead, and that a
// village outside the actor's scope has no never-inspected households.
func testSummariesBeforeKeep(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s, p := Open(t, open, clock)
	ss := summaryStore(t, s)
	ctx := context.Background()
	hh := uuid.NewString()
	NewDevice("li.na").Push(t, p, Household(hh, SouthVillage, T0))
	if _, err := ss.AreaSummaries(ctx, All, survey.LevelVillage, T0, func(*survey.AreaCoverage) error { return nil }); err != syncproto.ErrSummariesNotKept {
		t.Fatalf("area summaries before KeepSummaries: %v", err)
	}
	if _, _, err := ss.NeverInspectedHouseholds(ctx, All, SouthVillage); err != syncproto.ErrSummariesNotKept {
		t.Fatalf("never inspected before KeepSummaries: %v", err)
	}
	if _, err := ss.LaggingVillages(ctx, All, syncproto.LagBehind, 30, func(*survey.AreaCoverage) error { return nil }); err != syncproto.ErrSummariesNotKept {
		t.Fatalf("lagging villages before KeepSummaries: %v", err)
	}
	if _, _, err := ss.InspectionDays(ctx, All, ""); err != syncproto.ErrSummariesNotKept {
		t.Fatalf("inspection days before KeepSummaries: %v", err)
	}
	reports := syncproto.NewReportService(s, syncproto.ReportOptions{Now: clock.Now})
	var got []survey.AreaCoverage
	if _, err := reports.CoverageSummaries(ctx, All, func(a *survey.AreaCoverage) error {
		got = append(got, *a)
		return nil
	}); err != nil || len(got) != 1 || got[0].Code != SouthVillage || got[0].Counts.NeverInspected != 1 {
		t.Fatalf("coverage summaries read from the records: %+v, %v", got, err)
	}
	var townships []survey.AreaCoverage
	if _, err := reports.AreaSummaries(ctx, All, survey.LevelTownship, func(a *survey.AreaCoverage) error {
		townships = append(townships, *a)
		return nil
	}); err != nil || len(townships) != 1 || townships[0].Code != SouthVillage[:9] || townships[0].Counts.Households != 1 {
		t.Fatalf("townships read from the records: %+v, %v", townships, err)
	}

	if err := ss.KeepSummaries(ctx, survey.NewSummarizer(schema.V1()), T0); err != nil {
		t.Fatal(err)
	}
	north := syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, Scope: []string{"150422"}}
	if marks, _, err := ss.NeverInspectedHouseholds(ctx, north, SouthVillage); err != nil || len(marks) != 0 {
		t.Fatalf("never inspected of a village outside the scope: %+v, %v", marks, err)
	}
	if marks, _, err := ss.NeverInspectedHouseholds(ctx, All, SouthVillage); err != nil || len(marks) != 1 || marks[0].ID != hh ||
		marks[0].HeadName != "陈秀英" || marks[0].RegistrationNo != "CQ-"+hh {
		t.Fatalf("never inspected: %+v, %v", marks, err)
	}
	if _, err := ss.AreaSummaries(ctx, All, "province", T0, func(*survey.AreaCoverage) error { return nil }); !hasCode(err, syncproto.EInvalid) {
		t.Fatalf("an unknown level: %v", err)
	}
}

func hasCode(err error, code syncproto.Code) bool {
	var se *syncproto.Error
	return errorsAs(err, &se) && se.Code == code
}

// testSummariesFollowPublicationAndDate asserts that summaries kept by one
// publication of the forms are rebuilt by KeepSummaries under another (the
// built-in set's latest judges water by its criteria, not by the v1
// thresholds), and that once a standard's edition has taken effect since
// the summaries were judged, and they were judged again
// (RejudgeSummaries), a read answers as the coverage report judges on
// that day (T/CHES 18-2018 takes effect on 2019-01-01: before,
// the quantity criterion has no standard and is unrecorded).
func testSummariesFollowPublicationAndDate(t *testing.T, open Opener) {
	eve := time.Date(2018, 12, 30, 9, 0, 0, 0, time.UTC)
	clock := NewClock(eve)
	s, p := Open(t, open, clock)
	ss := summaryStore(t, s)
	ctx := context.Background()
	if err := ss.KeepSummaries(ctx, survey.NewSummarizer(schema.V1()), clock.Now()); err != nil {
		t.Fatal(err)
	}
	hh, w := uuid.NewString(), uuid.NewString()
	NewDevice("li.na").Push(t, p, Household(hh, SouthVillage, eve), Upsert("water_inspection", w, 0, eve, map[string]any{
		"household_id": hh, "inspected_on": eve.Format(time.DateOnly), "source": "piped", "quality_ok": true,
		"liters_per_person_day": 80, "fetch_minutes": 5, "reliability_pct": 97}))
	latest := schema.BuiltIn().Latest()
	counts := func(today time.Time) survey.CoverageCounts {
		t.Helper()
		var got []survey.AreaCoverage
		if _, err := ss.AreaSummaries(ctx, All, survey.LevelVillage, today, func(a *survey.AreaCoverage) error {
			got = append(got, *a)
			return nil
		}); err != nil || len(got) != 1 {
			t.Fatalf("area summaries on %s: %+v, %v", today.Format(time.DateOnly), got, err)
		}
		return got[0].Counts
	}
	scanned := func(sch *schema.Schema, today time.Time) survey.CoverageCounts {
		t.Helper()
		rep := syncproto.NewReportService(s, syncproto.ReportOptions{Schema: sch, Now: func() time.Time { return today }})
		var got []*survey.VillageCoverage
		if _, err := rep.Coverage(ctx, All, func(v *survey.VillageCoverage) error {
			got = append(got, v)
			return nil
		}); err != nil || len(got) != 1 {
			t.Fatalf("coverage: %+v, %v", got, err)
		}
		return got[0].Counts
	}
	if got, want := counts(eve), scanned(schema.V1(), eve); !reflect.DeepEqual(got, want) {
		t.Fatalf("v1 summaries %+v, the v1 report %+v", got, want)
	}

	if err := ss.KeepSummaries(ctx, survey.NewSummarizer(latest), clock.Now()); err != nil {
		t.Fatal(err)
	}
	before := counts(eve)
	if want := scanned(latest, eve); !reflect.DeepEqual(before, want) || before.WaterUnrecorded["quantity"] != 1 {
		t.Fatalf("summaries after a publication %+v, its report %+v", before, want)
	}
	after := time.Date(2019, 1, 2, 9, 0, 0, 0, time.UTC)
	clock.Advance(after.Sub(eve))
	for {
		left, err := ss.RejudgeSummaries(ctx, after, syncproto.SummaryRejudgeBatch)
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
	}
	got := counts(after)
	if want := scanned(latest, after); !reflect.DeepEqual(got, want) || got.WaterUnrecorded["quantity"] != 0 {
		t.Fatalf("summaries read after T/CHES 18-2018 took effect %+v, the report of that day %+v", got, want)
	}
	// And a push judged after the rebuild is judged as of the new day.
	hh2, w2 := uuid.NewString(), uuid.NewString()
	NewDevice("zhao.lei").Push(t, p, Household(hh2, SouthVillage, after), Upsert("water_inspection", w2, 0, after, map[string]any{
		"household_id": hh2, "inspected_on": after.Format(time.DateOnly), "source": "piped", "quality_ok": true,
		"liters_per_person_day": 30, "fetch_minutes": 5, "reliability_pct": 97}))
	if got, want := counts(after), scanned(latest, after); !reflect.DeepEqual(got, want) || got.WaterFailing["quantity"] != 1 {
		t.Fatalf("summaries after a push of the new day %+v, the report %+v", got, want)
	}
}
