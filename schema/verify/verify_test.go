package verify

import (
	"encoding/json"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
)

// asOf is the day the tests judge for.
var asOf = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// mustVerifier loads the test form set under testdata/set (the design's
// names, thresholds as constants) as fsys holds it.
func mustVerifier(tb testing.TB, fsys fs.FS) *Verifier {
	tb.Helper()
	c, err := schema.LoadCatalog(fsys, "set")
	if err != nil {
		tb.Fatal(err)
	}
	v, err := Load(c)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// fields builds a record's fields from Go values.
func fields(tb testing.TB, kv ...any) map[string]json.RawMessage {
	tb.Helper()
	out := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		b, err := json.Marshal(kv[i+1])
		if err != nil {
			tb.Fatal(err)
		}
		out[kv[i].(string)] = b
	}
	return out
}

// household is a household of village whose every guarantee is met as of
// asOf: food, clothing and income above the line; one adult insured and
// healthy, one child of school age enrolled and insured; a safe house and
// safe water inspected this year. Each test breaks one thing.
func household(tb testing.TB, village string) *survey.HouseholdInspections {
	tb.Helper()
	at := time.Date(2026, 10, 2, 9, 0, 0, 0, time.UTC)
	return &survey.HouseholdInspections{ID: "h1", Village: village,
		Fields: fields(tb, "village", village, "head_name", "谭明华", "food_assured", true, "clothing_assured", true, "income_per_person", 9000),
		Children: []survey.Record{
			{ID: "p1", Entity: "person", UpdatedAt: at, Fields: fields(tb, "household_id", "h1", "birth_year", 1980, "medical_insurance", true, "illness", "none")},
			{ID: "p2", Entity: "person", UpdatedAt: at, Fields: fields(tb, "household_id", "h1", "birth_year", 2015, "schooling", "enrolled", "medical_insurance", true, "illness", "none")},
			{ID: "i1", Entity: "housing_inspection", UpdatedAt: at, Fields: fields(tb, "household_id", "h1", "inspected_on", "2026-10-01", "grade", "B")},
			{ID: "w1", Entity: "water_inspection", UpdatedAt: at, Fields: fields(tb, "household_id", "h1", "inspected_on", "2026-10-01",
				"quality_ok", true, "liters_per_person_day", 50, "fetch_minutes", 5, "reliability_pct", 95)},
		}}
}

// child returns the household's child record of the id.
func child(h *survey.HouseholdInspections, id string) *survey.Record {
	for i := range h.Children {
		if h.Children[i].ID == id {
			return &h.Children[i]
		}
	}
	return nil
}

// set overwrites (or with nil deletes) a field of a record.
func set(tb testing.TB, f map[string]json.RawMessage, name string, value any) {
	tb.Helper()
	if value == nil {
		delete(f, name)
		return
	}
	b, err := json.Marshal(value)
	if err != nil {
		tb.Fatal(err)
	}
	f[name] = b
}

// outcome returns the named guarantee's outcome and its first criterion
// that is not met (or its first criterion).
func outcome(t *testing.T, v Verdict, guarantee string) (Outcome, CriterionOutcome) {
	t.Helper()
	g := v.Guarantee(guarantee)
	if g == nil {
		t.Fatalf("no guarantee %s in %+v", guarantee, v)
	}
	for _, c := range g.Criteria {
		if c.Outcome != Met {
			return g.Outcome, c
		}
	}
	return g.Outcome, g.Criteria[0]
}

func applied(v Verdict, name string) *schema.AppliedStandard {
	for i := range v.Standards {
		if v.Standards[i].Name == name {
			return &v.Standards[i]
		}
	}
	return nil
}

func TestVerifiedHouseholdNamesItsStandards(t *testing.T) {
	v := mustVerifier(t, os.DirFS("testdata"))
	got := v.Evaluate(household(t, "500240107201"), asOf)
	if got.Overall != Verified || len(got.By) != 0 {
		t.Fatalf("overall = %s by %v, want verified: %+v", got.Overall, got.By, got)
	}
	if len(got.Guarantees) != 6 {
		t.Fatalf("guarantees = %d, want the six", len(got.Guarantees))
	}
	for _, g := range got.Guarantees {
		if g.Outcome != Met {
			t.Errorf("%s = %s, want met", g.Guarantee, g.Outcome)
		}
	}
	line := applied(got, "income_line")
	if line == nil || line.Version != "2024" || line.Effective != "2024-01-01" || line.Value != 7300 || line.Basis != schema.BasisNational {
		t.Errorf("income_line applied = %+v, want the 2024 edition, 7300, national", line)
	}
	for _, name := range []string{"evidence_age_months_housing", "evidence_age_months_water"} {
		if s := applied(got, name); s == nil || s.Value != 12 || s.Version != "test-1" {
			t.Errorf("%s applied = %+v, want test-1, 12", name, s)
		}
	}
	if g := got.Guarantee("food"); len(g.Standards) != 1 || g.Standards[0].Name != "income_line" {
		t.Errorf("food's standards = %+v, want income_line alone", g.Standards)
	}
	if got.AsOf != "2026-12-01" {
		t.Errorf("as_of = %q", got.AsOf)
	}
}

func TestStaleWaterEvidenceIsIncomplete(t *testing.T) {
	v := mustVerifier(t, os.DirFS("testdata"))
	h := household(t, "500240107201")
	// 12 months before the day is still fresh; one day more is stale.
	set(t, child(h, "w1").Fields, "inspected_on", "2025-12-01")
	if o, c := outcome(t, v.Evaluate(h, asOf), "water"); o != Met {
		t.Fatalf("water inspected 12 months ago = %s (%+v), want met", o, c)
	}
	set(t, child(h, "w1").Fields, "inspected_on", "2025-11-30")
	got := v.Evaluate(h, asOf)
	o, c := outcome(t, got, "water")
	if o != Stale || c.Record != "w1" || c.Date != "2025-11-30" {
		t.Fatalf("water = %s %+v, want stale w1 2025-11-30", o, c)
	}
	if got.Overall != Incomplete {
		t.Errorf("overall = %s, want incomplete", got.Overall)
	}
	if len(c.Standards) == 0 || c.Standards[len(c.Standards)-1].Name != "evidence_age_months_water" {
		t.Errorf("stale outcome's standards = %+v, want the evidence age", c.Standards)
	}
}

func TestRenovatedButNotReinspectedHouseBlocks(t *testing.T) {
	v := mustVerifier(t, os.DirFS("testdata"))
	h := household(t, "500240107201")
	set(t, child(h, "i1").Fields, "grade", "C")
	set(t, child(h, "i1").Fields, "renovation", "completed")
	got := v.Evaluate(h, asOf)
	o, c := outcome(t, got, "housing")
	if o != NotMet || c.Rule != "house_safe" || c.Record != "i1" || c.Field != "grade" || string(c.Value) != `"C"` {
		t.Fatalf("housing = %s %+v, want not_met house_safe i1 grade \"C\"", o, c)
	}
	if got.Overall != Blocked || !slices.Equal(got.By, []string{"housing"}) {
		t.Fatalf("overall = %s by %v, want blocked by housing", got.Overall, got.By)
	}
	// The re-inspection, the same day, supersedes what it checks.
	h.Children = append(h.Children, survey.Record{ID: "i0", Entity: "housing_inspection", UpdatedAt: child(h, "i1").UpdatedAt,
		Fields: fields(t, "household_id", "h1", "inspected_on", "2026-10-01", "grade", "C", "renovation", "verified", "previous_id", "i1")})
	if got := v.Evaluate(h, asOf); got.Overall != Verified {
		t.Fatalf("after the re-inspection: %s by %v, want verified", got.Overall, got.By)
	}
}

func TestChildOfSchoolAgeOutOfSchoolBlocks(t *testing.T) {
	v := mustVerifier(t, os.DirFS("testdata"))
	h := household(t, "500240107201")
	set(t, child(h, "p2").Fields, "schooling", "dropped_out")
	got := v.Evaluate(h, asOf)
	o, c := outcome(t, got, "education")
	if o != NotMet || c.Rule != "in_compulsory_education" || c.Record != "p2" || c.Field != "schooling" || string(c.Value) != `"dropped_out"` {
		t.Fatalf("education = %s %+v, want not_met p2 schooling dropped_out", o, c)
	}
	if got.Overall != Blocked || !slices.Equal(got.By, []string{"education"}) {
		t.Fatalf("overall = %s by %v", got.Overall, got.By)
	}
	// Exempt with a reason is in compulsory education; exempt without one
	// is not.
	set(t, child(h, "p2").Fields, "schooling", "exempt")
	set(t, child(h, "p2").Fields, "exempt_reason", "重度残疾，送教上门评估后免学")
	if o, c := outcome(t, v.Evaluate(h, asOf), "education"); o != Met {
		t.Fatalf("exempt with a reason = %s %+v, want met", o, c)
	}
	set(t, child(h, "p2").Fields, "exempt_reason", nil)
	if o, _ := outcome(t, v.Evaluate(h, asOf), "education"); o != NotMet {
		t.Fatalf("exempt without a reason = %s, want not_met", o)
	}
}

func TestNoChildOfSchoolAgeIsMet(t *testing.T) {
	v := mustVerifier(t, os.DirFS("testdata"))
	h := household(t, "500240107201")
	set(t, child(h, "p2").Fields, "birth_year", 2008) // 18: out of school is no matter
	set(t, child(h, "p2").Fields, "schooling", "dropped_out")
	if o, c := outcome(t, v.Evaluate(h, asOf), "education"); o != Met {
		t.Fatalf("education without a school-age child = %s %+v, want met", o, c)
	}
}

func TestPersonNotEvaluableIsNoEvidence(t *testing.T) {
	v := mustVerifier(t, os.DirFS("testdata"))
	h := household(t, "500240107201")
	set(t, child(h, "p2").Fields, "schooling", nil)
	got := v.Evaluate(h, asOf)
	o, c := outcome(t, got, "education")
	if o != NoEvidence || c.Record != "p2" || c.Field != "schooling" || c.Rule != "in_compulsory_education" {
		t.Fatalf("schooling not recorded: %s %+v, want no_evidence p2 schooling", o, c)
	}
	if got.Overall != Incomplete {
		t.Errorf("overall = %s, want incomplete", got.Overall)
	}
	// A birth year not recorded: whether the person is of school age
	// cannot be judged.
	set(t, child(h, "p2").Fields, "schooling", "enrolled")
	set(t, child(h, "p2").Fields, "birth_year", nil)
	if o, c := outcome(t, v.Evaluate(h, asOf), "education"); o != NoEvidence || c.Rule != "of_school_age" || c.Field != "birth_year" {
		t.Fatalf("birth year not recorded: %s %+v, want no_evidence of_school_age birth_year", o, c)
	}
	// An uninsured member blocks although another's schooling is unknown:
	// not met is worse than no evidence.
	set(t, child(h, "p1").Fields, "medical_insurance", false)
	if got := v.Evaluate(h, asOf); got.Overall != Blocked || !slices.Equal(got.By, []string{"medical"}) {
		t.Fatalf("overall = %s by %v, want blocked by medical", got.Overall, got.By)
	}
}

func TestIllMemberNeedsTreatmentAndDoctor(t *testing.T) {
	v := mustVerifier(t, os.DirFS("testdata"))
	h := household(t, "500240107201")
	set(t, child(h, "p1").Fields, "illness", "chronic")
	set(t, child(h, "p1").Fields, "treatment", "under_treatment")
	o, c := outcome(t, v.Evaluate(h, asOf), "medical")
	if o != NoEvidence || c.Criterion != "ill_treated" || c.Field != "family_doctor" {
		t.Fatalf("chronic, treated, doctor unknown: %s %+v, want no_evidence family_doctor", o, c)
	}
	set(t, child(h, "p1").Fields, "family_doctor", false)
	if o, c := outcome(t, v.Evaluate(h, asOf), "medical"); o != NotMet || c.Record != "p1" {
		t.Fatalf("no family doctor: %s %+v, want not_met p1", o, c)
	}
	set(t, child(h, "p1").Fields, "family_doctor", true)
	if o, c := outcome(t, v.Evaluate(h, asOf), "medical"); o != Met {
		t.Fatalf("treated with a doctor: %s %+v, want met", o, c)
	}
}

func TestRegionalIncomeLine(t *testing.T) {
	v := mustVerifier(t, os.DirFS("testdata"))
	// 7500 a person is above the national line (7300) and below the
	// provincial one of 32 (8000).
	national := household(t, "500240107201")
	set(t, national.Fields, "income_per_person", 7500)
	if got := v.Evaluate(national, asOf); got.Overall != Verified {
		t.Fatalf("7500 under the national line: %s by %v, want verified", got.Overall, got.By)
	}
	regional := household(t, "320100001001")
	set(t, regional.Fields, "income_per_person", 7500)
	got := v.Evaluate(regional, asOf)
	o, c := outcome(t, got, "food")
	if o != NotMet || c.Rule != "income_above_line" || c.Field != "income_per_person" || string(c.Value) != "7500" {
		t.Fatalf("food = %s %+v, want not_met income_above_line 7500", o, c)
	}
	if s := applied(got, "income_line"); s == nil || s.Value != 8000 || s.Basis != "regional 32" {
		t.Fatalf("income_line applied = %+v, want 8000 regional 32", s)
	}
	// Before the 2024 edition the 2021 line (6000, national) applies.
	old := v.Evaluate(regional, time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC))
	if s := applied(old, "income_line"); s == nil || s.Value != 6000 || s.Version != "2021" {
		t.Fatalf("income_line in 2023 = %+v, want the 2021 edition", s)
	}
	if o, _ := outcome(t, old, "food"); o != Met {
		t.Fatalf("food in 2023 = %s, want met", o)
	}
}

func TestMissingRecordsAreNoEvidence(t *testing.T) {
	v := mustVerifier(t, os.DirFS("testdata"))
	h := household(t, "500240107201")
	h.Children = nil
	got := v.Evaluate(h, asOf)
	for _, g := range []string{"education", "medical", "housing", "water"} {
		if o, c := outcome(t, got, g); o != NoEvidence || c.Record != "" {
			t.Errorf("%s without records = %s %+v, want no_evidence of no record", g, o, c)
		}
	}
	if got.Overall != Incomplete {
		t.Errorf("overall = %s, want incomplete", got.Overall)
	}
	set(t, h.Fields, "food_assured", nil)
	if o, c := outcome(t, v.Evaluate(h, asOf), "food"); o != NoEvidence || c.Field != "food_assured" || c.Record != "h1" {
		t.Errorf("food not recorded = %s %+v", o, c)
	}
}

// TestCriteriaAreData changes a threshold (the income line's edition) and a
// rule (the water quantity's constant) in a copy of the test set: the same
// household gets the other verdict, with no change of code.
func TestCriteriaAreData(t *testing.T) {
	h := household(t, "500240107201")
	set(t, h.Fields, "income_per_person", 8000)
	set(t, child(h, "w1").Fields, "liters_per_person_day", 40)
	if got := mustVerifier(t, os.DirFS("testdata")).Evaluate(h, asOf); got.Overall != Verified {
		t.Fatalf("as shipped: %s by %v, want verified", got.Overall, got.By)
	}
	fsys := copySet(t, map[string][2]string{
		"set/1/standards.json":        {`"value": 7300`, `"value": 8500`},
		"set/1/water_inspection.json": {`"op": ">=", "value": 35`, `"op": ">=", "value": 60`},
	})
	got := mustVerifier(t, fsys).Evaluate(h, asOf)
	if got.Overall != Blocked || !slices.Equal(got.By, []string{"food", "water"}) {
		t.Fatalf("changed set: %s by %v, want blocked by food and water", got.Overall, got.By)
	}
	if s := applied(got, "income_line"); s == nil || s.Value != 8500 {
		t.Errorf("income_line = %+v, want 8500", s)
	}
	if _, c := outcome(t, got, "water"); c.Rule != "water_quantity" || string(c.Value) != "40" {
		t.Errorf("water = %+v, want water_quantity 40", c)
	}
}

// copySet copies testdata into memory, replacing in the named files one
// text by another (each must occur).
func copySet(tb testing.TB, edits map[string][2]string) fs.FS {
	tb.Helper()
	out := fstest.MapFS{}
	root := os.DirFS("testdata")
	err := fs.WalkDir(root, "set", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		if e, ok := edits[p]; ok {
			if !strings.Contains(string(b), e[0]) {
				tb.Fatalf("%s has no %q", p, e[0])
			}
			b = []byte(strings.Replace(string(b), e[0], e[1], 1))
		}
		out[p] = &fstest.MapFile{Data: b}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
