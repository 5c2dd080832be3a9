package api_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/apitest"
)

// coverageSummaryBody is the answer of GET /v1/reports/coverage?summary=villages.
type coverageSummaryBody struct {
	Region     string `json:"region"`
	RegionName string `json:"region_name"`
	Summary    string `json:"summary"`
	Villages   []struct {
		Code, Name, Township, County string
		Counts                       survey.CoverageCounts
	} `json:"villages"`
	Townships []survey.AreaCoverage `json:"townships"`
	Counties  []survey.AreaCoverage `json:"counties"`
	Totals    survey.CoverageCounts `json:"totals"`
	Cursor    string                `json:"cursor"`
}

// TestCoverageSummaryEqualsTheReport: on the demo (pushed through the
// API's store, which keeps the aggregates), ?summary=villages answers each
// village's counts, names and areas, the roll-ups, the totals and the
// cursor of the full report, for a county and for the whole scope; the
// full report's answer keeps its v1 shape.
func TestCoverageSummaryEqualsTheReport(t *testing.T) {
	ts := mustServeDemoRegister(t)
	apitest.SeedDemo(t, ts)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	for _, region := range []string{"?region=500240", ""} {
		var full coverageBody
		getReport(t, ts, admin, "/v1/reports/coverage"+region, &full)
		var sum coverageSummaryBody
		sep := "?"
		if region != "" {
			sep = "&"
		}
		getReport(t, ts, admin, "/v1/reports/coverage"+region+sep+"summary=villages", &sum)
		if sum.Summary != "villages" || sum.Region != full.Region || sum.RegionName != full.RegionName || sum.Cursor != full.Cursor {
			t.Fatalf("%q: summary head %+v, report %+v", region, sum, full)
		}
		if len(sum.Villages) != len(full.Villages) || len(full.Villages) == 0 {
			t.Fatalf("%q: %d villages summarised, %d reported", region, len(sum.Villages), len(full.Villages))
		}
		for i, v := range full.Villages {
			s := sum.Villages[i]
			if s.Code != v.Code || s.Name != v.Name || s.Township != v.Township || s.County != v.County || !reflect.DeepEqual(s.Counts, v.Counts) {
				t.Fatalf("%q: village %s summarised as %+v, reported %+v", region, v.Code, s, v.Counts)
			}
		}
		if !reflect.DeepEqual(sum.Townships, full.Townships) || !reflect.DeepEqual(sum.Counties, full.Counties) ||
			!reflect.DeepEqual(sum.Totals, full.Totals) {
			t.Fatalf("%q: roll-ups summarised %+v %+v %+v, reported %+v %+v %+v", region,
				sum.Townships, sum.Counties, sum.Totals, full.Townships, full.Counties, full.Totals)
		}
		if full.Totals.NeverInspected == 0 || full.Totals.WithWater == 0 {
			t.Fatalf("%q: the demo's totals %+v", region, full.Totals)
		}
	}
	resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/coverage?summary=village", "", nil)
	if resp.StatusCode != 422 || !strings.Contains(string(body), `"query.summary"`) {
		t.Fatalf("a bad summary: %d %s", resp.StatusCode, body)
	}
}
