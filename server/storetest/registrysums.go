package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// registrySumStore returns the store's RegistrySumStore, or skips the
// test for a store that keeps no registry-only counts.
func registrySumStore(t *testing.T, s syncproto.Store) syncproto.RegistrySumStore {
	t.Helper()
	rs, ok := s.(syncproto.RegistrySumStore)
	if !ok {
		t.Skip("the store keeps no registry-only counts (syncproto.RegistrySumStore)")
	}
	return rs
}

// registryNames are the heads of household the random lists name: 陈秀英
// is every pushed household's head (a row matched by name, or ambiguous),
// the others nobody's (a blind spot, two rows of one name one household).
var registryNames = []string{"陈秀英", "王德顺", "刘桂兰", "张建国"}

// importRandomList imports a random list of one of two household sources:
// rows whose registration numbers are pushed households' (matched), the
// duplicates' shared one, or nobody's, in the property's villages.
func (w *summaryWorld) importRandomList(n int) {
	t := w.t
	source, key := "poverty_registry", "registration_no"
	if w.rng.IntN(2) == 0 {
		source, key = "extreme_poverty", "case_no"
	}
	var rows []*syncproto.RegistryRow
	for i := range 1 + w.rng.IntN(8) {
		village := summaryVillages[w.rng.IntN(len(summaryVillages))]
		regNo := fmt.Sprintf("REG-%d", w.rng.IntN(12))
		switch w.rng.IntN(3) {
		case 0:
			if len(w.house) > 0 {
				regNo = "CQ-" + w.house[w.rng.IntN(len(w.house))]
			}
		case 1:
			regNo = "R-dup"
		}
		fields := map[string]any{"registration_no": regNo, "village": village,
			"head_name": registryNames[w.rng.IntN(len(registryNames))], "members": 1 + w.rng.IntN(6)}
		k := fmt.Sprintf("K-%d-%d", n, i)
		if source == "poverty_registry" {
			k = regNo
			if slices.ContainsFunc(rows, func(r *syncproto.RegistryRow) bool { return r.Key == k }) {
				continue
			}
		}
		fields[key] = k
		doc := map[string]json.RawMessage{}
		for f, v := range fields {
			b, _ := json.Marshal(v)
			doc[f] = b
		}
		rows = append(rows, &syncproto.RegistryRow{Source: source, Key: k, Village: village, Line: i + 2, Fields: doc})
	}
	var scope []string
	if w.rng.IntN(3) == 0 {
		scope = []string{"500240"} // a county's list: the other county's rows stay
		rows = slices.DeleteFunc(rows, func(r *syncproto.RegistryRow) bool { return !strings.HasPrefix(r.Village, "500240") })
	}
	if _, err := w.s.ImportRegistry(context.Background(), syncproto.RegistryImport{Source: source, SHA256: fmt.Sprintf("%064d", n),
		FileName: "list.csv", ImportedBy: "admin", ImportedAt: w.clock.Now(), Scope: scope},
		func(put func(*syncproto.RegistryRow) error) error {
			for _, r := range rows {
				if err := put(r); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
		t.Fatal(err)
	}
}

// renumber gives a live household a registry's registration number (or
// its own back): it starts or stops matching a row.
func (w *summaryWorld) renumber() {
	hh := w.live()
	if hh == "" {
		return
	}
	no := fmt.Sprintf("REG-%d", w.rng.IntN(12))
	if w.rng.IntN(3) == 0 {
		no = "CQ-" + hh
	}
	w.device().Push(w.t, w.p, Upsert("household", hh, w.version(hh), w.clock.Now(), map[string]any{"registration_no": no}))
}

// testRegistrySumsEqualTheCoverageReport is the property of the kept
// registry-only households: after random imports of two household
// sources (whole lists and a county's) and random pushes, moves, deletes,
// merges and renumberings, once the marked villages are refreshed, the
// kept sums per village, township and county and the never-inspected
// lists (the recorded households' and those only a registry lists) equal
// the coverage report's, which reconciles every village's households with
// its registry rows as it reads them — for every region and a scoped
// actor; kept from the first write, and rebuilt over existing records and
// rows (KeepSummaries) alike.
func testRegistrySumsEqualTheCoverageReport(t *testing.T, open Opener) {
	sch := schema.BuiltIn().Latest()
	for seed := range uint64(2) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			clock := NewClock(T0)
			s, p := Open(t, open, clock)
			ss := summaryStore(t, s)
			rs := registrySumStore(t, s)
			ctx := context.Background()
			sum := survey.NewSummarizer(sch)
			if _, err := rs.RefreshRegistrySums(ctx, sch, 10); err != syncproto.ErrSummariesNotKept {
				t.Fatalf("a refresh before KeepSummaries: %v", err)
			}
			if seed == 0 {
				if err := ss.KeepSummaries(ctx, sum, clock.Now()); err != nil {
					t.Fatal(err)
				}
			}
			w := &summaryWorld{t: t, s: s, p: p, sup: NewSupervisionService(s, clock), clock: clock,
				rng: rand.New(rand.NewPCG(seed, 29)), insp: map[string][]string{},
				devices: []*Device{NewDevice("li.na"), NewDevice("zhao.lei"), NewDevice("wang.fang")}}
			reports := syncproto.NewReportService(s, syncproto.ReportOptions{Schema: sch, Now: clock.Now})
			for i := range 120 {
				switch w.rng.IntN(10) {
				case 0:
					// Reconciled at once (as a read of the sums would): the
					// pushes that follow must mark what they change.
					w.importRandomList(i)
					if err := reports.RefreshRegistrySums(ctx); err != nil && (seed == 0 || i > 59) {
						t.Fatal(err)
					}
				case 1:
					w.renumber()
				default:
					w.step()
				}
				if i == 59 && seed == 1 {
					if err := ss.KeepSummaries(ctx, sum, clock.Now()); err != nil {
						t.Fatal(err)
					}
				}
				if i%20 == 19 && (seed == 0 || i > 59) {
					if err := reports.RefreshRegistrySums(ctx); err != nil {
						t.Fatal(err)
					}
					checkRegistrySums(t, s, sch, All, clock, fmt.Sprintf("after %d writes", i+1))
				}
			}
			if err := reports.RefreshRegistrySums(ctx); err != nil {
				t.Fatal(err)
			}
			if left, err := rs.RefreshRegistrySums(ctx, sch, 10); err != nil || left != 0 {
				t.Fatalf("marks left after the refresh: %d, %v", left, err)
			}
			checkRegistrySums(t, s, sch, All, clock, "at the end")
			checkRegistrySums(t, s, sch, syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, Scope: []string{"500240107"}}, clock, "a township's supervisor")
		})
	}
}

// checkRegistrySums asserts that the kept sums of the actor's villages,
// townships and counties equal the coverage report's counts (which count
// the households only a registry lists), and that each village's
// never-inspected households, the recorded ones from the summaries and
// those only a registry lists from RegistryOnlyHouseholds, are the
// report's list, the registry-only ones by the list's name.
func checkRegistrySums(t *testing.T, s syncproto.Store, sch *schema.Schema, actor syncproto.Actor, clock *Clock, when string) {
	t.Helper()
	ctx := context.Background()
	ss, rs := summaryStore(t, s), registrySumStore(t, s)
	reports := syncproto.NewReportService(s, syncproto.ReportOptions{Schema: sch, Now: clock.Now})
	var scanned []*survey.VillageCoverage
	rep, err := reports.Coverage(ctx, actor, func(v *survey.VillageCoverage) error {
		scanned = append(scanned, v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	read := func(level string) []survey.AreaCoverage {
		var out []survey.AreaCoverage
		if _, err := ss.AreaSummaries(ctx, actor, level, clock.Now(), func(a *survey.AreaCoverage) error {
			out = append(out, *a)
			return nil
		}); err != nil {
			t.Fatalf("%s: area summaries (%s): %v", when, level, err)
		}
		return out
	}
	villages := read(survey.LevelVillage)
	if len(villages) != len(scanned) {
		t.Fatalf("%s: %d villages from the sums, %d in the coverage report", when, len(villages), len(scanned))
	}
	registryOnly := 0
	var perVillage []syncproto.RegistryOnly
	for i, v := range scanned {
		if villages[i].Code != v.Code || !reflect.DeepEqual(villages[i].Counts, v.Counts) {
			t.Fatalf("%s: village %s from the sums:\n%+v\nin the coverage report (%s):\n%+v", when, villages[i].Code, villages[i].Counts, v.Code, v.Counts)
		}
		recorded, _, err := ss.NeverInspectedHouseholds(ctx, actor, v.Code)
		if err != nil {
			t.Fatal(err)
		}
		only, _, err := rs.RegistryOnlyHouseholds(ctx, actor, v.Code)
		if err != nil {
			t.Fatal(err)
		}
		registryOnly += len(only)
		for _, m := range only {
			perVillage = append(perVillage, syncproto.RegistryOnly{Village: v.Code, HouseholdMark: m})
		}
		got := append(slices.Clone(recorded), only...)
		slices.SortFunc(got, func(a, b survey.HouseholdMark) int { return strings.Compare(a.ID, b.ID) })
		if !slices.Equal(got, v.NeverInspected) {
			t.Fatalf("%s: never inspected in %s: recorded %+v and registry-only %+v; in the coverage report %+v", when, v.Code, recorded, only, v.NeverInspected)
		}
		if list, _, err := reports.NeverInspected(ctx, actor, v.Code); err != nil || !slices.Equal(list, v.NeverInspected) {
			t.Fatalf("%s: the report service's never inspected in %s: %+v, %v; in the coverage report %+v", when, v.Code, list, err, v.NeverInspected)
		}
	}
	// The whole scope's registry-only households in one read: those of
	// every village, in village and id order.
	var inScope []syncproto.RegistryOnly
	if _, err := rs.RegistryOnlyInScope(ctx, actor, func(o syncproto.RegistryOnly) error {
		inScope = append(inScope, o)
		return nil
	}); err != nil {
		t.Fatalf("%s: registry only in scope: %v", when, err)
	}
	if !slices.Equal(inScope, perVillage) {
		t.Fatalf("%s: registry-only households of the scope %+v; village by village %+v", when, inScope, perVillage)
	}
	for _, x := range []struct {
		level string
		want  []survey.AreaCoverage
	}{{survey.LevelTownship, rep.Townships}, {survey.LevelCounty, rep.Counties}} {
		if got := read(x.level); !reflect.DeepEqual(got, x.want) {
			t.Fatalf("%s: %s from the sums %+v, in the coverage report %+v", when, x.level, got, x.want)
		}
	}
	t.Logf("%s: %d villages, %d never inspected, %d of them only on a registry", when, len(scanned), rep.Totals.NeverInspected, registryOnly)
}
