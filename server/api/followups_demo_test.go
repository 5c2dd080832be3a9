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

// plannedFollowup is the monitoring status a planned household should be
// in, from the plan and the built-in monitoring's rules as docs/forms.md
// states them, not from the monitor: lifted out or at risk and a
// guarantee not met, relapsed; else a member seriously ill, sudden
// hardship; else an income below the line, or at risk, unstable; else a
// lifted-out household is stable; the others are not monitored ("").
func plannedFollowup(p fixtures.PlannedHousehold) string {
	if p.Status != "lifted_out" && p.Status != "relapse_risk" {
		return ""
	}
	for _, o := range []string{p.Food, p.Clothing, p.Education, p.Medical, p.Housing, p.Water} {
		if o == fixtures.OutcomeNotMet {
			return "relapsed"
		}
	}
	switch {
	case p.SeriouslyIll:
		return "sudden_hardship"
	case p.IncomeBelowLine || p.Status == "relapse_risk":
		return "unstable"
	}
	return "stable"
}

// TestFollowupsOnTheDemo loads the demo and checks the follow-up list
// household by household against the plan (plannedFollowup): every
// household not stable is listed in its status, no stable one is (each
// was recorded within the year), and the totals count each status.
func TestFollowupsOnTheDemo(t *testing.T) {
	ts := apitest.MustServe(t)
	apitest.SeedDemo(t, ts)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/followups?format=ndjson", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("followups: %d %s", resp.StatusCode, body)
	}
	listed := map[string]string{}
	var totals struct {
		Households, Monitored, Listed int
		ByStatus                      map[string]int `json:"by_status"`
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Kind, Household, Status string
			Totals                  json.RawMessage
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		switch line.Kind {
		case "household":
			listed[line.Household] = line.Status
		case "end":
			if err := json.Unmarshal(line.Totals, &totals); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string]int{}
	monitored := 0
	for _, p := range fixtures.DemoPlan() {
		status := plannedFollowup(p)
		if status != "" {
			want[status]++
			monitored++
		}
		switch got, ok := listed[p.ID]; {
		case status == "" || status == "stable":
			if ok {
				t.Errorf("household %s (%s, %+v) listed as %s", p.ID, p.Status, p, got)
			}
		case got != status:
			t.Errorf("household %s (%s, %+v): listed as %q, want %s", p.ID, p.Status, p, got, status)
		}
	}
	for status, n := range want {
		if totals.ByStatus[status] != n {
			t.Errorf("totals %v, want %v", totals.ByStatus, want)
			break
		}
	}
	if totals.Monitored != monitored || totals.Listed != monitored-want["stable"] || totals.Households != len(fixtures.DemoPlan()) {
		t.Errorf("totals %+v: want %d monitored, %d listed", totals, monitored, monitored-want["stable"])
	}
	t.Logf("demo follow-ups: %v of %d monitored households, %d listed", want, monitored, len(listed))
}
