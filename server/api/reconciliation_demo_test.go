package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// reconciliationBody is the JSON reconciliation report as a test reads it.
type reconciliationBody struct {
	Villages []syncproto.VillageReconciliation `json:"villages"`
	Totals   syncproto.ReconciliationReport    `json:"totals"`
}

// findingsOf lists a report's findings as the fixtures' plan names them,
// one line each, sorted.
func findingsOf(r reconciliationBody) []string {
	var out []string
	for _, v := range r.Villages {
		for _, b := range v.BlindSpots {
			out = append(out, fmt.Sprint(fixtures.RegistryFinding{Kind: b.Kind, Village: v.Village, HouseholdID: b.HouseholdID, Source: b.Source, Key: b.Key}))
		}
		for _, u := range v.Unregistered {
			out = append(out, fmt.Sprint(fixtures.RegistryFinding{Kind: "unregistered", Village: v.Village, HouseholdID: u.HouseholdID}))
		}
		for _, a := range v.Ambiguous {
			out = append(out, fmt.Sprint(fixtures.RegistryFinding{Kind: "ambiguous", Village: v.Village, Source: a.Source, Key: a.Key}))
		}
		for _, d := range v.Disagreements {
			f := fixtures.RegistryFinding{Kind: d.Kind, Village: v.Village, HouseholdID: d.HouseholdID, PersonID: d.PersonID, Field: d.Field, Source: d.A.Source}
			if d.Kind == syncproto.DisagreeDepartments {
				f.Other = d.B.Source
			}
			out = append(out, fmt.Sprint(f))
		}
	}
	sort.Strings(out)
	return out
}

func importFile(t *testing.T, ts *apitest.Server, token string, f fixtures.RegistryFile) syncproto.RegistryImport {
	t.Helper()
	resp, body := ts.DoAs(t, token, http.MethodPost, "/v1/imports?source="+f.Source, "text/csv", f.Data)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("import %s: %d %s", f.Name, resp.StatusCode, body)
	}
	var imp syncproto.RegistryImport
	if err := json.Unmarshal(body, &imp); err != nil {
		t.Fatal(err)
	}
	return imp
}

// TestReconciliationOnTheDemo loads the demo, imports its six registry
// files (fixtures/registries: the poverty registry, the allowance, the
// extreme-poverty and the disability lists, school enrolment, medical
// insurance) through POST /v1/imports, and checks that the
// reconciliation names exactly the findings the files were made to cause
// (fixtures.DemoRegistries, by construction, not by matching); the same
// files again change nothing.
func TestReconciliationOnTheDemo(t *testing.T) {
	ts := apitest.MustServe(t)
	apitest.SeedDemo(t, ts)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	files, plan := fixtures.DemoRegistries()
	// Every source of the demo is a file, and the plan gives the
	// extreme-poverty and the disability lists their own findings: rows no
	// team recorded, disagreements with the field record and with the
	// other departments' lists.
	if len(files) != 6 {
		t.Fatalf("%d demo registry files, want one per source of registries.json", len(files))
	}
	for _, src := range []string{"extreme_poverty", "disability"} {
		by := map[string]int{}
		for _, f := range plan {
			if f.Source == src {
				by[f.Kind]++
			}
		}
		if by[syncproto.BlindNotInField] == 0 || by[syncproto.DisagreeField] == 0 || by[syncproto.DisagreeDepartments] == 0 {
			t.Errorf("the plan's findings of %s: %v", src, by)
		}
	}
	households0, never0, verified0 := coverageOf(t, ts, admin)
	opened := 0
	for _, f := range files {
		imp := importFile(t, ts, admin, f)
		if imp.Version != 1 || imp.Same || imp.Added != imp.Rows {
			t.Errorf("%s: %+v", f.Name, imp)
		}
		opened += imp.ConflictsOpened
	}
	for _, f := range files {
		if imp := importFile(t, ts, admin, f); imp.Version != 1 || !imp.Same || imp.ConflictsOpened != 0 {
			t.Errorf("%s again: %+v, want the same import", f.Name, imp)
		}
	}
	// Every disagreement of a registry with the field record opened one
	// conflict (and an import of all the files again none).
	fieldDisagreements := 0
	for _, f := range plan {
		if f.Kind == syncproto.DisagreeField {
			fieldDisagreements++
		}
	}
	if opened != fieldDisagreements {
		t.Errorf("the imports opened %d conflicts, want one for each of the %d disagreements with the field", opened, fieldDisagreements)
	}
	resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/reconciliation", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reconciliation: %d %s", resp.StatusCode, body)
	}
	var r reconciliationBody
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range plan {
		want = append(want, fmt.Sprint(f))
	}
	sort.Strings(want)
	got := findingsOf(r)
	if !slices.Equal(got, want) {
		for _, g := range got {
			if !slices.Contains(want, g) {
				t.Errorf("not planned: %s", g)
			}
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("missing: %s", w)
			}
		}
	}
	kinds := map[string]int{}
	for _, f := range plan {
		kinds[f.Kind]++
	}
	// The coverage and the verification count the households only a
	// household list names: never inspected, and without evidence (a
	// person only the disability list names is no household).
	reg := schema.BuiltIn().Version(3).Registries()
	notInField := 0
	for _, f := range plan {
		if f.Kind == syncproto.BlindNotInField && reg.Source(f.Source).Level == schema.LevelHousehold {
			notInField++
		}
	}
	households1, never1, verified1 := coverageOf(t, ts, admin)
	if households1 != households0+notInField || never1 != never0+notInField {
		t.Errorf("coverage: %d households, %d never inspected; want %d and %d", households1, never1, households0+notInField, never0+notInField)
	}
	if verified1["households"] != verified0["households"]+notInField || verified1["incomplete"] != verified0["incomplete"]+notInField || verified1["verified"] != verified0["verified"] {
		t.Errorf("verification totals %v, want %v with %d more households incomplete", verified1, verified0, notInField)
	}
	t.Logf("planned findings: %v; totals %+v", kinds, r.Totals)
	if r.Totals.BlindSpots != kinds[syncproto.BlindNotInField]+kinds[syncproto.BlindNeverInspected] || r.Totals.Unregistered != kinds["unregistered"] ||
		r.Totals.Disagreements != kinds[syncproto.DisagreeField]+kinds[syncproto.DisagreeDepartments] || r.Totals.Ambiguous != 0 {
		t.Errorf("totals = %+v, want the plan's %v", r.Totals, kinds)
	}
}

// coverageOf reads the totals of the coverage and verification reports:
// households and never inspected; households, verified and incomplete.
func coverageOf(t *testing.T, ts *apitest.Server, token string) (households, never int, verified map[string]int) {
	t.Helper()
	resp, body := ts.DoAs(t, token, http.MethodGet, "/v1/reports/coverage", "", nil)
	var c struct {
		Totals map[string]any `json:"totals"`
	}
	if err := json.Unmarshal(body, &c); resp.StatusCode != 200 || err != nil {
		t.Fatalf("coverage: %d %.300s", resp.StatusCode, body)
	}
	resp, body = ts.DoAs(t, token, http.MethodGet, "/v1/reports/verification", "", nil)
	var v struct {
		Totals map[string]any `json:"totals"`
	}
	if err := json.Unmarshal(body, &v); resp.StatusCode != 200 || err != nil {
		t.Fatalf("verification: %d %.300s", resp.StatusCode, body)
	}
	verified = map[string]int{}
	for _, k := range []string{"households", "verified", "incomplete"} {
		n, _ := v.Totals[k].(float64)
		verified[k] = int(n)
	}
	h, _ := c.Totals["households"].(float64)
	n, _ := c.Totals["never_inspected"].(float64)
	return int(h), int(n), verified
}
