package survey

import (
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
)

// TestV1FormsDeclareTheirRoles: the v1 forms play the three roles the
// analytics read, with the fields and values of the national criteria, and
// no field a report counts by holds the value the reports count missing
// values under.
func TestV1FormsDeclareTheirRoles(t *testing.T) {
	f := FormsOf(schema.V1())
	if f.Household == nil || f.Housing == nil || f.Water == nil {
		t.Fatalf("roles: household %v, housing %v, water %v", f.Household, f.Housing, f.Water)
	}
	got := []string{f.Household.Entity, f.Housing.Entity, f.Water.Entity, f.Village, f.HeadName, f.RegistrationNo, f.Status,
		f.HousingDate, f.Grade, f.Renovation, f.Previous, f.WaterDate}
	want := []string{"household", "housing_inspection", "water_inspection", "village", "head_name", "registration_no", "status",
		"inspected_on", "grade", "renovation", "previous_id", "inspected_on"}
	if !slices.Equal(got, want) {
		t.Errorf("v1 roles %v, want %v", got, want)
	}
	for _, g := range []string{"C", "D"} {
		if !f.Dangerous(g) {
			t.Errorf("grade %s not dangerous", g)
		}
	}
	if f.Dangerous("A") || f.Dangerous("B") || !f.Renovated("completed") || !f.Verified("verified") || f.Renovated("planned") {
		t.Errorf("housing values: dangerous A/B, renovated, verified wrong")
	}
	if w, r := f.Watched("lifted_out"); !w || r {
		t.Errorf("lifted_out watched %v at risk %v", w, r)
	}
	if w, r := f.Watched("relapse_risk"); !w || !r {
		t.Errorf("relapse_risk watched %v at risk %v", w, r)
	}
	if w, _ := f.Watched("registered"); w {
		t.Errorf("a registered household is on the relapse watch")
	}
	for _, c := range []struct {
		form  *schema.Form
		field string
	}{{f.Household, f.Status}, {f.Housing, f.Grade}, {f.Housing, f.Renovation}} {
		if slices.Contains(c.form.Field(c.field).Values, Unset) {
			t.Errorf("%s.%s: %q is a value of the form, but the reports count missing values under it", c.form.Entity, c.field, Unset)
		}
	}
	if f.Water.Standards == nil || len(f.Water.Standards.National) == 0 {
		t.Errorf("the water form has no national standards: the water verdict would judge nothing")
	}
}
