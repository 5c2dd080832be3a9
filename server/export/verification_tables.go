package export

import (
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/verify"
)

// The tables of the verification report.
const (
	VerificationHouseholds = iota // one row per household
	VerificationAreas             // one row per village, township, county, and the totals
)

// VerificationTables are the tables of the verification report: the
// households, each with its verdict, the guarantees not met and each
// guarantee's outcome (headed by the guarantee's label), and the details
// of every criterion not met; the areas with their counts.
type VerificationTables struct {
	// Tables are the two tables, households and areas.
	Tables     []Table
	l          Labels
	names      schema.Divisions
	guarantees []schema.Guarantee
	// statuses are the monitoring's statuses (none without a
	// monitoring): the areas' follow-up columns.
	statuses []schema.MonitoringStatus
}

// NewVerificationTables designs the tables in l's language for the
// verifier's guarantees, naming villages from names; with a monitoring
// (the labels' version's monitoring.json) the areas have the follow-up
// columns too: monitored, one per monitoring status (by its label),
// listed and due.
func NewVerificationTables(l Labels, names schema.Divisions, v *verify.Verifier) *VerificationTables {
	f := l.Forms()
	h := f.HouseholdEntity()
	t := &VerificationTables{l: l, names: names, guarantees: v.Guarantees()}
	households := []Column{l.Own("household_id", schema.TypeReference), l.FormField(h, f.Village, schema.TypeDivisionCode),
		l.Own("village_name", schema.TypeText), l.FormField(h, f.HeadName, schema.TypeText),
		l.Own("overall", schema.TypeText), l.Own("blocked_by", schema.TypeText)}
	areas := []Column{l.Own("level", schema.TypeText), l.Own("code", schema.TypeDivisionCode), l.Own("name", schema.TypeText),
		l.Own("households", schema.TypeInteger), l.Own("verified", schema.TypeInteger), l.Own("blocked", schema.TypeInteger)}
	for _, g := range t.guarantees {
		households = append(households, Column{Header: t.guaranteeLabel(g.Name), Text: &schema.Field{Name: g.Name, Type: schema.TypeText}})
		areas = append(areas, l.PerValue("blocked_by_guarantee", g.Name, t.guaranteeLabel(g.Name)))
	}
	households = append(households, l.Own("details", schema.TypeText), l.Own("standards", schema.TypeText), l.Own("as_of", schema.TypeText))
	areas = append(areas, l.Own("incomplete", schema.TypeInteger))
	if m := l.schema.Monitoring(); m != nil {
		t.statuses = m.Statuses
		areas = append(areas, l.Own("monitored", schema.TypeInteger))
		for _, st := range t.statuses {
			label := st.Labels[l.Lang()]
			if label == "" {
				label = st.Name
			}
			areas = append(areas, l.PerValue("monitoring_status_households", st.Name, label))
		}
		areas = append(areas, l.Own("followups_listed", schema.TypeInteger), l.Own("followups_due", schema.TypeInteger))
	}
	t.Tables = []Table{
		VerificationHouseholds: {Key: "verification", Cols: households},
		VerificationAreas:      {Key: "verification_areas", Cols: areas},
	}
	return t
}

// guaranteeLabel is a guarantee's label in the language (its name in
// codes).
func (t *VerificationTables) guaranteeLabel(name string) string {
	if t.l.Codes() {
		return name
	}
	for _, g := range t.guarantees {
		if g.Name == name && g.Labels[t.l.Lang()] != "" {
			return g.Labels[t.l.Lang()]
		}
	}
	return name
}

// Household is a household's row: the verdict and outcomes labelled; the
// details one "guarantee/criterion: outcome rule record field=value date"
// per criterion not met, joined by ';'.
func (t *VerificationTables) Household(v *verify.Verdict) []any {
	by := make([]string, len(v.By))
	for i, g := range v.By {
		by[i] = t.guaranteeLabel(g)
	}
	row := []any{v.Household, v.Village, t.names.Name(v.Village), v.HeadName, t.l.Value("overall", string(v.Overall)), strings.Join(by, ";")}
	var details []string
	for _, g := range t.guarantees {
		out := v.Guarantee(g.Name)
		if out == nil {
			row = append(row, "")
			continue
		}
		row = append(row, t.l.Value("outcome", string(out.Outcome)))
		for _, c := range out.Criteria {
			if c.Outcome == verify.Met {
				continue
			}
			d := []string{g.Name + "/" + c.Criterion + ":", t.l.Value("outcome", string(c.Outcome))}
			for _, part := range []string{c.Rule, c.Record} {
				if part != "" {
					d = append(d, part)
				}
			}
			if c.Field != "" {
				d = append(d, c.Field+"="+string(c.Value))
			}
			if c.Date != "" {
				d = append(d, c.Date)
			}
			details = append(details, strings.Join(d, " "))
		}
	}
	return append(row, strings.Join(details, ";"), t.l.StandardsText(v.Standards), v.AsOf)
}

// Area is an area's row: its level labelled, its name from the register.
func (t *VerificationTables) Area(a *verify.Area) []any {
	row := []any{t.l.Value("level", a.Level), a.Code, t.names.Name(a.Code), a.Households, a.Verified, a.Blocked}
	for _, g := range t.guarantees {
		row = append(row, a.BlockedBy[g.Name])
	}
	row = append(row, a.Incomplete)
	if len(t.statuses) == 0 {
		return row
	}
	f := a.Followups
	if f == nil {
		f = &verify.FollowupCounts{}
	}
	row = append(row, f.Monitored)
	for _, st := range t.statuses {
		row = append(row, f.ByStatus[st.Name])
	}
	return append(row, f.Listed, f.Due)
}
