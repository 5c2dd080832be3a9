package survey

import "time"

// Reasons a household is due for re-inspection.
const (
	// ReasonDangerousHouse: the current appraisal is C or D and the
	// renovation is not finished (none, planned, in progress or unset).
	ReasonDangerousHouse = "dangerous_house"
	// ReasonRenovationNotReinspected: the current appraisal says the
	// renovation is completed (or, for a C or D house, verified) and no
	// re-inspection names it in previous_id.
	ReasonRenovationNotReinspected = "renovation_not_reinspected"
	// ReasonGradeConflict: the grade of the current appraisal has an open
	// or auto-resolved conflict, two teams disagreeing on it.
	ReasonGradeConflict = "grade_conflict"
	// ReasonAssessmentOutdated: the current appraisal is older than the
	// configured interval.
	ReasonAssessmentOutdated = "assessment_outdated"
	// ReasonDuplicateVisit: two inspections of one kind on the same day
	// from different devices.
	ReasonDuplicateVisit = "duplicate_visit"
)

// ReinspectionQuery is what decides whether an assessment is outdated.
type ReinspectionQuery struct {
	// Now is the time of the report (the server's clock).
	Now time.Time
	// After is how old an appraisal may get: one inspected more than After
	// before Now's date (UTC) is due.
	After time.Duration
	// Forms are the roles of the forms the households were read by: which
	// grades are dangerous, which renovation states done or checked.
	Forms *Forms
}

// InspectionMark names an inspection and what it found.
type InspectionMark struct {
	ID          string `json:"id"`
	InspectedOn string `json:"inspected_on"`
	Grade       string `json:"grade,omitempty"`
	Renovation  string `json:"renovation,omitempty"`
}

// DueReason is one reason a household is due for re-inspection.
type DueReason struct {
	// Code is one of the Reason constants.
	Code string `json:"code"`
	// InspectionID is the appraisal the reason is about (every reason but
	// ReasonDuplicateVisit).
	InspectionID string `json:"inspection_id,omitempty"`
	// ConflictIDs are the unresolved grade conflicts (ReasonGradeConflict).
	ConflictIDs []string `json:"conflict_ids,omitempty"`
	// AgeDays is the appraisal's age in days (ReasonAssessmentOutdated).
	AgeDays int `json:"age_days,omitempty"`
	// Visit is the duplicate visit (ReasonDuplicateVisit).
	Visit *DuplicateVisit `json:"visit,omitempty"`
}

// DueHousehold is a household due for re-inspection, with its current
// appraisal, the re-inspection chain that led to it, and every reason.
type DueHousehold struct {
	HouseholdID    string `json:"household_id"`
	Village        string `json:"village"`
	VillageName    string `json:"village_name"`
	HeadName       string `json:"head_name"`
	RegistrationNo string `json:"registration_no,omitempty"`
	Status         string `json:"status,omitempty"`
	// Current is the appraisal the household's status comes from; nil when
	// it has none (it is due for a duplicate water visit only).
	Current *InspectionMark `json:"current"`
	// Chain lists the ids of the re-inspection chain ending at Current,
	// oldest first (the first appraisal, then each re-inspection).
	Chain   []string    `json:"chain"`
	Reasons []DueReason `json:"reasons"`
}

// ReinspectionSummary counts the due households of a re-inspection list.
// (The point of the change log a list reflects is the protocol's:
// syncproto.ReinspectionReport.)
type ReinspectionSummary struct {
	Households int
	// ByReason counts households by reason; a household with several
	// reasons counts under each.
	ByReason map[string]int
}

// NewReinspectionSummary returns an empty summary with every reason.
func NewReinspectionSummary() *ReinspectionSummary {
	s := &ReinspectionSummary{ByReason: map[string]int{}}
	for _, r := range []string{ReasonDangerousHouse, ReasonRenovationNotReinspected, ReasonGradeConflict,
		ReasonAssessmentOutdated, ReasonDuplicateVisit} {
		s.ByReason[r] = 0
	}
	return s
}

// Count adds a due household to the summary.
func (s *ReinspectionSummary) Count(d *DueHousehold) {
	s.Households++
	seen := map[string]bool{}
	for _, r := range d.Reasons {
		if !seen[r.Code] {
			seen[r.Code] = true
			s.ByReason[r.Code]++
		}
	}
}

// DueForReinspection decides whether a household is due for
// re-inspection and why, or returns nil. Its current appraisal
// (CurrentHousing) is due when it is C or D and the renovation is not
// finished; when it says the renovation is completed (or verified, for a C
// or D house) and no re-inspection names it; when its grade has an open or
// auto-resolved conflict; when it is older than q.After. Every duplicate
// visit of the household, housing or water, is a reason too. A household
// without any appraisal is not listed for a housing reason: it needs a
// first visit (the coverage report lists it).
func DueForReinspection(h *HouseholdInspections, q ReinspectionQuery) *DueHousehold {
	f := q.Forms
	if f == nil {
		f = &Forms{}
	}
	var reasons []DueReason
	cur, reinspected := h.currentHousing()
	if cur != nil {
		checked := reinspected[cur.ID]
		switch {
		case !checked && (f.Renovated(cur.Renovation) || (f.Verified(cur.Renovation) && f.Dangerous(cur.Grade))):
			reasons = append(reasons, DueReason{Code: ReasonRenovationNotReinspected, InspectionID: cur.ID})
		case f.Dangerous(cur.Grade) && !f.Renovated(cur.Renovation) && !f.Verified(cur.Renovation):
			reasons = append(reasons, DueReason{Code: ReasonDangerousHouse, InspectionID: cur.ID})
		}
		if len(cur.GradeConflicts) > 0 {
			reasons = append(reasons, DueReason{Code: ReasonGradeConflict, InspectionID: cur.ID,
				ConflictIDs: append([]string(nil), cur.GradeConflicts...)})
		}
		if day, err := time.Parse(time.DateOnly, cur.InspectedOn); err == nil && q.After > 0 {
			cutoff := q.Now.UTC().Add(-q.After).Format(time.DateOnly)
			if cur.InspectedOn < cutoff {
				// Whole days by calendar, from Unix seconds: a time.Duration
				// saturates at 292 years (year 1 gave 106,751).
				today := q.Now.UTC().Truncate(24 * time.Hour)
				reasons = append(reasons, DueReason{Code: ReasonAssessmentOutdated, InspectionID: cur.ID,
					AgeDays: int((today.Unix() - day.Unix()) / 86400)})
			}
		}
	}
	for _, d := range h.DuplicateVisits() {
		reasons = append(reasons, DueReason{Code: ReasonDuplicateVisit, Visit: &d})
	}
	if len(reasons) == 0 {
		return nil
	}
	due := &DueHousehold{HouseholdID: h.ID, Village: h.Village, HeadName: h.HeadName, RegistrationNo: h.RegistrationNo,
		Status: h.Status, Chain: []string{}, Reasons: reasons}
	if cur != nil {
		due.Current = &InspectionMark{ID: cur.ID, InspectedOn: cur.InspectedOn, Grade: cur.Grade, Renovation: cur.Renovation}
		due.Chain = h.Chain(cur.ID)
	}
	return due
}
