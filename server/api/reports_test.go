package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// coverageBody is the answer of GET /v1/reports/coverage.
type coverageBody struct {
	Region      string                   `json:"region"`
	RegionName  string                   `json:"region_name"`
	Villages    []survey.VillageCoverage `json:"villages"`
	Townships   []survey.AreaCoverage    `json:"townships"`
	Counties    []survey.AreaCoverage    `json:"counties"`
	Totals      survey.CoverageCounts    `json:"totals"`
	Cursor      string                   `json:"cursor"`
	GeneratedAt string                   `json:"generated_at"`
}

// reinspectionBody is the answer of GET /v1/reinspections.
type reinspectionBody struct {
	Region     string                `json:"region"`
	RegionName string                `json:"region_name"`
	AfterDays  float64               `json:"reinspect_after_days"`
	Households []survey.DueHousehold `json:"households"`
	Counts     struct {
		Households int            `json:"households"`
		ByReason   map[string]int `json:"by_reason"`
	} `json:"counts"`
	Cursor string `json:"cursor"`
}

// getReport sends GET path with token, expects 200 and decodes the body.
func getReport(tb testing.TB, ts *apitest.Server, token, path string, out any) {
	tb.Helper()
	resp, body := ts.DoAs(tb, token, http.MethodGet, path, "", nil)
	if resp.StatusCode != 200 {
		tb.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("GET %s: content type %q", path, ct)
	}
	if err := json.Unmarshal(body, out); err != nil {
		tb.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// demoTruth is the demo data set read straight from the fixtures' changes,
// to compute expected reports independently of the server.
type demoTruth struct {
	households map[string]demoTruthHousehold
	housing    map[string][]demoTruthInspection // by household
	water      map[string][]demoTruthInspection // by household
}

type demoTruthHousehold struct{ village, head, status string }

type demoTruthInspection struct {
	id, day, at string
	fields      map[string]json.RawMessage
}

func (in demoTruthInspection) str(name string) string {
	var s string
	_ = json.Unmarshal(in.fields[name], &s)
	return s
}

func (in demoTruthInspection) num(name string) float64 {
	var x float64
	_ = json.Unmarshal(in.fields[name], &x)
	return x
}

func loadDemoTruth(tb testing.TB) *demoTruth {
	tb.Helper()
	m := &demoTruth{households: map[string]demoTruthHousehold{}, housing: map[string][]demoTruthInspection{},
		water: map[string][]demoTruthInspection{}}
	str := func(c syncproto.Change, name string) string {
		var s string
		_ = json.Unmarshal(c.Fields[name], &s)
		return s
	}
	err := fixtures.Demo(func(c syncproto.Change) error {
		switch c.Entity {
		case "household":
			m.households[c.ID] = demoTruthHousehold{village: str(c, "village"), head: str(c, "head_name"), status: str(c, "status")}
		case "housing_inspection", "water_inspection":
			in := demoTruthInspection{id: c.ID, day: str(c, "inspected_on"), at: c.At, fields: c.Fields}
			hh := str(c, "household_id")
			if c.Entity == "housing_inspection" {
				m.housing[hh] = append(m.housing[hh], in)
			} else {
				m.water[hh] = append(m.water[hh], in)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// latestDemo is the inspection with the latest date, ties by the later change.
func latestDemo(ins []demoTruthInspection) *demoTruthInspection {
	var out *demoTruthInspection
	for i := range ins {
		if out == nil || ins[i].day > out.day || (ins[i].day == out.day && ins[i].at > out.at) {
			out = &ins[i]
		}
	}
	return out
}

// expectedWaterFailures lists the indicators a water inspection fails and
// those it leaves not evaluable, written out indicator by indicator as
// T/CHES 18-2018 has them (the built-in version 2's criteria, the
// thresholds of its standards.json: 35 L, 20 L in the water-scarce
// Bairin Left Banner; 20 min, 800 m, 80 m; 36 days, 90 %), independently
// of the server's rule engine.
func expectedWaterFailures(tb testing.TB, village string, in *demoTruthInspection) (failing, unrecorded []string) {
	std := schema.BuiltIn().Latest().Standards
	for name, want := range map[string]float64{"water_fetch_minutes": 20, "water_distance_horizontal": 800,
		"water_distance_vertical": 80, "water_days_without": 36, "water_guarantee_rate": 90} {
		if a, ok := std.Resolve(name, village, time.Now()); !ok || a.Value != want {
			tb.Fatalf("the water standards changed: %s %+v", name, a)
		}
	}
	has := func(name string) bool { _, ok := in.fields[name]; return ok }
	judge := func(indicator string, met, evaluable bool) {
		switch {
		case met:
		case !evaluable:
			unrecorded = append(unrecorded, indicator)
		default:
			failing = append(failing, indicator)
		}
	}
	source, basis := in.str("source"), in.str("quality_basis")
	own := source == "well" || source == "spring" || source == "cistern" || source == "surface"
	ok := string(in.fields["quality_ok"]) == "true"
	judge("quality", ok && (basis == "lab_report" || basis == "sensory_check" && own),
		string(in.fields["quality_ok"]) == "false" || has("quality_basis") && (basis != "sensory_check" || has("source")))
	least := 35.0
	if strings.HasPrefix(village, "150422") {
		least = 20
	}
	judge("quantity", has("liters_per_person_day") && in.num("liters_per_person_day") >= least, has("liters_per_person_day"))
	judge("convenience", source == "piped_home" || has("fetch_minutes") && in.num("fetch_minutes") <= 20 ||
		has("distance_horizontal_m") && in.num("distance_horizontal_m") <= 800 || has("distance_vertical_m") && in.num("distance_vertical_m") <= 80,
		has("source") && has("fetch_minutes") && has("distance_horizontal_m") && has("distance_vertical_m"))
	judge("reliability", has("days_without_water") && in.num("days_without_water") <= 36 || has("reliability_pct") && in.num("reliability_pct") >= 90,
		has("days_without_water") && has("reliability_pct"))
	return failing, unrecorded
}

// mustServeDemoRegister is mustServe with the demo's division register
// (fixtures/divisions-demo.csv), as make run serves.
func mustServeDemoRegister(tb testing.TB) *apitest.Server {
	tb.Helper()
	demo := demoRegister(tb)
	return apitest.MustServeConfig(tb, sqlite.Options{}, func(c *api.Config) { c.Divisions = demo })
}

// demoRegister is the demo's division register.
func demoRegister(tb testing.TB) schema.Divisions {
	tb.Helper()
	demo, err := schema.LoadDivisions("../../fixtures/divisions-demo.csv")
	if err != nil {
		tb.Fatal(err)
	}
	return demo
}

// TestReportsOnTheDemo loads the demo data set once and checks the reports
// on it against figures computed from the fixtures' changes, and who may
// read them. Region names come from the demo's division register.
func TestReportsOnTheDemo(t *testing.T) {
	ts := mustServeDemoRegister(t)
	apitest.SeedDemo(t, ts)
	m := loadDemoTruth(t)
	t.Run("coverage", func(t *testing.T) { testDemoCoverage(t, ts, m) })
	t.Run("reinspections", func(t *testing.T) { testDemoReinspections(t, ts, m) })
	t.Run("access", func(t *testing.T) { testReportsAccess(t, ts) })
}

func testDemoCoverage(t *testing.T, ts *apitest.Server, m *demoTruth) {
	var rep coverageBody
	getReport(t, ts, ts.Login(t, "admin", apitest.AdminDevice), "/v1/reports/coverage", &rep)

	// Expected, per village, from the fixtures' changes.
	type villageWant struct {
		households     int
		never          map[string]string // id -> head name
		grades         map[string]int
		waterFailing   map[string]int
		waterUnrec     map[string]int
		relapse        map[string][]string
		withH, withW   int
		dangerByRenova map[string]int
	}
	want := map[string]*villageWant{}
	totalFailing, totalUnrec := map[string]int{}, map[string]int{}
	for id, h := range m.households {
		w := want[h.village]
		if w == nil {
			w = &villageWant{never: map[string]string{}, grades: map[string]int{}, waterFailing: map[string]int{}, waterUnrec: map[string]int{},
				relapse: map[string][]string{}, dangerByRenova: map[string]int{}}
			want[h.village] = w
		}
		w.households++
		house, water := latestDemo(m.housing[id]), latestDemo(m.water[id])
		if house == nil && water == nil {
			w.never[id] = h.head
		}
		var reasons []string
		if house != nil {
			w.withH++
			g := house.str("grade")
			w.grades[g]++
			if g == "C" || g == "D" {
				w.dangerByRenova[house.str("renovation")]++
				if h.status == "lifted_out" || h.status == "relapse_risk" {
					reasons = append(reasons, "dangerous_house")
				}
			}
		}
		if water != nil {
			w.withW++
			fails, unrec := expectedWaterFailures(t, h.village, water)
			for _, f := range fails {
				w.waterFailing[f]++
				totalFailing[f]++
			}
			for _, f := range unrec {
				w.waterUnrec[f]++
				totalUnrec[f]++
			}
			if len(fails)+len(unrec) > 0 && (h.status == "lifted_out" || h.status == "relapse_risk") {
				reasons = append(reasons, "unsafe_water")
			}
		}
		if h.status == "relapse_risk" {
			reasons = append(reasons, "relapse_risk")
		}
		if len(reasons) > 0 {
			w.relapse[id] = reasons
		}
	}
	// The demo was planned with these failing water inspections (one per
	// household), and 20 recorded under version 1 whose quality is not
	// evaluable: a check that the independent computation is right.
	if fmt.Sprint(totalFailing) != "map[convenience:8 quality:14 quantity:12 reliability:14]" || fmt.Sprint(totalUnrec) != "map[quality:20]" {
		t.Fatalf("independent water failures %v (not evaluable %v) differ from the demo's plan", totalFailing, totalUnrec)
	}

	if len(rep.Villages) != len(want) {
		t.Fatalf("%d villages, want %d", len(rep.Villages), len(want))
	}
	var neverTotal int
	for i, v := range rep.Villages {
		if i > 0 && v.Code <= rep.Villages[i-1].Code {
			t.Fatalf("villages out of order: %s after %s", v.Code, rep.Villages[i-1].Code)
		}
		w := want[v.Code]
		if w == nil {
			t.Fatalf("unexpected village %s", v.Code)
		}
		if v.Name == "" || v.Name != fixtures.RegionName(v.Code) || v.Township != v.Code[:9] || v.County != v.Code[:6] {
			t.Errorf("village %s named %q in %s/%s", v.Code, v.Name, v.Township, v.County)
		}
		c := v.Counts
		if c.Households != w.households || c.WithHousing != w.withH || c.WithWater != w.withW || c.NeverInspected != len(w.never) {
			t.Errorf("village %s counts %+v, want households %d housing %d water %d never %d", v.Code, c, w.households, w.withH, w.withW, len(w.never))
		}
		got := map[string]string{}
		for _, h := range v.NeverInspected {
			got[h.ID] = h.HeadName
		}
		if !reflect.DeepEqual(got, w.never) {
			t.Errorf("village %s never inspected %v, want %v", v.Code, got, w.never)
		}
		neverTotal += len(got)
		for _, g := range []string{"A", "B", "C", "D"} {
			if c.Grades[g] != w.grades[g] {
				t.Errorf("village %s grade %s: %d, want %d", v.Code, g, c.Grades[g], w.grades[g])
			}
		}
		for _, r := range []string{"none", "planned", "in_progress", "completed", "verified"} {
			if c.DangerousByRenovation[r] != w.dangerByRenova[r] {
				t.Errorf("village %s C/D %s: %d, want %d", v.Code, r, c.DangerousByRenovation[r], w.dangerByRenova[r])
			}
		}
		for _, f := range []string{"quality", "quantity", "convenience", "reliability"} {
			if c.WaterFailing[f] != w.waterFailing[f] || c.WaterUnrecorded[f] != w.waterUnrec[f] {
				t.Errorf("village %s water %s: %d failing, %d not evaluable; want %d, %d", v.Code, f, c.WaterFailing[f], c.WaterUnrecorded[f],
					w.waterFailing[f], w.waterUnrec[f])
			}
		}
		// Every village's judgements name the quantity standard they
		// applied: the water-scarce class's 20 L in Bairin Left Banner.
		if w.withW > 0 {
			basis, value := "national", 35.0
			if v.County == "150422" {
				basis, value = "class water_scarce", 20
			}
			var q *schema.AppliedStandard
			for i := range v.Standards {
				if v.Standards[i].Name == "water_quantity" {
					q = &v.Standards[i]
				}
			}
			if q == nil || q.Basis != basis || q.Value != value || q.Version != "T/CHES 18-2018" || q.Effective != "2019-01-01" {
				t.Errorf("village %s: quantity standard %+v, want %s %v of T/CHES 18-2018", v.Code, q, basis, value)
			}
			for _, r := range v.RelapseWatch {
				if r.WaterInspectionID != "" && len(r.Standards) == 0 {
					t.Errorf("village %s: relapse case %s names no standard", v.Code, r.ID)
				}
			}
		}
		relapse := map[string][]string{}
		for _, r := range v.RelapseWatch {
			relapse[r.ID] = r.Reasons
		}
		if !reflect.DeepEqual(relapse, w.relapse) || c.RelapseWatch != len(w.relapse) {
			t.Errorf("village %s relapse watch %v, want %v", v.Code, relapse, w.relapse)
		}
		if c.DuplicateVisits != 0 || len(v.DuplicateVisits) != 0 {
			t.Errorf("village %s: duplicate visits in the demo: %+v", v.Code, v.DuplicateVisits)
		}
	}
	stats, err := fixtures.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if neverTotal != stats.NeverInspected || rep.Totals.NeverInspected != stats.NeverInspected || rep.Totals.Households != stats.Households {
		t.Fatalf("totals %+v, never listed %d; demo stats %+v", rep.Totals, neverTotal, stats)
	}

	// Roll-ups: each township and county is the sum of its villages.
	sums := map[string]int{}
	for _, v := range rep.Villages {
		sums[v.Township] += v.Counts.Households
		sums[v.County] += v.Counts.Households
	}
	if len(rep.Counties) != 2 || len(rep.Townships) != 6 {
		t.Fatalf("%d counties, %d townships", len(rep.Counties), len(rep.Townships))
	}
	for _, a := range append(append([]survey.AreaCoverage{}, rep.Townships...), rep.Counties...) {
		if a.Counts.Households != sums[a.Code] || a.Name != fixtures.RegionName(a.Code) || a.Name == "" {
			t.Errorf("area %s (%s) %q: %d households, want %d", a.Code, a.Level, a.Name, a.Counts.Households, sums[a.Code])
		}
	}
	if rep.Counties[0].Code != "150422" || rep.Counties[1].Code != "500240" || rep.Counties[1].Name != "石柱土家族自治县" {
		t.Fatalf("counties %+v", rep.Counties)
	}
	if rep.Cursor == "" || rep.GeneratedAt == "" {
		t.Fatalf("report without cursor or time: %q %q", rep.Cursor, rep.GeneratedAt)
	}
}

func testDemoReinspections(t *testing.T, ts *apitest.Server, m *demoTruth) {
	// Due, from the fixtures: the latest appraisal C or D, by renovation.
	want := map[string]string{}
	for id := range m.households {
		house := latestDemo(m.housing[id])
		if house == nil {
			continue
		}
		switch g, r := house.str("grade"), house.str("renovation"); {
		case (g == "C" || g == "D") && r == "completed":
			want[id] = "renovation_not_reinspected"
		case (g == "C" || g == "D") && r != "verified":
			want[id] = "dangerous_house"
		}
	}
	var rep reinspectionBody
	getReport(t, ts, ts.Login(t, "admin", apitest.AdminDevice), "/v1/reinspections", &rep)
	got := map[string]string{}
	for _, d := range rep.Households {
		if len(d.Reasons) != 1 || d.Current == nil || d.Reasons[0].InspectionID != d.Current.ID {
			t.Errorf("household %s: %+v", d.HouseholdID, d)
			continue
		}
		got[d.HouseholdID] = d.Reasons[0].Code
		if d.VillageName == "" || d.HeadName != m.households[d.HouseholdID].head || len(d.Chain) == 0 || d.Chain[len(d.Chain)-1] != d.Current.ID {
			t.Errorf("household %s: %+v", d.HouseholdID, d)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("due %v\nwant %v", got, want)
	}
	// The demo's plan: 8 completed renovations wait for re-inspection, 18
	// C/D houses are still in renovation.
	if rep.Counts.Households != 26 || rep.Counts.ByReason["renovation_not_reinspected"] != 8 || rep.Counts.ByReason["dangerous_house"] != 18 ||
		rep.AfterDays != 365 || rep.Cursor == "" {
		t.Fatalf("counts %+v after %v days", rep.Counts, rep.AfterDays)
	}
}

// housingOnDay builds a southern housing inspection dated day.
func housingOnDay(id, household, day, grade, renovation, previous string) syncproto.Change {
	f := map[string]any{"household_id": household, "inspected_on": day, "grade": grade, "renovation": renovation,
		"ventilation": "adequate"}
	if previous != "" {
		f["previous_id"] = previous
	}
	at, _ := time.Parse(time.DateOnly, day)
	return storetest.Upsert("housing_inspection", id, 0, at.Add(2*time.Hour), f)
}

func waterOnDay(id, household, day string, liters float64) syncproto.Change {
	at, _ := time.Parse(time.DateOnly, day)
	return storetest.Upsert("water_inspection", id, 0, at.Add(3*time.Hour), map[string]any{"household_id": household,
		"inspected_on": day, "source": "piped", "quality_ok": true, "liters_per_person_day": liters, "fetch_minutes": 5,
		"reliability_pct": 97})
}

// TestReinspectionReasons builds one household per case and checks the
// re-inspection list and the coverage report name each as they should.
func TestReinspectionReasons(t *testing.T) {
	// Version 1's water indicators (its coverage counts below).
	demo := demoRegister(t)
	ts := mustServeV1(t, func(c *api.Config) { c.Divisions = demo })
	a, b := storetest.NewDevice("li.na"), storetest.NewDevice("zhao.lei")
	village := storetest.SouthVillage
	id := func() string { return uuid.NewString() }
	hh := map[string]string{}
	for _, name := range []string{"unrenovated", "completed", "chainDone", "chainDue", "conflict", "old", "dupHousing",
		"dupWater", "sameDayRecheck", "safe", "never", "deleted"} {
		hh[name] = id()
		a.Push(t, ts.Push, storetest.Household(hh[name], village, storetest.T0.Add(-60*24*time.Hour)))
	}
	ins := map[string]string{}
	for _, k := range []string{"unrenovated", "completed", "chain1", "chain2", "chain3", "due1", "due2", "conflict", "old",
		"dupA", "dupB", "dupWaterA", "dupWaterB", "recheck1", "recheck2", "safe", "deleted"} {
		ins[k] = id()
	}
	a.Push(t, ts.Push,
		housingOnDay(ins["unrenovated"], hh["unrenovated"], "2026-11-01", "D", "planned", ""),
		housingOnDay(ins["completed"], hh["completed"], "2026-11-02", "C", "completed", ""),
		// A chain of three: D, renovated and re-inspected C, then A verified.
		housingOnDay(ins["chain1"], hh["chainDone"], "2026-09-20", "D", "planned", ""),
		housingOnDay(ins["chain2"], hh["chainDone"], "2026-10-10", "C", "completed", ins["chain1"]),
		housingOnDay(ins["chain3"], hh["chainDone"], "2026-11-10", "A", "verified", ins["chain2"]),
		// A re-inspection that found the renovation completed, not yet checked again.
		housingOnDay(ins["due1"], hh["chainDue"], "2026-10-01", "C", "planned", ""),
		housingOnDay(ins["due2"], hh["chainDue"], "2026-11-05", "C", "completed", ins["due1"]),
		housingOnDay(ins["conflict"], hh["conflict"], "2026-11-03", "B", "none", ""),
		housingOnDay(ins["old"], hh["old"], "2025-06-01", "A", "none", ""),
		housingOnDay(ins["dupA"], hh["dupHousing"], "2026-11-15", "B", "none", ""),
		waterOnDay(ins["dupWaterA"], hh["dupWater"], "2026-11-16", 80),
		housingOnDay(ins["recheck1"], hh["sameDayRecheck"], "2026-11-16", "C", "completed", ""),
		housingOnDay(ins["safe"], hh["safe"], "2026-11-04", "A", "none", ""),
		housingOnDay(ins["deleted"], hh["deleted"], "2026-11-04", "D", "none", ""),
	)
	// Another team visits the same households the same day, and syncs later.
	ts.Clock.Advance(time.Minute)
	b.Push(t, ts.Push,
		housingOnDay(ins["dupB"], hh["dupHousing"], "2026-11-15", "A", "none", ""),
		waterOnDay(ins["dupWaterB"], hh["dupWater"], "2026-11-16", 30),
		housingOnDay(ins["recheck2"], hh["sameDayRecheck"], "2026-11-16", "A", "verified", ins["recheck1"]),
	)
	// Two devices change the same grade: safety_first keeps C, recorded.
	a.Push(t, ts.Push, storetest.Upsert("housing_inspection", ins["conflict"], 1, storetest.T0, map[string]any{"grade": "A"}))
	resp := b.Push(t, ts.Push, storetest.Upsert("housing_inspection", ins["conflict"], 1, storetest.T0, map[string]any{"grade": "C"}))
	if len(resp.Results[0].Conflicts) != 1 || resp.Results[0].Conflicts[0].State != "auto_resolved" {
		t.Fatalf("no grade conflict: %+v", resp.Results[0])
	}
	conflictID := resp.Results[0].Conflicts[0].ConflictID
	a.Push(t, ts.Push, storetest.Delete("household", hh["deleted"], 1, storetest.T0))
	// A household lifted out of poverty whose water was inspected without a
	// quality reading: not shown safe, so on the relapse watch.
	lifted := id()
	a.Push(t, ts.Push, storetest.Upsert("household", lifted, 0, storetest.T0, map[string]any{"village": village,
		"head_name": "冉光明", "status": "lifted_out"}),
		storetest.Upsert("water_inspection", id(), 0, storetest.T0, map[string]any{"household_id": lifted,
			"inspected_on": "2026-11-18", "liters_per_person_day": 70, "fetch_minutes": 5, "reliability_pct": 95}))

	admin := ts.Login(t, "admin", apitest.AdminDevice)
	var rep reinspectionBody
	getReport(t, ts, admin, "/v1/reinspections?region="+village, &rep)
	got := map[string]survey.DueHousehold{}
	for _, d := range rep.Households {
		got[d.HouseholdID] = d
	}
	codes := func(d survey.DueHousehold) string {
		var out []string
		for _, r := range d.Reasons {
			out = append(out, r.Code)
		}
		return strings.Join(out, ",")
	}
	want := map[string]string{
		"unrenovated": "dangerous_house",
		"completed":   "renovation_not_reinspected",
		"chainDue":    "renovation_not_reinspected",
		"conflict":    "dangerous_house,grade_conflict",
		"old":         "assessment_outdated",
		"dupHousing":  "duplicate_visit",
		"dupWater":    "duplicate_visit",
	}
	for name, reasons := range want {
		d, ok := got[hh[name]]
		if !ok {
			t.Errorf("%s is not listed as due", name)
			continue
		}
		if codes(d) != reasons {
			t.Errorf("%s: reasons %s, want %s", name, codes(d), reasons)
		}
	}
	for _, name := range []string{"chainDone", "sameDayRecheck", "safe", "never", "deleted"} {
		if d, ok := got[hh[name]]; ok {
			t.Errorf("%s is listed as due: %+v", name, d)
		}
	}
	if len(rep.Households) != len(want) || rep.Counts.Households != len(want) || rep.Counts.ByReason["duplicate_visit"] != 2 {
		t.Fatalf("%d due households, counts %+v", len(rep.Households), rep.Counts)
	}
	if d := got[hh["chainDue"]]; !reflect.DeepEqual(d.Chain, []string{ins["due1"], ins["due2"]}) || d.Current.ID != ins["due2"] ||
		d.Reasons[0].InspectionID != ins["due2"] || d.VillageName != "独庄村" {
		t.Errorf("chain: %+v", d)
	}
	if d := got[hh["conflict"]]; !reflect.DeepEqual(d.Reasons[1].ConflictIDs, []string{conflictID}) || d.Current.Grade != "C" {
		t.Errorf("conflict: %+v", d)
	}
	if d := got[hh["old"]]; d.Reasons[0].AgeDays != 537 {
		t.Errorf("old appraisal: %+v", d.Reasons[0])
	}
	dup := got[hh["dupHousing"]].Reasons[0].Visit
	if dup == nil || dup.Entity != "housing_inspection" || dup.InspectedOn != "2026-11-15" || len(dup.Inspections) != 2 {
		t.Fatalf("duplicate visit: %+v", dup)
	}
	devices := []string{dup.Inspections[0].DeviceID, dup.Inspections[1].DeviceID}
	sort.Strings(devices)
	wantDevices := []string{a.Actor.DeviceID, b.Actor.DeviceID}
	sort.Strings(wantDevices)
	if !reflect.DeepEqual(devices, wantDevices) {
		t.Fatalf("duplicate visit devices %v, want %v", devices, wantDevices)
	}

	// Coverage: the duplicate visits are flagged and each household counted once.
	var cov coverageBody
	getReport(t, ts, admin, "/v1/reports/coverage?region="+village, &cov)
	if len(cov.Villages) != 1 {
		t.Fatalf("coverage of one village: %+v", cov)
	}
	v := cov.Villages[0]
	grades := 0
	for _, n := range v.Counts.Grades {
		grades += n
	}
	// 12 households (one deleted); dupHousing counts once, with the grade
	// of the later of its two same-day appraisals (A).
	if v.Counts.Households != 12 || v.Counts.WithHousing != 9 || grades != 9 || v.Counts.WithWater != 2 ||
		v.Counts.DuplicateVisits != 2 || len(v.DuplicateVisits) != 2 || v.Counts.NeverInspected != 1 ||
		v.NeverInspected[0].ID != hh["never"] || v.Counts.Grades["A"] != 5 || v.Counts.Grades["C"] != 3 || v.Counts.Grades["D"] != 1 {
		t.Fatalf("coverage counts %+v never %+v dups %+v", v.Counts, v.NeverInspected, v.DuplicateVisits)
	}
	// The later duplicate water reading (30 l) is the household's latest,
	// and fails quantity; the lifted-out household's water lacks quality.
	if v.Counts.WaterFailing["liters_per_person_day"] != 1 || v.Counts.WaterFailing["quality_ok"] != 0 ||
		v.Counts.WaterUnrecorded["quality_ok"] != 1 || v.Counts.WaterUnsafe != 2 {
		t.Fatalf("water %+v", v.Counts)
	}
	if len(v.RelapseWatch) != 1 || v.RelapseWatch[0].ID != lifted || fmt.Sprint(v.RelapseWatch[0].Reasons) != "[unsafe_water]" ||
		fmt.Sprint(v.RelapseWatch[0].WaterUnrecorded) != "[quality_ok]" || v.RelapseWatch[0].HeadName != "冉光明" {
		t.Fatalf("relapse watch %+v", v.RelapseWatch)
	}

	// A supervisor decides the conflict: the grade is A after all. The
	// household is no longer due.
	resp2, body := ts.DoAs(t, admin, http.MethodPost, "/v1/conflicts/"+conflictID+"/resolve", "application/json",
		[]byte(`{"value":"A","note":"checked on the phone with both teams"}`))
	if resp2.StatusCode != 200 {
		t.Fatalf("resolve: %d %s", resp2.StatusCode, body)
	}
	getReport(t, ts, admin, "/v1/reinspections?region="+village, &rep)
	for _, d := range rep.Households {
		if d.HouseholdID == hh["conflict"] {
			t.Fatalf("resolved conflict still due: %+v", d)
		}
	}
}

// TestReinspectAfterIsConfigured: a server configured with a shorter
// interval lists older appraisals as outdated.
func TestReinspectAfterIsConfigured(t *testing.T) {
	ts := apitest.MustServe(t)
	d := storetest.NewDevice("li.na")
	old, fresh := uuid.NewString(), uuid.NewString()
	d.Push(t, ts.Push, storetest.Household(old, storetest.SouthVillage, storetest.T0), storetest.Household(fresh, storetest.SouthVillage, storetest.T0),
		housingOnDay(uuid.NewString(), old, "2026-10-01", "A", "none", ""),
		housingOnDay(uuid.NewString(), fresh, "2026-11-01", "A", "none", ""))
	keys, err := auth.OpenKeyring(ts.Dir, ts.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	short := httptest.NewServer(api.New(api.Config{Store: ts.Store, Accounts: ts.Store, Keys: keys, Now: ts.Clock.Now,
		Rates: &api.RateLimits{}, ReinspectAfter: 30 * 24 * time.Hour}))
	defer short.Close()
	other := ts.Beside(short)

	var rep reinspectionBody
	getReport(t, ts, ts.Login(t, "admin", apitest.AdminDevice), "/v1/reinspections", &rep)
	if len(rep.Households) != 0 || rep.AfterDays != 365 {
		t.Fatalf("default interval: %+v", rep)
	}
	getReport(t, other, other.Login(t, "admin", apitest.AdminDevice), "/v1/reinspections", &rep)
	if len(rep.Households) != 1 || rep.Households[0].HouseholdID != old || rep.Households[0].Reasons[0].Code != "assessment_outdated" ||
		rep.Households[0].Reasons[0].AgeDays != 50 || rep.AfterDays != 30 {
		t.Fatalf("30-day interval: %+v", rep)
	}
}

func testReportsAccess(t *testing.T, ts *apitest.Server) {
	ts.AddUser(t, "worker.xituo", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "supervisor.bairin", syncproto.RoleSupervisor, "150422")
	worker := ts.Login(t, "worker.xituo", uuid.NewString())
	sup := ts.Login(t, "supervisor.bairin", uuid.NewString())
	admin := ts.Login(t, "admin", apitest.AdminDevice)

	for _, path := range []string{"/v1/reports/coverage", "/v1/reinspections"} {
		t.Run(path, func(t *testing.T) {
			cases := []struct {
				name, token, query string
				status             int
				errPath            string
			}{
				{"no token", "", "", 401, ""},
				{"field worker", worker, "", 403, ""},
				{"field worker in own township", worker, "?region=500240107", 403, ""},
				{"other county", sup, "?region=500240", 403, "query.region"},
				{"a village of the other county", sup, "?region=500240107201", 403, "query.region"},
				{"the whole province", sup, "?region=15", 403, "query.region"},
				{"unknown parameter", sup, "?county=150422", 400, "query.county"},
				{"repeated region", sup, "?region=150422&region=150422101", 400, "query.region"},
				{"region not digits", sup, "?region=1504x2", 422, "query.region"},
				{"region too short", sup, "?region=1", 422, "query.region"},
				{"region too long", sup, "?region=1504221012011", 422, "query.region"},
				{"sql in region", admin, "?region=" + "15%27%20OR%201%3D1--", 422, "query.region"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					resp, body := ts.DoAs(t, c.token, http.MethodGet, path+c.query, "", nil)
					p := apitest.MustProblem(t, resp, body, c.status)
					if c.errPath != "" && (len(p.Errors) == 0 || p.Errors[0].Path != c.errPath) {
						t.Fatalf("problem %s lacks path %s", body, c.errPath)
					}
				})
			}
		})
	}

	// The supervisor of 150422 sees their county only, by default and by region.
	var cov coverageBody
	getReport(t, ts, sup, "/v1/reports/coverage", &cov)
	if len(cov.Counties) != 1 || cov.Counties[0].Code != "150422" || cov.Region != "" || len(cov.Villages) != 8 {
		t.Fatalf("default scope: counties %+v, %d villages", cov.Counties, len(cov.Villages))
	}
	for _, v := range cov.Villages {
		if !strings.HasPrefix(v.Code, "150422") {
			t.Fatalf("village %s outside the supervisor's scope", v.Code)
		}
	}
	getReport(t, ts, sup, "/v1/reports/coverage?region=150422101", &cov)
	if cov.Region != "150422101" || cov.RegionName != "林东镇" || len(cov.Villages) != 3 || len(cov.Townships) != 1 ||
		cov.Totals.Households != 19+21+16 {
		t.Fatalf("township: %+v", cov)
	}
	var re reinspectionBody
	getReport(t, ts, sup, "/v1/reinspections", &re)
	for _, d := range re.Households {
		if !strings.HasPrefix(d.Village, "150422") {
			t.Fatalf("due household %s in %s, outside the supervisor's scope", d.HouseholdID, d.Village)
		}
	}
	if len(re.Households) == 0 {
		t.Fatal("no household due in 150422")
	}
	// A region with no households is an empty report, not an error.
	getReport(t, ts, admin, "/v1/reports/coverage?region=110101", &cov)
	if len(cov.Villages) != 0 || cov.Totals.Households != 0 || cov.Counties == nil {
		t.Fatalf("empty region: %+v", cov)
	}
	getReport(t, ts, admin, "/v1/reinspections?region=110101", &re)
	if re.Households == nil || len(re.Households) != 0 {
		t.Fatalf("empty region: %+v", re)
	}
}

// failingReports is a store whose coverage report fails after a thousand
// villages (enough for the answer to have left the server's buffers, the
// reports' 64 KiB among them), as a database error in the middle of a
// large region would.
type failingReports struct{ *sqlite.Store }

func (f failingReports) HouseholdInspections(ctx context.Context, actor syncproto.Actor, q syncproto.HouseholdQuery, emit func(*survey.HouseholdInspections) error) (syncproto.Cursor, error) {
	for i := range 1001 { // the 1,001st household completes the 1,000th village
		if err := emit(&survey.HouseholdInspections{ID: fmt.Sprintf("h%04d", i), Village: fmt.Sprintf("50024010%04d", i)}); err != nil {
			return syncproto.Cursor{}, err
		}
	}
	return syncproto.Cursor{}, errors.New("disk I/O error")
}

// TestReportFailingMidStreamCutsTheConnection: once a report has started,
// a failure cannot become a problem response; the server cuts the
// connection so that the client cannot take a partial list for the whole.
func TestReportFailingMidStreamCutsTheConnection(t *testing.T) {
	ts := apitest.MustServe(t)
	keys, err := auth.OpenKeyring(ts.Dir, ts.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	broken := httptest.NewServer(api.New(api.Config{Store: failingReports{ts.Store}, Accounts: ts.Store, Keys: keys,
		Now: ts.Clock.Now, Rates: &api.RateLimits{}}))
	defer broken.Close()
	req, _ := http.NewRequest(http.MethodGet, broken.URL+"/v1/reports/coverage", nil)
	req.Header.Set("Authorization", "Bearer "+ts.Login(t, "admin", apitest.AdminDevice))
	resp, err := broken.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil || json.Valid(body) {
		t.Fatalf("a failed report was read whole: status %d, %s", resp.StatusCode, body)
	}
}
