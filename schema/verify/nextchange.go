package verify

import (
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
)

// TimeDependence is how a set of rules depends on the day they are judged
// for, read from the rules themselves: Daily when one compares a date
// with today (today_plus_days, a date range counted in days from today),
// YearTurn when one counts an age by calendar year (age_from), and the
// standards they compare with, whose editions take effect on their days.
type TimeDependence struct {
	Daily, YearTurn bool
	Standards       []string
}

// AddRules adds the dependence of the named rules of form.
func (d *TimeDependence) AddRules(form *schema.Form, rules ...string) {
	if form == nil {
		return
	}
	for _, name := range rules {
		r := form.Rule(name)
		if r == nil {
			continue
		}
		if dr := r.DateRange; dr != nil && (dr.MaxDaysAgo != nil || dr.MaxDaysAhead != nil) {
			d.Daily = true
		}
		for _, c := range r.AnyOf {
			d.addCondition(&c)
		}
		for _, c := range []*schema.Condition{r.When, r.Unless, r.Check} {
			d.addCondition(c)
		}
		for _, st := range form.RuleStandards(name) {
			d.AddStandard(st)
		}
	}
}

// AddStandard adds a standard the judgement resolves.
func (d *TimeDependence) AddStandard(name string) {
	if name != "" && !slices.Contains(d.Standards, name) {
		d.Standards = append(d.Standards, name)
	}
}

func (d *TimeDependence) addCondition(c *schema.Condition) {
	if c == nil {
		return
	}
	if c.TodayPlusDays != nil {
		d.Daily = true
	}
	if c.AgeFrom != "" {
		d.YearTurn = true
	}
	for i := range c.AllOf {
		d.addCondition(&c.AllOf[i])
	}
	for i := range c.AnyOf {
		d.addCondition(&c.AnyOf[i])
	}
	d.addCondition(c.Not)
}

// Next returns the first day after asOf on which rules of this dependence
// can judge differently with no record changed, by the standards of
// sch: tomorrow when Daily, else the earliest of the next year's first day
// (YearTurn) and the next edition of a standard to take effect; the zero
// time when none will.
func (d *TimeDependence) Next(sch *schema.Schema, asOf time.Time) time.Time {
	day := asOf.UTC().Truncate(24 * time.Hour)
	if d.Daily {
		return day.AddDate(0, 0, 1)
	}
	var next time.Time
	earlier := func(t time.Time) {
		if t.After(day) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if d.YearTurn {
		earlier(time.Date(day.Year()+1, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	for _, name := range d.Standards {
		st := sch.Standards.Standard(name)
		if st == nil {
			continue
		}
		for _, ed := range st.Editions {
			if t, err := time.Parse(time.DateOnly, ed.Effective); err == nil {
				earlier(t)
			}
		}
	}
	return next
}

// TimeDependence is the dependence of the verification on the day judged
// for: the rules and the where of every criterion, and the standards of
// the evidence ages. It does not include the ages themselves, which are
// the household's (EvidenceExpiry).
func (v *Verifier) TimeDependence() TimeDependence {
	var d TimeDependence
	for _, g := range v.decl.Guarantees {
		for ci := range g.Criteria {
			c := &g.Criteria[ci]
			form := v.sch.Form(c.Form)
			d.AddRules(form, c.RuleNames()...)
			if c.Where != "" {
				d.AddRules(form, c.Where)
			}
			if c.MaxAgeMonths != nil {
				d.AddStandard(c.MaxAgeMonths.Standard)
			}
		}
	}
	return d
}

// EvidenceExpiry returns the first day after asOf on which the age of a
// latest record some criterion bounds (max_age_months) turns its outcome
// (fresh to stale, or back where the calendar's month arithmetic makes
// it), with the standard's value in effect on asOf (a new edition is
// TimeDependence's); the zero time when none will. It reads the
// household's records as Evaluate does.
func (v *Verifier) EvidenceExpiry(h *survey.HouseholdInspections, asOf time.Time) time.Time {
	day := asOf.UTC().Truncate(24 * time.Hour)
	e := evaluation{v: v, h: h, asOf: day, byForm: map[string][]*survey.Record{}}
	for i := range h.Children {
		r := &h.Children[i]
		e.byForm[r.Entity] = append(e.byForm[r.Entity], r)
	}
	var next time.Time
	for _, g := range v.decl.Guarantees {
		for ci := range g.Criteria {
			c := &g.Criteria[ci]
			recs := e.byForm[c.Form]
			if c.Each || c.MaxAgeMonths == nil || len(recs) == 0 || v.sch.Form(c.Form) == v.household {
				continue
			}
			form := v.sch.Form(c.Form)
			st, ok := v.sch.Standards.Resolve(c.MaxAgeMonths.Standard, h.Village, day)
			if !ok {
				continue
			}
			d, err := time.Parse(time.DateOnly, text(e.latest(form, recs).Fields[form.RoleField("date")]))
			if err != nil {
				continue
			}
			months := int(st.Value)
			stale := func(on time.Time) bool { return d.Before(on.AddDate(0, -months, 0)) }
			// The age crosses the bound around d plus the months; the
			// calendar's normalisation (31 March less a month is 3 March)
			// can flip it for a few days there, so the days near it are
			// each looked at.
			around := d.AddDate(0, months, 0)
			from, to := around.AddDate(0, 0, -7), around.AddDate(0, 0, 7)
			if !from.After(day) {
				from = day.AddDate(0, 0, 1)
			}
			now := stale(day)
			for on := from; !on.After(to); on = on.AddDate(0, 0, 1) {
				if stale(on) != now {
					if next.IsZero() || on.Before(next) {
						next = on
					}
					break
				}
			}
		}
	}
	return next
}
