package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/server/apitest"
)

// TestVerificationOnTheDemo loads the demo and checks the verification
// report household by household against the demo's plan — what the
// fixtures made of each household by construction (fixtures.DemoPlan), not
// by judging its records —, and the totals: 160 verified, 90 blocked, 50
// incomplete as the plan counts them.
func TestVerificationOnTheDemo(t *testing.T) {
	ts := apitest.MustServe(t)
	apitest.SeedDemo(t, ts)
	plan := fixtures.DemoPlan()
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification?format=ndjson", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("verification: %d %s", resp.StatusCode, body)
	}
	type outcome struct {
		Outcome string `json:"outcome"`
	}
	got := map[string]map[string]string{}
	var totals struct {
		Verified, Blocked, Incomplete int
		BlockedBy                     map[string]int `json:"blocked_by"`
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		var kind string
		json.Unmarshal(line["kind"], &kind)
		switch kind {
		case "household":
			var id, overall string
			json.Unmarshal(line["household"], &id)
			json.Unmarshal(line["overall"], &overall)
			g := map[string]string{"overall": overall}
			for _, name := range []string{"food", "clothing", "education", "medical", "housing", "water"} {
				var o outcome
				if err := json.Unmarshal(line[name], &o); err != nil {
					t.Fatalf("household %s: %s: %v", id, name, err)
				}
				g[name] = o.Outcome
			}
			got[id] = g
		case "end":
			if err := json.Unmarshal(line["totals"], &totals); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(got) != len(plan) {
		t.Fatalf("%d households in the report, %d in the plan", len(got), len(plan))
	}
	verified, blocked, incomplete := 0, 0, 0
	for _, p := range plan {
		g := got[p.ID]
		if g == nil {
			t.Fatalf("household %s of the plan is not in the report", p.ID)
		}
		want := map[string]string{"food": p.Food, "clothing": p.Clothing, "education": p.Education,
			"medical": p.Medical, "housing": p.Housing, "water": p.Water}
		overall := "verified"
		for _, o := range want {
			if o == fixtures.OutcomeNotMet {
				overall = "blocked"
			} else if o == fixtures.OutcomeNoEvidence && overall == "verified" {
				overall = "incomplete"
			}
		}
		want["overall"] = overall
		switch overall {
		case "verified":
			verified++
		case "blocked":
			blocked++
		default:
			incomplete++
		}
		for k, w := range want {
			if g[k] != w {
				t.Errorf("household %s (%s, case %q): %s is %s, the plan says %s", p.ID, p.Village, p.Reason, k, g[k], w)
			}
		}
	}
	if verified != 160 || blocked != 90 || incomplete != 50 {
		t.Errorf("the plan counts %d verified, %d blocked, %d incomplete (the fixtures' README says 160, 90, 50)", verified, blocked, incomplete)
	}
	if totals.Verified != verified || totals.Blocked != blocked || totals.Incomplete != incomplete {
		t.Errorf("the report's totals %+v, the plan's %d verified, %d blocked, %d incomplete", totals, verified, blocked, incomplete)
	}
}
