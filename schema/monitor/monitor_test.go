package monitor

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/schema/verify"
)

// asOf is the day the tests judge for.
var asOf = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func mustMonitor(tb testing.TB) *Monitor {
	tb.Helper()
	m, err := New(schema.BuiltIn().Latest())
	if err != nil {
		tb.Fatal(err)
	}
	return m
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

// accepted is when the server accepted the test records.
var accepted = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// household is a household of status whose records show nothing wrong: an
// income above the line, a healthy member, a house graded B inspected on
// 2026-11-20.
func household(tb testing.TB, status string) *survey.HouseholdInspections {
	tb.Helper()
	f := fields(tb, "village", "500240107201", "head_name", "谭明华", "income_per_person", 9000, "income_year", 2026)
	if status != "" {
		f["status"] = json.RawMessage(`"` + status + `"`)
	}
	return &survey.HouseholdInspections{ID: "h1", Village: "500240107201", HeadName: "谭明华", Status: status, Fields: f,
		Children: []survey.Record{
			{ID: "p1", Entity: "person", UpdatedAt: accepted, Fields: fields(tb, "household_id", "h1", "birth_year", 1970, "illness", "none")},
			{ID: "i1", Entity: "housing_inspection", UpdatedAt: accepted, Fields: fields(tb, "household_id", "h1", "inspected_on", "2026-11-20", "grade", "B")},
		}}
}

// verified is a verdict with every guarantee met.
func verified() *verify.Verdict {
	v := &verify.Verdict{Household: "h1", Overall: verify.Verified}
	for _, g := range schema.GuaranteeNames {
		v.Guarantees = append(v.Guarantees, verify.GuaranteeOutcome{Guarantee: g, Outcome: verify.Met,
			Criteria: []verify.CriterionOutcome{{Criterion: g, Outcome: verify.Met}}})
	}
	return v
}

// failing makes the verdict's guarantee not met by the criterion,
// record, field and value.
func failing(v *verify.Verdict, guarantee, criterion, rule, record, field, value string) *verify.Verdict {
	g := v.Guarantee(guarantee)
	g.Outcome = verify.NotMet
	g.Criteria = []verify.CriterionOutcome{{Criterion: criterion, Outcome: verify.NotMet, Rule: rule, Record: record, Field: field, Value: json.RawMessage(value)}}
	v.Overall, v.By = verify.Blocked, append(v.By, guarantee)
	return v
}

func addChild(h *survey.HouseholdInspections, r survey.Record) { h.Children = append(h.Children, r) }

func TestStatusFromThePovertyStatus(t *testing.T) {
	m := mustMonitor(t)
	for _, c := range []struct {
		poverty, status string
		monitored       bool
		due             string
		listed          bool
	}{
		// Lifted out with nothing wrong: stable, a visit a year after the
		// last contact (the house inspected on 2026-11-20); not listed.
		{"lifted_out", "stable", true, "2027-11-20", false},
		// Flagged at risk by the team: unstable, 30 days; listed.
		{"relapse_risk", "unstable", true, "2026-12-20", true},
		// Still in poverty, or never registered, and nothing wrong: not
		// monitored.
		{"in_poverty", "", false, "", false},
		{"", "", false, "", false},
	} {
		f := m.Evaluate(household(t, c.poverty), verified(), asOf)
		if f.Monitored != c.monitored || f.Status != c.status || f.DueDate != c.due || f.Listed() != c.listed || len(f.Reasons) != 0 {
			t.Errorf("%q: %+v, want status %q monitored %v due %s listed %v", c.poverty, f, c.status, c.monitored, c.due, c.listed)
		}
		if c.monitored && f.DueFrom != FromContact {
			t.Errorf("%q: due from %s, want %s", c.poverty, f.DueFrom, FromContact)
		}
	}
	// Lifted out and nothing recorded under the household: due today.
	h := household(t, "lifted_out")
	h.Children = nil
	if f := m.Evaluate(h, verified(), asOf); f.Status != "stable" || f.DueFrom != FromNothing || f.DueDate != "2026-12-01" || !f.Due || !f.Listed() {
		t.Errorf("nothing recorded: %+v", f)
	}
}

func TestGuaranteeFailingAgainRelapses(t *testing.T) {
	m := mustMonitor(t)
	for _, c := range []struct {
		name                                   string
		guarantee, criterion, rule, rec, field string
		value                                  string
		form, date                             string
	}{
		{"a house graded D", "housing", "house_safe", "house_safe", "i1", "grade", `"D"`, "housing_inspection", "2026-11-20"},
		{"water failing", "water", "water_safe", "water_quantity", "w1", "liters_per_person_day", `12`, "water_inspection", "2026-11-18"},
		{"a dropout", "education", "children_in_school", "in_compulsory_education", "p2", "schooling", `"dropped_out"`, "person", "2026-11-20"},
		{"an uninsured member", "medical", "insured", "medical_insured", "p1", "medical_insurance", `false`, "person", "2026-11-20"},
		{"food not assured", "food", "food_assured", "food_assured", "h1", "food_assured", `false`, "household", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := household(t, "lifted_out")
			addChild(h, survey.Record{ID: "p2", Entity: "person", UpdatedAt: accepted, Fields: fields(t, "household_id", "h1", "birth_year", 2015, "schooling", "dropped_out")})
			addChild(h, survey.Record{ID: "w1", Entity: "water_inspection", UpdatedAt: accepted, Fields: fields(t, "household_id", "h1", "inspected_on", "2026-11-18")})
			v := failing(verified(), c.guarantee, c.criterion, c.rule, c.rec, c.field, c.value)
			f := m.Evaluate(h, v, asOf)
			if f.Status != "relapsed" || len(f.Reasons) != 1 {
				t.Fatalf("%+v, want relapsed for one reason", f)
			}
			r := f.Reasons[0]
			want := Reason{Trigger: "guarantee_fails_after_exit", LeadsTo: "relapsed", Guarantee: c.guarantee, Criterion: c.criterion,
				Rule: c.rule, Form: c.form, Record: c.rec, Field: c.field, Value: json.RawMessage(c.value), Date: c.date}
			if got, _ := json.Marshal(r); string(got) != string(must(json.Marshal(want))) {
				t.Fatalf("reason %s, want %s", got, must(json.Marshal(want)))
			}
			// 7 days from the evidence; undated evidence (the household's own
			// record) with no visit: due at once.
			due, from := "", FromEvidence
			if c.date == "" {
				due, from = "2026-12-01", FromUndatedEvidence
			} else {
				d, _ := time.Parse(time.DateOnly, c.date)
				due = d.AddDate(0, 0, 7).Format(time.DateOnly)
			}
			if f.DueDate != due || f.DueFrom != from || !f.Due || !f.Listed() {
				t.Fatalf("due %s from %s (due %v), want %s from %s", f.DueDate, f.DueFrom, f.Due, due, from)
			}
			// The same verdict for a household still in poverty is no
			// relapse: it was never lifted out.
			h.Status = "in_poverty"
			if f := m.Evaluate(h, v, asOf); f.Monitored {
				t.Fatalf("in poverty: %+v", f)
			}
		})
	}
	// Evidence missing or stale is no failure: no relapse.
	v := verified()
	v.Guarantee("housing").Outcome = verify.Stale
	v.Guarantee("housing").Criteria[0].Outcome = verify.Stale
	if f := m.Evaluate(household(t, "lifted_out"), v, asOf); f.Status != "stable" {
		t.Errorf("stale housing: %+v", f)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestIncomeBelowTheLine(t *testing.T) {
	m := mustMonitor(t)
	for _, c := range []struct {
		poverty, status, trigger string
	}{
		{"lifted_out", "unstable", "income_below_line_after_exit"},
		{"relapse_risk", "unstable", "income_below_line_after_exit"},
		{"", "borderline", "income_below_line"},
		{"in_poverty", "", ""},
	} {
		h := household(t, c.poverty)
		// 2026's line is 2024's edition, 7300 yuan.
		h.Fields["income_per_person"] = json.RawMessage(`7299`)
		f := m.Evaluate(h, verified(), asOf)
		if f.Status != c.status {
			t.Errorf("%q: status %q, want %q", c.poverty, f.Status, c.status)
			continue
		}
		if c.trigger == "" {
			continue
		}
		if len(f.Reasons) != 1 || f.Reasons[0].Trigger != c.trigger || f.Reasons[0].Field != "income_per_person" ||
			string(f.Reasons[0].Value) != "7299" || f.Reasons[0].Record != "h1" || f.Reasons[0].Form != "household" {
			t.Errorf("%q: reasons %+v", c.poverty, f.Reasons)
		}
		// At the line: no trigger.
		h.Fields["income_per_person"] = json.RawMessage(`7300`)
		if f := m.Evaluate(h, verified(), asOf); len(f.Reasons) != 0 {
			t.Errorf("%q at the line: %+v", c.poverty, f.Reasons)
		}
	}
	// No income recorded: not evaluable, no trigger.
	h := household(t, "lifted_out")
	delete(h.Fields, "income_per_person")
	if f := m.Evaluate(h, verified(), asOf); f.Status != "stable" {
		t.Errorf("no income: %+v", f)
	}
}

func TestSeriousIllnessIsSuddenHardship(t *testing.T) {
	m := mustMonitor(t)
	for _, poverty := range []string{"lifted_out", ""} {
		h := household(t, poverty)
		h.Children[0].Fields["illness"] = json.RawMessage(`"serious"`)
		f := m.Evaluate(h, verified(), asOf)
		if f.Status != "sudden_hardship" || len(f.Reasons) != 1 || f.Reasons[0].Record != "p1" || f.Reasons[0].Field != "illness" ||
			string(f.Reasons[0].Value) != `"serious"` || f.Reasons[0].Date != "2026-11-20" || f.DueDate != "2026-12-05" || f.Due {
			t.Errorf("%q: %+v", poverty, f)
		}
		// A chronic illness is no sudden hardship.
		h.Children[0].Fields["illness"] = json.RawMessage(`"chronic"`)
		if f := m.Evaluate(h, verified(), asOf); len(f.Reasons) != 0 {
			t.Errorf("%q chronic: %+v", poverty, f)
		}
	}
}

func TestTheMostSevereStatusWins(t *testing.T) {
	m := mustMonitor(t)
	h := household(t, "lifted_out")
	h.Children[0].Fields["illness"] = json.RawMessage(`"serious"`)
	h.Fields["income_per_person"] = json.RawMessage(`5000`)
	f := m.Evaluate(h, failing(verified(), "housing", "house_safe", "house_safe", "i1", "grade", `"D"`), asOf)
	if f.Status != "relapsed" || len(f.Reasons) != 3 {
		t.Fatalf("%+v, want relapsed for three reasons", f)
	}
	// The earliest evidence no visit has seen counts: the house and the
	// illness are of 2026-11-20, the income undated: due at once.
	if f.DueFrom != FromUndatedEvidence || f.DueDate != "2026-12-01" {
		t.Fatalf("due %s from %s", f.DueDate, f.DueFrom)
	}
}

func TestScheduleAndVisits(t *testing.T) {
	m := mustMonitor(t)
	// Each status's schedule, from the evidence or the last contact.
	for _, c := range []struct {
		status string
		days   int
	}{{"stable", 365}, {"borderline", 30}, {"unstable", 30}, {"sudden_hardship", 15}, {"relapsed", 7}} {
		if got := m.decl.Status(c.status).FollowUpDays; got != c.days {
			t.Errorf("%s: %d days, want %d", c.status, got, c.days)
		}
		// A visit judging the status: due that many days after it.
		h := household(t, "lifted_out")
		addChild(h, survey.Record{ID: "v1", Entity: "followup_visit", UpdatedAt: accepted.Add(5 * 24 * time.Hour),
			Fields: fields(t, "household_id", "h1", "visited_on", "2026-11-25", "next_status", c.status)})
		f := m.Evaluate(h, verified(), asOf)
		want := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).AddDate(0, 0, c.days).Format(time.DateOnly)
		if f.Status != c.status || f.DueDate != want || f.DueFrom != FromVisit || f.LastVisit == nil || f.LastVisit.Record != "v1" || f.LastVisit.Judged != c.status {
			t.Errorf("judged %s: %+v, want due %s from the visit", c.status, f, want)
		}
	}

	relapsed := func() (*survey.HouseholdInspections, *verify.Verdict) {
		return household(t, "lifted_out"), failing(verified(), "housing", "house_safe", "house_safe", "i1", "grade", `"D"`)
	}
	// Relapsed on 2026-11-20's inspection: due 2026-11-27; a visit on
	// 2026-11-28 moves it to 2026-12-05.
	h, v := relapsed()
	if f := m.Evaluate(h, v, asOf); f.DueDate != "2026-11-27" || !f.Due {
		t.Fatalf("before the visit: %+v", f)
	}
	addChild(h, survey.Record{ID: "v1", Entity: "followup_visit", UpdatedAt: accepted.Add(8 * 24 * time.Hour),
		Fields: fields(t, "household_id", "h1", "visited_on", "2026-11-28")})
	f := m.Evaluate(h, v, asOf)
	if f.Status != "relapsed" || f.DueDate != "2026-12-05" || f.DueFrom != FromVisit || f.Due || !f.Listed() {
		t.Fatalf("after the visit: %+v", f)
	}
	// A visit judging the household stable cannot clear the evidence: it
	// stays relapsed until a new inspection says otherwise.
	h.Children[len(h.Children)-1].Fields["next_status"] = json.RawMessage(`"stable"`)
	if f := m.Evaluate(h, v, asOf); f.Status != "relapsed" {
		t.Fatalf("judged stable over the evidence: %+v", f)
	}
	// A visit older than the evidence saw nothing of it: due from the
	// evidence.
	h, v = relapsed()
	addChild(h, survey.Record{ID: "v0", Entity: "followup_visit", UpdatedAt: accepted,
		Fields: fields(t, "household_id", "h1", "visited_on", "2026-11-10")})
	if f := m.Evaluate(h, v, asOf); f.DueDate != "2026-11-27" || f.DueFrom != FromEvidence || f.LastVisit.Date != "2026-11-10" {
		t.Fatalf("a visit before the evidence: %+v", f)
	}
	// The latest of several visits counts; a visit dated far ahead of its
	// acceptance counts as of the day after.
	addChild(h, survey.Record{ID: "v2", Entity: "followup_visit", UpdatedAt: accepted.Add(2 * 24 * time.Hour),
		Fields: fields(t, "household_id", "h1", "visited_on", "2027-06-01")})
	if f := m.Evaluate(h, v, asOf); f.LastVisit.Record != "v2" || f.LastVisit.Date != "2026-11-23" || f.DueDate != "2026-11-30" {
		t.Fatalf("a visit dated ahead: %+v", f)
	}
	// Undated evidence is seen by any visit.
	h = household(t, "lifted_out")
	h.Fields["income_per_person"] = json.RawMessage(`5000`)
	addChild(h, survey.Record{ID: "v1", Entity: "followup_visit", UpdatedAt: accepted,
		Fields: fields(t, "household_id", "h1", "visited_on", "2026-11-20")})
	if f := m.Evaluate(h, verified(), asOf); f.Status != "unstable" || f.DueFrom != FromVisit || f.DueDate != "2026-12-20" || f.Due || !f.Listed() {
		t.Fatalf("undated evidence after a visit: %+v", f)
	}
}

func TestCountsByStatus(t *testing.T) {
	m := mustMonitor(t)
	c := m.NewCounts("village", "500240107201")
	c.Add(ptr(m.Evaluate(household(t, "lifted_out"), verified(), asOf)))
	c.Add(ptr(m.Evaluate(household(t, "in_poverty"), verified(), asOf)))
	c.Add(ptr(m.Evaluate(household(t, "lifted_out"), failing(verified(), "housing", "house_safe", "house_safe", "i1", "grade", `"D"`), asOf)))
	want := map[string]int{"stable": 1, "borderline": 0, "unstable": 0, "sudden_hardship": 0, "relapsed": 1}
	if c.Households != 3 || c.Monitored != 2 || c.Listed != 1 || c.Due != 1 || len(c.ByStatus) != len(want) {
		t.Fatalf("counts %+v", c)
	}
	for k, n := range want {
		if c.ByStatus[k] != n {
			t.Fatalf("by status %v, want %v", c.ByStatus, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
