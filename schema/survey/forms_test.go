package survey

import (
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
)

// TestFormNamesAreTheV1Forms: every form, field and value the analytics
// read by name is one the v1 forms declare, with the type the analytics
// read it as, so that a renamed field fails here instead of silently
// counting nothing.
func TestFormNamesAreTheV1Forms(t *testing.T) {
	sch := schema.V1()
	for _, c := range []struct {
		entity, field string
		typ           schema.FieldType
		values        []string
	}{
		{HouseholdEntity, VillageField, schema.TypeDivisionCode, nil},
		{HouseholdEntity, HeadNameField, schema.TypeText, nil},
		{HouseholdEntity, RegistrationNoField, schema.TypeText, nil},
		{HouseholdEntity, StatusField, schema.TypeEnum, []string{PovertyLiftedOut, PovertyRelapseRisk}},
		{HousingEntity, InspectedOnField, schema.TypeDate, nil},
		{HousingEntity, GradeField, schema.TypeEnum, []string{GradeLocallyDangerous, GradeWhollyDangerous}},
		{HousingEntity, RenovationField, schema.TypeEnum, []string{RenovationCompleted, RenovationVerified}},
		{HousingEntity, PreviousIDField, schema.TypeReference, nil},
		{WaterEntity, InspectedOnField, schema.TypeDate, nil},
	} {
		form := sch.Form(c.entity)
		if form == nil {
			t.Errorf("form %q: not a v1 form", c.entity)
			continue
		}
		fd := form.Field(c.field)
		if fd == nil {
			t.Errorf("%s.%s: not a field of the v1 form", c.entity, c.field)
			continue
		}
		if fd.Type != c.typ {
			t.Errorf("%s.%s: type %s, the analytics read it as %s", c.entity, c.field, fd.Type, c.typ)
		}
		for _, v := range c.values {
			if !slices.Contains(fd.Values, v) {
				t.Errorf("%s.%s: %q is not one of its values %v", c.entity, c.field, v, fd.Values)
			}
		}
		if slices.Contains(fd.Values, Unset) {
			t.Errorf("%s.%s: %q is a value of the form, but the reports count missing values under it", c.entity, c.field, Unset)
		}
	}
	if w := sch.Form(WaterEntity); w == nil || w.Standards == nil || len(w.Standards.National) == 0 {
		t.Errorf("form %q has no national standards: the water verdict would judge nothing", WaterEntity)
	}
}
