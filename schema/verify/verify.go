// Package verify judges a household against the verification its form set
// declares (schema.Verification, a version's verification.json): for each
// of the six guarantees its criteria, each over the household record, every
// record of a child form, or the latest one, by the forms' criterion rules
// and the version's standards. No criterion is written here: thresholds,
// rules, which records and how fresh are all data.
//
// The package is pure, like survey: it imports neither SQL nor HTTP.
package verify

import (
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
)

// Outcome is what a criterion, or a guarantee, comes to.
type Outcome string

// The outcomes, from best to worst: a guarantee is the worst of its
// criteria, a criterion over several records the worst of theirs.
const (
	Met        Outcome = "met"
	NoEvidence Outcome = "no_evidence" // a record or a field it needs is not recorded
	Stale      Outcome = "stale"       // the latest record is older than its evidence age
	NotMet     Outcome = "not_met"     // a record fails a criterion rule
)

// rank orders the outcomes (higher is worse).
func (o Outcome) rank() int {
	switch o {
	case NotMet:
		return 3
	case Stale:
		return 2
	case NoEvidence:
		return 1
	}
	return 0
}

// Overall is a household's verdict.
type Overall string

// The verdicts: verified when every guarantee is met, blocked when one is
// not met (By names them), incomplete otherwise (evidence missing or
// stale).
const (
	Verified   Overall = "verified"
	Blocked    Overall = "blocked"
	Incomplete Overall = "incomplete"
)

// CriterionOutcome is one criterion's outcome with what decided it: for
// not_met the rule, the record and its field and value that failed; for
// no_evidence the record and field missing (no record when the household
// has no record of the form); for stale the record and its date.
type CriterionOutcome struct {
	Criterion string  `json:"criterion"`
	Outcome   Outcome `json:"outcome"`
	Rule      string  `json:"rule,omitempty"`
	Record    string  `json:"record,omitempty"`
	Field     string  `json:"field,omitempty"`
	// Value is the failing field's value; left out for text fields,
	// which may hold personal data.
	Value json.RawMessage `json:"value,omitempty"`
	// Date is the date of the record a stale outcome names.
	Date string `json:"date,omitempty"`
	// Standards are the standards and editions the criterion applied.
	Standards []schema.AppliedStandard `json:"standards,omitempty"`
}

// GuaranteeOutcome is one guarantee's outcome: the worst of its criteria.
type GuaranteeOutcome struct {
	Guarantee string             `json:"guarantee"`
	Outcome   Outcome            `json:"outcome"`
	Criteria  []CriterionOutcome `json:"criteria"`
	// Standards are those its criteria applied.
	Standards []schema.AppliedStandard `json:"standards,omitempty"`
}

// Verdict is a household's verification as of a day.
type Verdict struct {
	Household string `json:"household"`
	Village   string `json:"village"`
	// VillageName is the village's name, for the caller to set from its
	// division register.
	VillageName string `json:"village_name"`
	// HeadName is the head of the household's name, as the household
	// role names the field.
	HeadName string  `json:"head_name"`
	Overall  Overall `json:"overall"`
	// By names the guarantees not met, in the verification's order, when
	// Overall is Blocked.
	By         []string           `json:"by,omitempty"`
	Guarantees []GuaranteeOutcome `json:"guarantees"`
	// Standards are every standard and edition the verdict applied.
	Standards []schema.AppliedStandard `json:"standards,omitempty"`
	// AsOf is the day judged for (YYYY-MM-DD).
	AsOf string `json:"as_of"`
}

// Guarantee returns the outcome of the named guarantee, or nil.
func (v *Verdict) Guarantee(name string) *GuaranteeOutcome {
	for i := range v.Guarantees {
		if v.Guarantees[i].Guarantee == name {
			return &v.Guarantees[i]
		}
	}
	return nil
}

// Verifier judges households by one version's verification. It is
// immutable and safe for concurrent use.
type Verifier struct {
	sch       *schema.Schema
	decl      *schema.Verification
	household *schema.Form
}

// ErrNoVerification is returned by Load and New for a version without a
// verification.json.
var ErrNoVerification = errors.New("verify: the form set's version declares no verification (verification.json)")

// Load returns the verifier of the catalog's latest version, or
// ErrNoVerification.
func Load(c *schema.Catalog) (*Verifier, error) { return New(c.Latest()) }

// New returns the verifier of a version, or ErrNoVerification. The
// catalog checked the declaration against the version's forms when it
// loaded.
func New(sch *schema.Schema) (*Verifier, error) {
	decl := sch.Verification()
	if decl == nil {
		return nil, ErrNoVerification
	}
	return &Verifier{sch: sch, decl: decl, household: sch.Playing(schema.RoleHousehold)}, nil
}

// Schema is the version the verifier judges by.
func (v *Verifier) Schema() *schema.Schema { return v.sch }

// Guarantees are the declared guarantees, in the file's order (their
// names and labels: the report's columns).
func (v *Verifier) Guarantees() []schema.Guarantee { return v.decl.Guarantees }

// Evaluate judges the household, with its fields and children
// (survey.HouseholdInspections as the stream gives it with Children), as
// of the day asOf: standards resolved for that day and the household's
// village, ages of evidence counted to it.
func (v *Verifier) Evaluate(h *survey.HouseholdInspections, asOf time.Time) Verdict {
	day := asOf.UTC().Truncate(24 * time.Hour)
	e := evaluation{v: v, h: h, asOf: day, byID: map[string]map[string]json.RawMessage{h.ID: h.Fields},
		byForm: map[string][]*survey.Record{}}
	for i := range h.Children {
		r := &h.Children[i]
		e.byID[r.ID] = r.Fields
		e.byForm[r.Entity] = append(e.byForm[r.Entity], r)
	}
	for _, rs := range e.byForm {
		sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	}
	out := Verdict{Household: h.ID, Village: h.Village, HeadName: h.HeadName, AsOf: day.Format(time.DateOnly)}
	incomplete := false
	var all []schema.AppliedStandard
	for _, g := range v.decl.Guarantees {
		gout := GuaranteeOutcome{Guarantee: g.Name, Outcome: Met}
		for ci := range g.Criteria {
			co := e.criterion(&g.Criteria[ci])
			if co.Outcome.rank() > gout.Outcome.rank() {
				gout.Outcome = co.Outcome
			}
			gout.Standards = union(gout.Standards, co.Standards)
			gout.Criteria = append(gout.Criteria, co)
		}
		all = union(all, gout.Standards)
		switch gout.Outcome {
		case NotMet:
			out.By = append(out.By, g.Name)
		case Stale, NoEvidence:
			incomplete = true
		}
		out.Guarantees = append(out.Guarantees, gout)
	}
	out.Standards = all
	switch {
	case len(out.By) > 0:
		out.Overall = Blocked
	case incomplete:
		out.Overall = Incomplete
	default:
		out.Overall = Verified
	}
	return out
}

// evaluation is one household's judgement in progress.
type evaluation struct {
	v      *Verifier
	h      *survey.HouseholdInspections
	asOf   time.Time
	byID   map[string]map[string]json.RawMessage // every record of the household, by id
	byForm map[string][]*survey.Record           // its children by entity, by id
}

// criterion judges one criterion.
func (e *evaluation) criterion(c *schema.Criterion) CriterionOutcome {
	out := CriterionOutcome{Criterion: c.Name, Outcome: Met}
	form := e.v.sch.Form(c.Form)
	if form == e.v.household {
		e.records(&out, form, c.RuleNames(), "", []record{{id: e.h.ID, fields: e.h.Fields}})
		return out
	}
	recs := e.byForm[c.Form]
	if len(recs) == 0 {
		// No record of the form at all: no member recorded, no visit.
		out.Outcome = NoEvidence
		return out
	}
	if c.Each {
		list := make([]record, len(recs))
		for i, r := range recs {
			list[i] = record{id: r.ID, fields: r.Fields}
		}
		e.records(&out, form, c.RuleNames(), c.Where, list)
		return out
	}
	latest := e.latest(form, recs)
	e.records(&out, form, c.RuleNames(), "", []record{{id: latest.ID, fields: latest.Fields}})
	if out.Outcome == NotMet || c.MaxAgeMonths == nil {
		// The latest evidence fails, however old: the household is
		// blocked by it until a new visit says otherwise.
		return out
	}
	st, ok := e.v.sch.Standards.Resolve(c.MaxAgeMonths.Standard, e.h.Village, e.asOf)
	if !ok {
		return out
	}
	out.Standards = union(out.Standards, []schema.AppliedStandard{st})
	dateField := form.RoleField("date")
	date := text(latest.Fields[dateField])
	d, err := time.Parse(time.DateOnly, date)
	switch {
	case err != nil:
		out = CriterionOutcome{Criterion: c.Name, Outcome: NoEvidence, Record: latest.ID, Field: dateField, Standards: out.Standards}
	case d.Before(e.asOf.AddDate(0, -int(st.Value), 0)):
		out = CriterionOutcome{Criterion: c.Name, Outcome: Stale, Record: latest.ID, Date: date, Standards: out.Standards}
	}
	return out
}

// record is one record a criterion judges.
type record struct {
	id     string
	fields map[string]json.RawMessage
}

// records judges each record by where (when given: a record it does not
// meet is not judged, one it cannot judge is no evidence) and then by
// every rule, and leaves in out the worst outcome, with the first record
// (by id) that has it; the standards are those of every judgement.
func (e *evaluation) records(out *CriterionOutcome, form *schema.Form, rules []string, where string, recs []record) {
	worse := func(o CriterionOutcome) {
		if o.Outcome.rank() > out.Outcome.rank() {
			o.Criterion, o.Standards = out.Criterion, out.Standards
			*out = o
		}
	}
	judge := func(rule string, r record) schema.Judgement {
		j, err := form.Judge(rule, e.facts(form, r))
		if err != nil {
			// The catalog checked every rule the verification names.
			panic(err)
		}
		out.Standards = union(out.Standards, j.Standards)
		return j
	}
	for _, r := range recs {
		if where != "" {
			switch j := judge(where, r); j.Verdict {
			case schema.NotMet:
				continue
			case schema.NotEvaluable:
				worse(e.finding(NoEvidence, form, j, r))
				continue
			}
		}
		for _, rule := range rules {
			switch j := judge(rule, r); j.Verdict {
			case schema.NotMet:
				worse(e.finding(NotMet, form, j, r))
			case schema.NotEvaluable:
				worse(e.finding(NoEvidence, form, j, r))
			}
		}
	}
}

// finding names the record, rule, field and value a judgement decided by.
func (e *evaluation) finding(o Outcome, form *schema.Form, j schema.Judgement, r record) CriterionOutcome {
	field := form.DecidingField(j.Rule, j.Decided)
	out := CriterionOutcome{Outcome: o, Rule: j.Rule, Record: r.id, Field: field}
	if fd := form.Field(field); o == NotMet && fd != nil && fd.Type != schema.TypeText {
		if v, ok := r.fields[field]; ok && string(v) != "null" {
			out.Value = v
		}
	}
	return out
}

// facts are a record's facts for its form's rules: its fields, the records
// its reference fields point to (among the household's), the household's
// village as the region, the day judged for.
func (e *evaluation) facts(form *schema.Form, r record) schema.Facts {
	f := schema.Facts{Fields: r.fields, Region: e.h.Village, AsOf: e.asOf, Now: e.asOf}
	for _, ref := range form.RuleReferences() {
		if id := text(r.fields[ref]); id != "" && e.byID[id] != nil {
			if f.Related == nil {
				f.Related = map[string]map[string]json.RawMessage{}
			}
			f.Related[ref] = e.byID[id]
		}
	}
	return f
}

// latest returns the household's latest record of a form: by the form's
// role date (never later than the day after the server accepted it, as the
// reports rank inspections), where a record another one names by the
// role's previous field (a re-inspection) ranks after every one none
// names; ties by the later accepted change, then the greater id.
func (e *evaluation) latest(form *schema.Form, recs []*survey.Record) *survey.Record {
	dateField, prevField := form.RoleField("date"), form.RoleField("previous")
	superseded := map[string]bool{}
	if prevField != "" {
		for _, r := range recs {
			if p := text(r.Fields[prevField]); p != "" && p != r.ID {
				superseded[p] = true
			}
		}
	}
	rankDate := func(r *survey.Record) string {
		d := text(r.Fields[dateField])
		if !r.UpdatedAt.IsZero() {
			if limit := r.UpdatedAt.UTC().AddDate(0, 0, 1).Format(time.DateOnly); d > limit {
				return limit
			}
		}
		return d
	}
	later := func(a, b *survey.Record) bool {
		if superseded[a.ID] != superseded[b.ID] {
			return !superseded[a.ID]
		}
		if da, db := rankDate(a), rankDate(b); da != db {
			return da > db
		}
		if !a.UpdatedAt.Equal(b.UpdatedAt) {
			return a.UpdatedAt.After(b.UpdatedAt)
		}
		if a.Seq != b.Seq {
			return a.Seq > b.Seq
		}
		return a.ID > b.ID
	}
	cur := recs[0]
	for _, r := range recs[1:] {
		if later(r, cur) {
			cur = r
		}
	}
	return cur
}

// text is a JSON string's value, or "".
func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// union adds the standards of more that acc lacks (by name, edition and
// basis), keeping acc's order.
func union(acc, more []schema.AppliedStandard) []schema.AppliedStandard {
	for _, s := range more {
		if !slices.Contains(acc, s) {
			acc = append(acc, s)
		}
	}
	return acc
}
