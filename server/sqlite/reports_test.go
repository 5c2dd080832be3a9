package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// loadGeneratedForReports pushes a generated data set of n households in
// the given number of counties (0: Generate's default) into s in change
// sets of 1000 and returns the number of households per village.
func loadGeneratedForReports(tb testing.TB, s *Store, n, counties int) map[string]int {
	tb.Helper()
	dev := storetest.NewDevice("loader")
	villages := map[string]int{}
	var batch []syncproto.Change
	err := fixtures.Generate(fixtures.GenConfig{Seed: 7, Households: n, Counties: counties}, func(c syncproto.Change) error {
		if c.Entity == "household" {
			villages[strings.Trim(string(c.Fields["village"]), `"`)]++
		}
		batch = append(batch, c)
		if len(batch) == 1000 {
			dev.Push(tb, pushes(s), batch...)
			batch = batch[:0]
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(batch) > 0 {
		dev.Push(tb, pushes(s), batch...)
	}
	return villages
}

// TestCoverageStreamsVillagesInOrder: over villages of three counties,
// registered in no particular order, every village is emitted once, in
// code order, with its households; the roll-ups add up; a scope of two
// prefixes (a county and a township of another) sees exactly their
// villages.
func TestCoverageStreamsVillagesInOrder(t *testing.T) {
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	villages := map[string]int{
		"520102101203": 2, "150422101201": 3, "500240107202": 1, "500240112201": 4, "150422202201": 2,
		"520102101201": 1, "500240107201": 5, "150422101202": 2, "520102205201": 3, "500240205203": 1,
	}
	var changes []syncproto.Change
	for i := 0; i < 5; i++ {
		for v, n := range villages {
			if i < n {
				hh := uuid.NewString()
				changes = append(changes, storetest.Household(hh, v, storetest.T0), storetest.WaterInspection(uuid.NewString(), hh, storetest.T0))
			}
		}
	}
	storetest.NewDevice("li.na").Push(t, pushes(s), changes...)
	for _, actor := range []syncproto.Actor{{AllRegions: true}, {Scope: []string{"500240", "520102101"}}} {
		t.Run(actor.ScopeKey(), func(t *testing.T) {
			want := map[string]int{}
			total := 0
			for v, n := range villages {
				if actor.InScope(v) {
					want[v] = n
					total += n
				}
			}
			got := map[string]int{}
			last := ""
			sum, err := reports(s).Coverage(context.Background(), actor, func(v *survey.VillageCoverage) error {
				if v.Code <= last {
					return fmt.Errorf("village %s after %s", v.Code, last)
				}
				last = v.Code
				got[v.Code] = v.Counts.Households
				if v.Counts.WithWater != v.Counts.Households || len(v.NeverInspected) != 0 {
					return fmt.Errorf("village %s: %+v", v.Code, v.Counts)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("villages %v\nwant %v", got, want)
			}
			perCounty, perTownship := 0, 0
			for _, c := range sum.Counties {
				perCounty += c.Counts.Households
			}
			for i, tw := range sum.Townships {
				perTownship += tw.Counts.Households
				if i > 0 && tw.Code <= sum.Townships[i-1].Code {
					t.Fatalf("townships out of order: %+v", sum.Townships)
				}
			}
			if sum.Totals.Households != total || perCounty != total || perTownship != total || sum.Totals.WithWater != total {
				t.Fatalf("totals %+v, counties %d, townships %d, want %d", sum.Totals, perCounty, perTownship, total)
			}
		})
	}
}

// TestReportsReadOnePointInTime: changes committed while a report streams
// are not in it, and the report names the change-log head it read.
func TestReportsReadOnePointInTime(t *testing.T) {
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	dev := storetest.NewDevice("li.na")
	first, second := uuid.NewString(), uuid.NewString()
	dev.Push(t, pushes(s), storetest.Household(first, storetest.NorthVillage, storetest.T0), storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	before, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pushed := false
	sum, err := reports(s).Coverage(context.Background(), storetest.All, func(v *survey.VillageCoverage) error {
		if !pushed {
			// While the report is being read: a new household in a
			// village the report has not reached, and a D appraisal.
			pushed = true
			dev.Push(t, pushes(s), storetest.Household(second, storetest.SouthVillage, storetest.T0),
				storetest.HousingInspection(uuid.NewString(), second, "D", storetest.T0))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Totals.Households != 2 || sum.Totals.Grades["D"] != 0 || sum.At.Seq != before {
		t.Fatalf("report saw a later change: %+v at %d (head before %d)", sum.Totals, sum.At.Seq, before)
	}
	due := 0
	_, err = reports(s).Reinspections(context.Background(), storetest.All, survey.ReinspectionQuery{Now: storetest.T0, After: time.Hour * 24 * 365},
		func(d *survey.DueHousehold) error { due++; return nil })
	if err != nil || due != 1 {
		t.Fatalf("after the push: %d due, %v", due, err)
	}
}

// TestReportsStopOnEmitError: an error from emit ends the read and comes
// back unchanged.
func TestReportsStopOnEmitError(t *testing.T) {
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	dev := storetest.NewDevice("li.na")
	hh := uuid.NewString()
	dev.Push(t, pushes(s), storetest.Household(hh, storetest.SouthVillage, storetest.T0), storetest.HousingInspection(uuid.NewString(), hh, "D", storetest.T0))
	stop := fmt.Errorf("client went away")
	if _, err := reports(s).Coverage(context.Background(), storetest.All, func(*survey.VillageCoverage) error { return stop }); err != stop {
		t.Fatalf("coverage: %v", err)
	}
	if _, err := reports(s).Reinspections(context.Background(), storetest.All, survey.ReinspectionQuery{Now: storetest.T0},
		func(*survey.DueHousehold) error { return stop }); err != stop {
		t.Fatalf("reinspections: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := reports(s).Coverage(ctx, storetest.All, func(*survey.VillageCoverage) error { return nil }); err == nil {
		t.Fatal("a cancelled report succeeded")
	}
}

// BenchmarkCoverage times a coverage report over 20,000 generated
// households (two counties) with their inspections.
func BenchmarkCoverage(b *testing.B) {
	s := MustOpen(b, storetest.NewClock(storetest.T0))
	villages := loadGeneratedForReports(b, s, 20000, 0)
	b.ResetTimer()
	for range b.N {
		n := 0
		if _, err := reports(s).Coverage(context.Background(), storetest.All, func(v *survey.VillageCoverage) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != len(villages) {
			b.Fatalf("%d villages, want %d", n, len(villages))
		}
	}
}

// BenchmarkCoverageSummaries reads the same counts as BenchmarkCoverage
// (the same 20,000 generated households) from the per-village sums.
func BenchmarkCoverageSummaries(b *testing.B) {
	s := MustOpen(b, storetest.NewClock(storetest.T0))
	villages := loadGeneratedForReports(b, s, 20000, 0)
	if err := s.KeepSummaries(context.Background(), survey.NewSummarizer(schema.V1()), storetest.T0); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		n := 0
		if _, err := reports(s).CoverageSummaries(context.Background(), storetest.All, func(*survey.AreaCoverage) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != len(villages) {
			b.Fatalf("%d villages, want %d", n, len(villages))
		}
	}
}
