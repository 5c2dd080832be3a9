// Package monitor follows up the households that could slip back into
// poverty, as a version's monitoring declares (schema.Monitoring, the
// version's monitoring.json): a household's monitoring status from its
// poverty status, the triggers that hold on its verdict and its records,
// and the team's judgement on its latest follow-up visit; and when its
// next visit is due, by the schedule of its status. No trigger and no
// schedule is written here: they are all data.
//
// The package is pure, like survey and verify: it imports neither SQL nor
// HTTP.
package monitor

import (
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/schema/verify"
)

// Reason is one trigger that holds for a household, with the evidence
// that makes it hold: for a trigger on the guarantees, the guarantee and
// the criterion not met; for every trigger the rule, the record (of which
// form), its field and value (left out for text fields, which may hold
// personal data), and the evidence's date — the record's date by its
// form's role, or the day the server accepted it when the form declares
// none; none for the household's own record, whose change time the
// household stream does not carry.
type Reason struct {
	Trigger   string          `json:"trigger"`
	LeadsTo   string          `json:"leads_to"`
	Guarantee string          `json:"guarantee,omitempty"`
	Criterion string          `json:"criterion,omitempty"`
	Rule      string          `json:"rule,omitempty"`
	Form      string          `json:"form"`
	Record    string          `json:"record"`
	Field     string          `json:"field,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	Date      string          `json:"date,omitempty"`
}

// Visit names a household's latest follow-up visit: the record, its date,
// and the monitoring status the team judged (when it judged one).
type Visit struct {
	Record string `json:"record"`
	Date   string `json:"date"`
	Judged string `json:"judged,omitempty"`
}

// What a due date is counted from (Followup.DueFrom).
const (
	// FromEvidence: the earliest dated evidence no visit has seen yet.
	FromEvidence = "evidence"
	// FromUndatedEvidence: evidence without a date (the household's own
	// record) that no visit has seen: due on the day judged.
	FromUndatedEvidence = "undated_evidence"
	// FromVisit: the latest follow-up visit, which saw every evidence.
	FromVisit = "visit"
	// FromContact: no visit and no trigger: the latest record of the
	// household (an inspection, a member recorded).
	FromContact = "contact"
	// FromNothing: nothing recorded under the household: due on the day
	// judged.
	FromNothing = "nothing"
)

// Followup is a household's monitoring as of a day.
type Followup struct {
	Household string `json:"household"`
	Village   string `json:"village"`
	// VillageName is the village's name, for the caller to set from its
	// division register.
	VillageName string `json:"village_name"`
	HeadName    string `json:"head_name"`
	// PovertyStatus is the household's status field (lifted_out, …).
	PovertyStatus string `json:"poverty_status,omitempty"`
	// Monitored tells whether the household is monitored at all: its
	// poverty status is one the monitoring follows, or a trigger holds.
	// The other fields are left empty when it is not.
	Monitored bool `json:"-"`
	// Status is the monitoring status: the most severe of the status the
	// household starts from (or, once a visit judged one, the status the
	// team judged) and of the triggers that hold.
	Status string `json:"status"`
	// Reasons are the triggers that hold, each with its evidence.
	Reasons   []Reason `json:"reasons"`
	LastVisit *Visit   `json:"last_visit,omitempty"`
	// DueDate is when the next follow-up visit is due (YYYY-MM-DD): what
	// DueFrom names plus the status's follow-up days.
	DueDate string `json:"due_date"`
	DueFrom string `json:"due_from"`
	// Due tells whether the visit is due on the day judged (DueDate is
	// that day or earlier).
	Due  bool   `json:"due"`
	AsOf string `json:"as_of"`
	// severity is Status's place among the statuses (0: the least severe).
	severity int
}

// Listed tells whether the household belongs on the follow-up list: it
// is monitored and either in a status other than the least severe one or
// due for its visit.
func (f *Followup) Listed() bool { return f.Monitored && (f.severity > 0 || f.Due) }

// Monitor evaluates households by one version's monitoring. It is
// immutable and safe for concurrent use.
type Monitor struct {
	sch       *schema.Schema
	decl      *schema.Monitoring
	household *schema.Form
	visit     *schema.Form
}

// ErrNoMonitoring is returned by New for a version without a
// monitoring.json.
var ErrNoMonitoring = errors.New("monitor: the form set's version declares no monitoring (monitoring.json)")

// New returns the monitor of a version, or ErrNoMonitoring. The catalog
// checked the declaration against the version's forms when it loaded.
func New(sch *schema.Schema) (*Monitor, error) {
	decl := sch.Monitoring()
	if decl == nil {
		return nil, ErrNoMonitoring
	}
	return &Monitor{sch: sch, decl: decl, household: sch.Playing(schema.RoleHousehold), visit: sch.Form(decl.Visit)}, nil
}

// Statuses are the declared statuses, from the least severe.
func (m *Monitor) Statuses() []schema.MonitoringStatus { return m.decl.Statuses }

// Evaluate follows up the household, with its fields and children (as
// the household stream gives them with Children), given its verdict as of
// the same day (nil when the version declares no verification: triggers
// on the guarantees do not hold then), as of the day asOf.
func (m *Monitor) Evaluate(h *survey.HouseholdInspections, verdict *verify.Verdict, asOf time.Time) Followup {
	day := asOf.UTC().Truncate(24 * time.Hour)
	out := Followup{Household: h.ID, Village: h.Village, HeadName: h.HeadName, PovertyStatus: h.Status,
		AsOf: day.Format(time.DateOnly), Reasons: []Reason{}}
	status := ""
	for _, mh := range m.decl.Households {
		if mh.Status == h.Status && h.Status != "" {
			status = mh.Starts
		}
	}
	out.LastVisit = m.lastVisit(h)
	if out.LastVisit != nil && out.LastVisit.Judged != "" && m.decl.Severity(out.LastVisit.Judged) >= 0 {
		// The team's judgement replaces the status the household
		// starts from; the triggers still hold on their evidence.
		status = out.LastVisit.Judged
	}
	e := evaluation{m: m, h: h, asOf: day}
	for i := range m.decl.Triggers {
		t := &m.decl.Triggers[i]
		if !slices.Contains(t.Households, h.Status) {
			continue
		}
		out.Reasons = append(out.Reasons, e.trigger(t, verdict)...)
	}
	for _, r := range out.Reasons {
		if status == "" || m.decl.Severity(r.LeadsTo) > m.decl.Severity(status) {
			status = r.LeadsTo
		}
	}
	if status == "" {
		return Followup{Household: h.ID, Village: h.Village, HeadName: h.HeadName, PovertyStatus: h.Status, AsOf: out.AsOf}
	}
	out.Monitored, out.Status, out.severity = true, status, m.decl.Severity(status)
	base, from := m.dueBase(h, out.Reasons, out.LastVisit)
	if from == FromUndatedEvidence || from == FromNothing {
		out.DueDate = out.AsOf
	} else {
		d, _ := time.Parse(time.DateOnly, base)
		out.DueDate = d.AddDate(0, 0, m.decl.Status(status).FollowUpDays).Format(time.DateOnly)
	}
	out.DueFrom = from
	out.Due = out.DueDate <= out.AsOf
	return out
}

// dueBase returns the date a due date counts from, and what it is: the
// earliest evidence the latest visit has not seen (dated after it, or
// undated when there is no visit), else the latest visit, else the
// household's latest record.
func (m *Monitor) dueBase(h *survey.HouseholdInspections, reasons []Reason, last *Visit) (string, string) {
	earliest, undated := "", false
	for _, r := range reasons {
		switch {
		case r.Date == "" && last == nil:
			undated = true
		case r.Date != "" && (last == nil || r.Date > last.Date):
			if earliest == "" || r.Date < earliest {
				earliest = r.Date
			}
		}
	}
	switch {
	case undated:
		return "", FromUndatedEvidence
	case earliest != "":
		return earliest, FromEvidence
	case last != nil:
		return last.Date, FromVisit
	}
	contact := ""
	for i := range h.Children {
		if d := m.recordDate(&h.Children[i]); d > contact {
			contact = d
		}
	}
	if contact == "" {
		return "", FromNothing
	}
	return contact, FromContact
}

// lastVisit returns the household's latest follow-up visit by its date
// (never later than the day after the server accepted it), ties by the
// later accepted change, then the greater id; nil when it has none.
func (m *Monitor) lastVisit(h *survey.HouseholdInspections) *Visit {
	if m.visit == nil {
		return nil
	}
	var cur *survey.Record
	curDate := ""
	for i := range h.Children {
		r := &h.Children[i]
		if r.Entity != m.visit.Entity {
			continue
		}
		d := m.recordDate(r)
		if d == "" {
			continue
		}
		if cur == nil || d > curDate || (d == curDate && (r.UpdatedAt.After(cur.UpdatedAt) ||
			(r.UpdatedAt.Equal(cur.UpdatedAt) && (r.Seq > cur.Seq || (r.Seq == cur.Seq && r.ID > cur.ID))))) {
			cur, curDate = r, d
		}
	}
	if cur == nil {
		return nil
	}
	return &Visit{Record: cur.ID, Date: curDate, Judged: text(cur.Fields[m.visit.RoleField("next_status")])}
}

// recordDate is a child record's date: its form's role date, bounded by
// the day after the server accepted it, or that day when the form
// declares no date or the record has none.
func (m *Monitor) recordDate(r *survey.Record) string {
	accepted := ""
	if !r.UpdatedAt.IsZero() {
		accepted = r.UpdatedAt.UTC().Format(time.DateOnly)
	}
	f := m.sch.Form(r.Entity)
	d := text(r.Fields[f.RoleField("date")])
	if _, err := time.Parse(time.DateOnly, d); err != nil || f.RoleField("date") == "" {
		return accepted
	}
	if accepted != "" {
		if limit := r.UpdatedAt.UTC().AddDate(0, 0, 1).Format(time.DateOnly); d > limit {
			return limit
		}
	}
	return d
}

// evaluation is one household's follow-up in progress.
type evaluation struct {
	m    *Monitor
	h    *survey.HouseholdInspections
	asOf time.Time
}

// trigger returns a reason for each piece of evidence that makes the
// trigger hold: each criterion not met of its guarantees, or each record
// of its form meeting (Met) or failing (NotMet) its rule.
func (e *evaluation) trigger(t *schema.Trigger, verdict *verify.Verdict) []Reason {
	var out []Reason
	if len(t.Guarantees) > 0 {
		if verdict == nil {
			return nil
		}
		for _, g := range t.Guarantees {
			gout := verdict.Guarantee(g)
			if gout == nil || gout.Outcome != verify.NotMet {
				continue
			}
			for _, c := range gout.Criteria {
				if c.Outcome != verify.NotMet {
					continue
				}
				r := Reason{Trigger: t.Name, LeadsTo: t.LeadsTo, Guarantee: g, Criterion: c.Criterion, Rule: c.Rule,
					Record: c.Record, Field: c.Field, Value: c.Value}
				r.Form, r.Date = e.recordOf(c.Record)
				out = append(out, r)
			}
		}
		return out
	}
	form := e.m.sch.Form(t.Form)
	rule, want := t.Met, schema.Met
	if t.NotMet != "" {
		rule, want = t.NotMet, schema.NotMet
	}
	judge := func(id string, fields map[string]json.RawMessage, date string) {
		j, err := form.Judge(rule, e.facts(form, fields))
		if err != nil {
			// The catalog checked every rule the monitoring names.
			panic(err)
		}
		if j.Verdict != want {
			return
		}
		field := form.DecidingField(j.Rule, j.Decided)
		r := Reason{Trigger: t.Name, LeadsTo: t.LeadsTo, Rule: rule, Form: form.Entity, Record: id, Field: field, Date: date}
		if fd := form.Field(field); fd != nil && fd.Type != schema.TypeText {
			if v, ok := fields[field]; ok && string(v) != "null" {
				r.Value = v
			}
		}
		out = append(out, r)
	}
	if form == e.m.household {
		judge(e.h.ID, e.h.Fields, "")
		return out
	}
	for i := range e.h.Children {
		if c := &e.h.Children[i]; c.Entity == form.Entity {
			judge(c.ID, c.Fields, e.m.recordDate(c))
		}
	}
	return out
}

// recordOf names the form of one of the household's records and its
// evidence date.
func (e *evaluation) recordOf(id string) (string, string) {
	if id == e.h.ID || id == "" {
		return e.m.household.Entity, ""
	}
	for i := range e.h.Children {
		if c := &e.h.Children[i]; c.ID == id {
			return c.Entity, e.m.recordDate(c)
		}
	}
	return "", ""
}

// facts are a record's facts for its form's rules: its fields, the
// records its reference fields point to (among the household's), the
// household's village as the region, the day judged for.
func (e *evaluation) facts(form *schema.Form, fields map[string]json.RawMessage) schema.Facts {
	f := schema.Facts{Fields: fields, Region: e.h.Village, AsOf: e.asOf, Now: e.asOf}
	for _, ref := range form.RuleReferences() {
		id := text(fields[ref])
		if id == "" {
			continue
		}
		var rel map[string]json.RawMessage
		if id == e.h.ID {
			rel = e.h.Fields
		}
		for i := range e.h.Children {
			if e.h.Children[i].ID == id {
				rel = e.h.Children[i].Fields
			}
		}
		if rel != nil {
			if f.Related == nil {
				f.Related = map[string]map[string]json.RawMessage{}
			}
			f.Related[ref] = rel
		}
	}
	return f
}

// text is a JSON string's value, or "".
func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}
