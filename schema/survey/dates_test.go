package survey

import (
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// A grade-A appraisal dated 2099-12-31 (stored before the forms bounded
// dates) ranks as of the day after it reached the server, so a real
// grade-D visit of the same house made later is the current appraisal:
// the household is due for re-inspection as a dangerous house.
func TestFutureDatedInspectionDoesNotHideALaterOne(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	h := &HouseholdInspections{ID: "h", Village: "500240107201", Status: "lifted_out", Inspections: []InspectionFacts{
		{ID: "a", Entity: "housing_inspection", Kind: KindHousing, InspectedOn: "2099-12-31", Grade: "A", UpdatedAt: t0, Seq: 1},
		{ID: "d", Entity: "housing_inspection", Kind: KindHousing, InspectedOn: "2026-11-25", Grade: "D", UpdatedAt: t0.AddDate(0, 0, 5), Seq: 2},
	}}
	if cur := h.CurrentHousing(); cur == nil || cur.ID != "d" {
		t.Fatalf("current appraisal %+v, want the grade-D visit of 2026-11-25", cur)
	}
	due := DueForReinspection(h, ReinspectionQuery{Now: t0.AddDate(0, 0, 6), Forms: FormsOf(schema.V1())})
	if due == nil || due.Current.ID != "d" || due.Reasons[0].Code != ReasonDangerousHouse {
		t.Fatalf("re-inspection list entry %+v, want the household due for its grade-D house", due)
	}
	// Within the day allowed ahead, the stated date still ranks: a visit
	// dated the day after its upload beats one dated the upload day.
	h.Inspections[0].InspectedOn = "2026-11-26"
	if cur := h.CurrentHousing(); cur.ID != "d" {
		t.Fatalf("current %s, want d (2026-11-25 uploaded 11-25) over a dated 11-26 uploaded 11-20", cur.ID)
	}
	h.Inspections[0].InspectedOn = "2026-11-21"
	h.Inspections[1].InspectedOn = "2026-11-20"
	if cur := h.CurrentHousing(); cur.ID != "a" {
		t.Fatalf("current %s, want a (dated 11-21, the day after its upload) over d (11-20)", cur.ID)
	}
}

// age_days counts calendar days however old the appraisal: from year 1 it
// does not saturate at the 292 years a time.Duration holds.
func TestAgeDaysDoesNotSaturate(t *testing.T) {
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for day, want := range map[string]int{
		"2025-11-20": 365,
		"1726-11-20": 109573, // 300 years: 73 leap days (1800 and 1900 are not)
		"0001-01-01": 739939,
	} {
		h := &HouseholdInspections{ID: "h", Inspections: []InspectionFacts{
			{ID: "a", Entity: "housing_inspection", Kind: KindHousing, InspectedOn: day, Grade: "A", UpdatedAt: now, Seq: 1}}}
		due := DueForReinspection(h, ReinspectionQuery{Now: now, After: 24 * time.Hour, Forms: FormsOf(schema.V1())})
		if due == nil || due.Reasons[0].Code != ReasonAssessmentOutdated || due.Reasons[0].AgeDays != want {
			t.Errorf("appraisal of %s: %+v, want assessment_outdated with age_days %d", day, due, want)
		}
	}
}
