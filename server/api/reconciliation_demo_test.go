package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"

	"github.com/fieldsync/fieldsync/fixtures"
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

// TestReconciliationOnTheDemo loads the demo, imports its registry files
// (fixtures/registries) through POST /v1/imports, and checks that the
// reconciliation names exactly the findings the files were made to cause
// (fixtures.DemoRegistries, by construction, not by matching); the same
// files again change nothing.
func TestReconciliationOnTheDemo(t *testing.T) {
	ts := apitest.MustServe(t)
	apitest.SeedDemo(t, ts)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	files, plan := fixtures.DemoRegistries()
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
	t.Logf("planned findings: %v; totals %+v", kinds, r.Totals)
	if r.Totals.BlindSpots != kinds[syncproto.BlindNotInField]+kinds[syncproto.BlindNeverInspected] || r.Totals.Unregistered != kinds["unregistered"] ||
		r.Totals.Disagreements != kinds[syncproto.DisagreeField]+kinds[syncproto.DisagreeDepartments] || r.Totals.Ambiguous != 0 {
		t.Errorf("totals = %+v, want the plan's %v", r.Totals, kinds)
	}
}
