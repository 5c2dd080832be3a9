package schema

import (
	"fmt"
	"maps"
	"slices"
)

// The roles a form can play for the reports. A form declares its role and
// which of its fields carry what the role needs ("role" in the form file),
// so that the analytics read the forms rather than naming entities and
// fields in code, and a renamed field or a new form feeds the reports by
// declaration.
const (
	// RoleHousehold is the registered household: its village, head,
	// registration number and poverty status.
	RoleHousehold = "household"
	// RoleHousingAppraisal is a house's safety appraisal, a child of the
	// household: its date, grade, renovation state and the appraisal a
	// re-inspection checks.
	RoleHousingAppraisal = "housing_appraisal"
	// RoleWaterInspection is a drinking-water inspection, a child of the
	// household: its date; its indicators are its role's criteria (the
	// form's named criterion rules), or in a v1-style form those of its
	// form-level standards.
	RoleWaterInspection = "water_inspection"
	// RolePerson is a member of the household (version 3's roster), a
	// child of the household: their name and birth year.
	RolePerson = "person"
	// RoleFollowupVisit is a follow-up visit to a monitored household
	// (version 3's followup_visit), a child of the household: its date,
	// and the monitoring status the team judges the household in.
	RoleFollowupVisit = "followup_visit"
)

// Role is the role a form plays: Plays names it, Fields maps each of the
// role's keys to the form's field that carries it, Values names which of a
// field's enum values mean what to the role (a grade that is dangerous, a
// renovation state that counts as renovated). Criteria names, for each of
// the role's indicators, the form's criterion rule that judges it (the
// four water indicators: quality, quantity, convenience, reliability).
type Role struct {
	Plays    string              `json:"plays"`
	Fields   map[string]string   `json:"fields"`
	Values   map[string][]string `json:"values,omitempty"`
	Criteria map[string]string   `json:"criteria,omitempty"`
}

// roleSpec is what a role needs of its form: a field of a type for each
// field key, and for each value key the field key whose enum values it
// draws from.
type roleSpec struct {
	fields map[string]FieldType
	values map[string]string
	// criteria are the indicators a role may judge by criterion rules:
	// all of them or none.
	criteria []string
}

var roleSpecs = map[string]roleSpec{
	RoleHousehold: {
		fields: map[string]FieldType{"village": TypeDivisionCode, "head_name": TypeText, "registration_no": TypeText, "status": TypeEnum},
		values: map[string]string{"lifted_out": "status", "relapse_risk": "status"},
	},
	RoleHousingAppraisal: {
		fields: map[string]FieldType{"date": TypeDate, "grade": TypeEnum, "renovation": TypeEnum, "previous": TypeReference},
		values: map[string]string{"dangerous": "grade", "renovated": "renovation", "verified": "renovation"},
	},
	RoleWaterInspection: {fields: map[string]FieldType{"date": TypeDate},
		criteria: []string{"convenience", "quality", "quantity", "reliability"}},
	RolePerson:        {fields: map[string]FieldType{"name": TypeText, "birth_year": TypeInteger}},
	RoleFollowupVisit: {fields: map[string]FieldType{"date": TypeDate, "next_status": TypeEnum}},
}

// check reports what is wrong with the form's role: an unknown role, a
// missing or unknown key, a field the form lacks or of another type, a
// value that is not one of the field's.
func (r *Role) check(f *Form) error {
	spec, ok := roleSpecs[r.Plays]
	if !ok {
		return fmt.Errorf("role: plays %q, not one of %v", r.Plays, roleNames())
	}
	for key := range r.Fields {
		if _, ok := spec.fields[key]; !ok {
			return fmt.Errorf("role: fields.%s is not a key of %s", key, r.Plays)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(spec.fields)) {
		name, ok := r.Fields[key]
		if !ok {
			return fmt.Errorf("role: fields.%s is required for %s", key, r.Plays)
		}
		fd := f.Field(name)
		if fd == nil {
			return fmt.Errorf("role: fields.%s names %q, not a field of the form", key, name)
		}
		if fd.Type != spec.fields[key] {
			return fmt.Errorf("role: fields.%s names %q of type %s, not %s", key, name, fd.Type, spec.fields[key])
		}
	}
	if len(r.Criteria) > 0 {
		for key := range r.Criteria {
			if !slices.Contains(spec.criteria, key) {
				return fmt.Errorf("role: criteria.%s is not an indicator of %s (one of %v)", key, r.Plays, spec.criteria)
			}
		}
		for _, key := range spec.criteria {
			name, ok := r.Criteria[key]
			if !ok {
				return fmt.Errorf("role: criteria.%s is required: a role judges all of %v or declares no criteria", key, spec.criteria)
			}
			if rule := f.Rule(name); rule == nil || rule.Kind() != KindCriterion {
				return fmt.Errorf("role: criteria.%s names %q, not a criterion rule (any_of) of the form", key, name)
			}
		}
	}
	for key, values := range r.Values {
		fieldKey, ok := spec.values[key]
		if !ok {
			return fmt.Errorf("role: values.%s is not a key of %s", key, r.Plays)
		}
		fd := f.Field(r.Fields[fieldKey])
		for i, v := range values {
			if !slices.Contains(fd.Values, v) {
				return fmt.Errorf("role: values.%s[%d] %q is not a value of %s", key, i, v, fd.Name)
			}
		}
	}
	return nil
}

func roleNames() []string { return slices.Sorted(maps.Keys(roleSpecs)) }

// RoleCriteria returns the indicators the form's role judges by criterion
// rules, sorted, or none.
func (f *Form) RoleCriteria() []string {
	if f == nil || f.Role == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(f.Role.Criteria))
}

// RoleCriterion returns the criterion rule judging the role's indicator,
// or "".
func (f *Form) RoleCriterion(indicator string) string {
	if f == nil || f.Role == nil {
		return ""
	}
	return f.Role.Criteria[indicator]
}

// Playing returns the form that plays role, or nil.
func (s *Schema) Playing(role string) *Form { return s.byRole[role] }

// RoleField is the form's field carrying the role's key, or "" when the
// form plays no role or the role has no such key.
func (f *Form) RoleField(key string) string {
	if f == nil || f.Role == nil {
		return ""
	}
	return f.Role.Fields[key]
}

// RoleValues are the form's enum values that mean key to its role (nil
// when none are declared).
func (f *Form) RoleValues(key string) []string {
	if f == nil || f.Role == nil {
		return nil
	}
	return f.Role.Values[key]
}
