package export

import (
	"encoding/json"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// ReconciliationFindings is the table of the reconciliation report: one
// row a finding (a blind spot, a household on no registry, an ambiguous
// match, a disagreement), village by village.
const ReconciliationFindings = 0

// ReconciliationTables are the reconciliation report's table in one
// language: sources, departments, fields and values by their labels.
type ReconciliationTables struct {
	Tables []Table
	l      Labels
	names  schema.Divisions
	reg    *schema.Registries
}

// NewReconciliationTables designs the table in l's language, naming
// villages from names.
func NewReconciliationTables(l Labels, names schema.Divisions) *ReconciliationTables {
	t := &ReconciliationTables{l: l, names: names, reg: l.schema.Registries()}
	f := l.Forms()
	h := f.HouseholdEntity()
	cols := []Column{l.FormField(h, f.Village, schema.TypeDivisionCode), l.Own("village_name", schema.TypeText), l.Own("finding", schema.TypeText),
		l.Own("household_id", schema.TypeReference), l.FormField(h, f.HeadName, schema.TypeText), l.Own("person_id", schema.TypeReference),
		l.Own("registry_field", schema.TypeText),
		l.Own("source_a", schema.TypeText), l.Own("department_a", schema.TypeText), l.Own("key_a", schema.TypeText), l.Own("value_a", schema.TypeText), l.Own("date_a", schema.TypeText),
		l.Own("source_b", schema.TypeText), l.Own("department_b", schema.TypeText), l.Own("key_b", schema.TypeText), l.Own("value_b", schema.TypeText), l.Own("date_b", schema.TypeText),
		l.Own("candidates", schema.TypeText)}
	t.Tables = []Table{ReconciliationFindings: {Key: "reconciliation", Cols: cols}}
	return t
}

// Rows are a village's findings as rows of the table.
func (t *ReconciliationTables) Rows(v *syncproto.VillageReconciliation) [][]any {
	var out [][]any
	vname := t.names.Name(v.Village)
	row := func(kind, household, name, person, field string, a, b *syncproto.Statement, candidates []string) {
		r := []any{v.Village, vname, t.l.Value("finding", kind), household, name, person, t.fieldLabel(field)}
		for _, s := range []*syncproto.Statement{a, b} {
			if s == nil {
				r = append(r, "", "", "", "", "")
				continue
			}
			r = append(r, t.sourceLabel(s.Source), t.departmentLabel(s.Department), s.Key, t.value(field, s.Value), s.Date)
		}
		out = append(out, append(r, strings.Join(candidates, ";")))
	}
	for _, b := range v.BlindSpots {
		if b.Kind == syncproto.BlindNeverInspected {
			labels := make([]string, len(b.Sources))
			for i, s := range b.Sources {
				labels[i] = t.sourceLabel(s)
			}
			row(b.Kind, b.HouseholdID, b.Name, "", "", &syncproto.Statement{Source: strings.Join(b.Sources, ";")}, nil, nil)
			out[len(out)-1][7] = strings.Join(labels, ";")
			continue
		}
		row(b.Kind, "", b.Name, "", "", &syncproto.Statement{Source: b.Source, Key: b.Key}, nil, nil)
	}
	for _, u := range v.Unregistered {
		row("unregistered", u.HouseholdID, u.HeadName, "", "", nil, nil, nil)
	}
	for _, a := range v.Ambiguous {
		row("ambiguous", "", a.Name, "", a.By, &syncproto.Statement{Source: a.Source, Key: a.Key}, nil, a.Households)
	}
	for i := range v.Disagreements {
		d := &v.Disagreements[i]
		row(d.Kind, d.HouseholdID, d.HeadName, d.PersonID, d.Field, &d.A, &d.B, nil)
	}
	return out
}

func (t *ReconciliationTables) sourceLabel(name string) string {
	if t.l.Codes() {
		return name
	}
	if s := t.reg.Source(name); s != nil && s.Labels[t.l.Lang()] != "" {
		return s.Labels[t.l.Lang()]
	}
	return t.l.Value("source", name)
}

func (t *ReconciliationTables) departmentLabel(name string) string {
	if d := t.reg.Department(name); d != nil && !t.l.Codes() && d.Labels[t.l.Lang()] != "" {
		return d.Labels[t.l.Lang()]
	}
	return name
}

// fieldLabel is a field of the household or the person form by its label.
func (t *ReconciliationTables) fieldLabel(name string) string {
	if name == "" || t.l.Codes() {
		return name
	}
	for _, entity := range []string{t.l.Forms().HouseholdEntity(), schema.LevelPerson} {
		if fd := t.l.Field(entity, name); fd != nil {
			return fd.LabelIn(t.l.Lang())
		}
	}
	return name
}

// value is a statement's value as text: an enum's label from the form
// field it states when it has one.
func (t *ReconciliationTables) value(field string, v json.RawMessage) string {
	if len(v) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		var items []string
		if json.Unmarshal(v, &items) == nil {
			s = strings.Join(items, ";")
		} else {
			return string(v)
		}
	}
	if t.l.Codes() {
		return s
	}
	for _, entity := range []string{t.l.Forms().HouseholdEntity(), schema.LevelPerson} {
		if fd := t.l.Field(entity, field); fd != nil && len(fd.Values) > 0 {
			parts := strings.Split(s, ";")
			for i, p := range parts {
				parts[i] = fd.ValueLabelIn(p, t.l.Lang())
			}
			return strings.Join(parts, ";")
		}
	}
	return s
}
