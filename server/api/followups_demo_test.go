package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
)

// followupSeverity is the built-in monitoring's order of its statuses,
// from the least severe, as docs/forms.md states it.
var followupSeverity = map[string]int{"stable": 0, "borderline": 1, "unstable": 2, "sudden_hardship": 3, "relapsed": 4}

// plannedFollowup is the monitoring status a planned household should be
// in, from the plan and the built-in monitoring's rules as docs/forms.md
// states them, not from the monitor: the status it starts from — a
// lifted-out household stable, one at risk unstable, or, once a
// follow-up visit judged one, the status the visit judged — raised by
// the triggers that hold: a guarantee not met, relapsed; a member
// seriously ill, sudden hardship; an income below the line, unstable.
// Households neither lifted out nor at risk are not monitored ("").
func plannedFollowup(p fixtures.PlannedHousehold) string {
	if p.Status != "lifted_out" && p.Status != "relapse_risk" {
		return ""
	}
	status := "stable"
	if p.Status == "relapse_risk" {
		status = "unstable"
	}
	if p.Visit != nil {
		status = p.Visit.Judged
	}
	raise := func(s string) {
		if followupSeverity[s] > followupSeverity[status] {
			status = s
		}
	}
	for _, o := range []string{p.Food, p.Clothing, p.Education, p.Medical, p.Housing, p.Water} {
		if o == fixtures.OutcomeNotMet {
			raise("relapsed")
		}
	}
	if p.SeriouslyIll {
		raise("sudden_hardship")
	}
	if p.IncomeBelowLine {
		raise("unstable")
	}
	return status
}

// TestFollowupsOnTheDemo loads the demo and checks the follow-up list
// household by household against the plan (plannedFollowup): every
// household not stable is listed in its status, no stable one is (each
// was recorded, or visited, within the year), and the totals count each
// status. The demo's follow-up visits (fixtures.PlannedHousehold.Visit)
// show on the listed households as their last visit, with the status the
// team judged; the due date of a visited household counts from its
// visit (no evidence it has not seen: the plan's visits go to households
// with no dated trigger) by its status's follow-up days, and those whose
// date has passed are due.
func TestFollowupsOnTheDemo(t *testing.T) {
	ts := apitest.MustServe(t)
	apitest.SeedDemo(t, ts)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/followups?format=ndjson", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("followups: %d %s", resp.StatusCode, body)
	}
	type visit struct{ Record, Date, Judged string }
	type entry struct {
		Kind, Household, Status string
		LastVisit               *visit `json:"last_visit"`
		DueDate                 string `json:"due_date"`
		DueFrom                 string `json:"due_from"`
		Due                     json.RawMessage
		AsOf                    string `json:"as_of"`
		Totals                  json.RawMessage
	}
	listed := map[string]entry{}
	var totals struct {
		Households, Monitored, Listed, Due int
		ByStatus                           map[string]int `json:"by_status"`
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line entry
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		switch line.Kind {
		case "household":
			listed[line.Household] = line
		case "end":
			if err := json.Unmarshal(line.Totals, &totals); err != nil {
				t.Fatal(err)
			}
		}
	}
	monitoring := schema.BuiltIn().Latest().Monitoring()
	asOf := storetest.T0.Format(time.DateOnly)
	want := map[string]int{}
	monitored, visited, changed, visitedDue := 0, 0, 0, 0
	for _, p := range fixtures.DemoPlan() {
		status := plannedFollowup(p)
		if status != "" {
			want[status]++
			monitored++
		}
		got, ok := listed[p.ID]
		switch {
		case status == "" || status == "stable":
			if ok {
				t.Errorf("household %s (%s, %+v) listed as %s", p.ID, p.Status, p, got.Status)
			}
		case got.Status != status:
			t.Errorf("household %s (%s, %+v): listed as %q, want %s", p.ID, p.Status, p, got.Status, status)
		}
		if p.Visit == nil {
			if ok && got.LastVisit != nil {
				t.Errorf("household %s: last visit %+v, the plan has none", p.ID, got.LastVisit)
			}
			continue
		}
		visited++
		without := p
		without.Visit = nil
		if plannedFollowup(without) != status {
			changed++
		}
		day, _ := time.Parse(time.DateOnly, p.Visit.Date)
		dueDate := day.AddDate(0, 0, monitoring.Status(status).FollowUpDays).Format(time.DateOnly)
		if dueDate <= asOf {
			visitedDue++
		}
		if !ok {
			continue
		}
		if got.LastVisit == nil || *got.LastVisit != (visit{p.Visit.ID, p.Visit.Date, p.Visit.Judged}) {
			t.Errorf("household %s: last visit %+v, want %+v", p.ID, got.LastVisit, *p.Visit)
		}
		if got.DueFrom != "visit" || got.DueDate != dueDate || string(got.Due) != strconv.FormatBool(dueDate <= asOf) || got.AsOf != asOf {
			t.Errorf("household %s visited %s, %s: due %s from %s (due %s as of %s), want %s from the visit",
				p.ID, p.Visit.Date, status, got.DueDate, got.DueFrom, got.Due, got.AsOf, dueDate)
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
	if visited == 0 || changed == 0 || visitedDue == 0 || visitedDue == visited {
		t.Errorf("the demo's visits: %d, %d of them changing the status, %d due: want some of each, not all due", visited, changed, visitedDue)
	}
	t.Logf("demo follow-ups: %v of %d monitored households, %d listed; %d visited (%d changing the status, %d due again)",
		want, monitored, len(listed), visited, changed, visitedDue)
}
