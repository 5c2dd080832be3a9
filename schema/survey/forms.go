package survey

import (
	"slices"

	"github.com/fieldsync/fieldsync/schema"
)

// Forms are the forms the analytics read and, in each, the fields and
// values that mean what to them — as the schema's forms declare by their
// roles (schema.Role), never named in code: a form set that renames the
// housing grade field, or lets a new form play the water inspection, feeds
// the same reports.
type Forms struct {
	// Household, Housing and Water are the forms playing the household,
	// the housing appraisal and the water inspection; nil when no form of
	// the schema plays the role (the reports then count none of it).
	Household, Housing, Water *schema.Form

	// The household's fields: village, head's name, registration number,
	// poverty status.
	Village, HeadName, RegistrationNo, Status string
	// The housing appraisal's fields: its date, grade, renovation state,
	// and the appraisal a re-inspection checks.
	HousingDate, Grade, Renovation, Previous string
	// WaterDate is the water inspection's date field.
	WaterDate string

	dangerous, renovated, verified, liftedOut, relapseRisk []string
}

// The kinds of inspection the reports tell apart (InspectionFacts.Kind):
// the roles of the forms they come from.
const (
	KindHousing = schema.RoleHousingAppraisal
	KindWater   = schema.RoleWaterInspection
)

// FormsOf reads the roles of sch's forms.
func FormsOf(sch *schema.Schema) *Forms {
	f := &Forms{Household: sch.Playing(schema.RoleHousehold), Housing: sch.Playing(schema.RoleHousingAppraisal),
		Water: sch.Playing(schema.RoleWaterInspection)}
	f.Village, f.HeadName = f.Household.RoleField("village"), f.Household.RoleField("head_name")
	f.RegistrationNo, f.Status = f.Household.RoleField("registration_no"), f.Household.RoleField("status")
	f.HousingDate, f.Grade = f.Housing.RoleField("date"), f.Housing.RoleField("grade")
	f.Renovation, f.Previous = f.Housing.RoleField("renovation"), f.Housing.RoleField("previous")
	f.WaterDate = f.Water.RoleField("date")
	f.dangerous, f.renovated, f.verified = f.Housing.RoleValues("dangerous"), f.Housing.RoleValues("renovated"), f.Housing.RoleValues("verified")
	f.liftedOut, f.relapseRisk = f.Household.RoleValues("lifted_out"), f.Household.RoleValues("relapse_risk")
	return f
}

// Entity is the entity of the form playing kind (KindHousing, KindWater),
// or "".
func (f *Forms) Entity(kind string) string {
	var form *schema.Form
	switch kind {
	case KindHousing:
		form = f.Housing
	case KindWater:
		form = f.Water
	}
	if form == nil {
		return ""
	}
	return form.Entity
}

// Dangerous reports whether an appraisal grade needs renovation (C, locally
// dangerous, and D, wholly dangerous, in the national criteria).
func (f *Forms) Dangerous(grade string) bool { return slices.Contains(f.dangerous, grade) }

// Renovated reports whether a renovation state says the work is done and
// waits for its re-inspection.
func (f *Forms) Renovated(state string) bool { return slices.Contains(f.renovated, state) }

// Verified reports whether a renovation state says the work was checked.
func (f *Forms) Verified(state string) bool { return slices.Contains(f.verified, state) }

// Watched reports whether a poverty status puts a household on the relapse
// watch (lifted out, or at risk of relapse), and whether it is the risk
// itself.
func (f *Forms) Watched(status string) (watched, atRisk bool) {
	atRisk = slices.Contains(f.relapseRisk, status)
	return atRisk || slices.Contains(f.liftedOut, status), atRisk
}

// HouseholdEntity is the entity of the form playing the household, or "".
func (f *Forms) HouseholdEntity() string {
	if f.Household == nil {
		return ""
	}
	return f.Household.Entity
}
