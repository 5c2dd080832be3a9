package survey

// The names the analytics read: forms (entities), their fields and the
// values they tell apart. They are the v1 forms' names (schema/forms/*.json,
// schema.V1), written here once rather than as literals across the code;
// once forms are data, they are to be read from the forms (a form declaring
// which of its fields is the grade, the renovation state, the status), not
// compiled in. TestFormNamesAreTheV1Forms checks them against schema.V1.
const (
	// HouseholdEntity is the household form.
	HouseholdEntity = "household"
	// HousingEntity is the housing-safety inspection form, a child of a
	// household.
	HousingEntity = "housing_inspection"
	// WaterEntity is the drinking-water inspection form, a child of a
	// household; its indicators are those of its standards.
	WaterEntity = "water_inspection"
)

// Fields of the household form the analytics read.
const (
	// VillageField is the household's 12-digit village code.
	VillageField = "village"
	// HeadNameField is the name of the head of the household.
	HeadNameField = "head_name"
	// RegistrationNoField is the household's registration number.
	RegistrationNoField = "registration_no"
	// StatusField is the household's poverty status.
	StatusField = "status"
)

// Fields of the inspection forms the analytics read.
const (
	// InspectedOnField is the date of an inspection, housing or water.
	InspectedOnField = "inspected_on"
	// GradeField is the housing appraisal grade, whose unresolved conflicts
	// make a house due for re-inspection.
	GradeField = "grade"
	// RenovationField is the renovation state of a housing inspection.
	RenovationField = "renovation"
	// PreviousIDField names the housing inspection a re-inspection checks.
	PreviousIDField = "previous_id"
)

// Appraisal grades that need renovation (housing_inspection.grade).
const (
	GradeLocallyDangerous = "C"
	GradeWhollyDangerous  = "D"
)

// Renovation states the reports tell apart (housing_inspection.renovation).
const (
	RenovationCompleted = "completed"
	RenovationVerified  = "verified"
)

// Poverty statuses the relapse watch follows (household.status).
const (
	PovertyLiftedOut   = "lifted_out"
	PovertyRelapseRisk = "relapse_risk"
)
