package syncproto

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// ReportStore is the part of the store contract that serves supervisors'
// reports: coverage and re-inspection lists. Each report reads the
// households of the actor's scope in one read transaction, so that it
// reflects one point of the change log, and streams: a store hands each
// village (coverage) or each due household (re-inspection) to emit as soon
// as it is complete, so that memory does not grow with the region. A store
// may compute the figures in its query language or feed
// HouseholdInspections, in village order, to NewCoverageBuilder and
// DueForReinspection, which define them.
type ReportStore interface {
	// Coverage calls emit with the coverage of every village of the
	// actor's scope that has households, in ascending code order, and
	// returns the roll-ups per township and county and the totals. An error
	// from emit stops the report and is returned.
	Coverage(ctx context.Context, actor Actor, emit func(*VillageCoverage) error) (*CoverageSummary, error)
	// Reinspections calls emit with every household of the actor's scope
	// that is due for re-inspection (DueForReinspection), in village order,
	// and returns their counts by reason. An error from emit stops the list
	// and is returned.
	Reinspections(ctx context.Context, actor Actor, q ReinspectionQuery, emit func(*DueHousehold) error) (*ReinspectionSummary, error)
}

// The entities and fields of the v1 forms that the reports read.
const (
	HouseholdEntity = "household"
	HousingEntity   = "housing_inspection"
	WaterEntity     = "water_inspection"
	// GradeField is the housing appraisal grade, whose unresolved conflicts
	// make a house due for re-inspection.
	GradeField = "grade"
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

// Unset is the key under which reports count households or houses whose
// enum field (status, renovation) holds no value.
const Unset = "unset"

// IsDangerousGrade reports whether an appraisal grade needs renovation:
// C (locally dangerous) or D (wholly dangerous).
func IsDangerousGrade(grade string) bool { return grade == "C" || grade == "D" }

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

// Reasons a household is on the relapse watch.
const (
	// RelapseDangerousHouse: lifted out, and the current appraisal is C or D.
	RelapseDangerousHouse = "dangerous_house"
	// RelapseUnsafeWater: lifted out, and the latest water inspection is
	// not shown safe: it fails or does not record an indicator of the
	// standard.
	RelapseUnsafeWater = "unsafe_water"
	// RelapseRiskStatus: the household's status is relapse_risk.
	RelapseRiskStatus = "relapse_risk"
)

// InspectionFacts is what the reports need of one accepted (not deleted)
// inspection.
type InspectionFacts struct {
	ID     string
	Entity string
	// InspectedOn is the inspection's date, "YYYY-MM-DD".
	InspectedOn string
	// UpdatedAt is the server time of the inspection's last accepted
	// change, and Seq its position in the change log.
	UpdatedAt time.Time
	Seq       int64
	// Device is the tablet that created the inspection, the one whose team
	// made the visit (later edits may come from other devices).
	Device string

	// Grade, Renovation and PreviousID are the housing fields ("" when
	// unset or for a water inspection).
	Grade, Renovation, PreviousID string
	// GradeConflicts lists the ids of the open or auto-resolved conflicts
	// on the grade of a housing inspection.
	GradeConflicts []string
	// Fields holds a water inspection's fields, judged against the water
	// standards; nil for a housing inspection.
	Fields map[string]json.RawMessage
}

// HouseholdInspections is one household that is not deleted, with its
// accepted inspections of both kinds, as the reports read it.
type HouseholdInspections struct {
	ID, Village, HeadName, RegistrationNo, Status string
	Inspections                                   []InspectionFacts
}

// later reports whether a should rank before b as a household's current
// inspection: the later inspected_on (as rankDate bounds it), then the later
// accepted change (by server time, then change-log position), then the
// greater id (so that the order is total).
func later(a, b *InspectionFacts) bool {
	if da, db := a.rankDate(), b.rankDate(); da != db {
		return da > db
	}
	if !a.UpdatedAt.Equal(b.UpdatedAt) {
		return a.UpdatedAt.After(b.UpdatedAt)
	}
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	return a.ID > b.ID
}

// rankDate is the date an inspection ranks by: its inspected_on, but never
// later than the day after the server accepted it (UpdatedAt, UTC; the day
// after, as the forms allow a tablet a timezone ahead). A visit cannot
// have been made after its record reached the server, so an implausible
// date (2099-12-31, stored before the forms bounded dates) ranks as of its
// upload and cannot hide later real visits for good.
func (in *InspectionFacts) rankDate() string {
	if in.UpdatedAt.IsZero() {
		return in.InspectedOn
	}
	if limit := in.UpdatedAt.UTC().AddDate(0, 0, 1).Format(time.DateOnly); in.InspectedOn > limit {
		return limit
	}
	return in.InspectedOn
}

// reinspected returns the ids of the household's housing inspections that
// a re-inspection names in previous_id.
func (h *HouseholdInspections) reinspected() map[string]bool {
	out := map[string]bool{}
	for i := range h.Inspections {
		if in := &h.Inspections[i]; in.Entity == HousingEntity && in.PreviousID != "" && in.PreviousID != in.ID {
			out[in.PreviousID] = true
		}
	}
	return out
}

// CurrentHousing returns the housing inspection the household's current
// status comes from: the latest by inspected_on (ties by the later accepted
// change, see later), where an inspection that a re-inspection names in previous_id
// ranks after every one that none names, so that a re-inspection dated the
// same day as what it checks still supersedes it. It returns nil when the
// household has no housing inspection.
func (h *HouseholdInspections) CurrentHousing() *InspectionFacts {
	done := h.reinspected()
	var cur *InspectionFacts
	for i := range h.Inspections {
		in := &h.Inspections[i]
		if in.Entity != HousingEntity {
			continue
		}
		if cur == nil || (done[cur.ID] && !done[in.ID]) || (done[cur.ID] == done[in.ID] && later(in, cur)) {
			cur = in
		}
	}
	return cur
}

// LatestWater returns the household's latest water inspection by
// inspected_on (ties by the later accepted change), or nil.
func (h *HouseholdInspections) LatestWater() *InspectionFacts {
	var cur *InspectionFacts
	for i := range h.Inspections {
		if in := &h.Inspections[i]; in.Entity == WaterEntity && (cur == nil || later(in, cur)) {
			cur = in
		}
	}
	return cur
}

// Chain returns the ids of the re-inspection chain that ends at the housing
// inspection id, oldest first: each inspection is the previous_id of the
// next. A previous_id naming an inspection the household does not hold
// (deleted) ends the chain.
func (h *HouseholdInspections) Chain(id string) []string {
	byID := map[string]*InspectionFacts{}
	for i := range h.Inspections {
		if in := &h.Inspections[i]; in.Entity == HousingEntity {
			byID[in.ID] = in
		}
	}
	var rev []string
	seen := map[string]bool{}
	for in := byID[id]; in != nil && !seen[in.ID]; in = byID[in.PreviousID] {
		seen[in.ID] = true
		rev = append(rev, in.ID)
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}

// DuplicateVisit is two or more inspections of one kind of the same
// household on the same day, made by different devices: two teams visited,
// or one visit was recorded twice. Reports flag them instead of counting
// the household twice.
type DuplicateVisit struct {
	HouseholdID string      `json:"household_id"`
	HeadName    string      `json:"head_name"`
	Entity      string      `json:"entity"`
	InspectedOn string      `json:"inspected_on"`
	Inspections []VisitMark `json:"inspections"`
}

// VisitMark names one inspection of a duplicate visit and the device that
// created it.
type VisitMark struct {
	ID       string `json:"id"`
	DeviceID string `json:"device_id"`
}

// DuplicateVisits returns the household's duplicate visits, by entity and
// date: inspections of one kind on one inspected_on created by at least two
// devices. A re-inspection of an inspection of the same day is a second
// look, not a duplicate: an inspection whose previous_id names another of
// the group is left out of it.
func (h *HouseholdInspections) DuplicateVisits() []DuplicateVisit {
	type key struct{ entity, day string }
	groups := map[key][]*InspectionFacts{}
	var keys []key
	for i := range h.Inspections {
		in := &h.Inspections[i]
		if in.InspectedOn == "" {
			continue
		}
		k := key{in.Entity, in.InspectedOn}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], in)
	}
	var out []DuplicateVisit
	for _, k := range keys {
		g := groups[k]
		if len(g) < 2 {
			continue
		}
		ids := map[string]bool{}
		for _, in := range g {
			ids[in.ID] = true
		}
		devices := map[string]bool{}
		var marks []VisitMark
		for _, in := range g {
			if in.PreviousID != "" && ids[in.PreviousID] {
				continue
			}
			devices[in.Device] = true
			marks = append(marks, VisitMark{ID: in.ID, DeviceID: in.Device})
		}
		if len(devices) < 2 {
			continue
		}
		sort.Slice(marks, func(i, j int) bool { return marks[i].ID < marks[j].ID })
		out = append(out, DuplicateVisit{HouseholdID: h.ID, HeadName: h.HeadName, Entity: k.entity,
			InspectedOn: k.day, Inspections: marks})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Entity != out[j].Entity {
			return out[i].Entity < out[j].Entity
		}
		return out[i].InspectedOn < out[j].InspectedOn
	})
	return out
}

// CoverageCounts are the coverage figures of an area: a village, a
// township, a county, or every household of the report. Each household is
// counted once, by its current housing inspection (CurrentHousing) and its
// latest water inspection (LatestWater), however many visits it had.
type CoverageCounts struct {
	// Households counts the households that are not deleted.
	Households int `json:"households"`
	// WithHousing and WithWater count households with at least one
	// housing, or water, inspection.
	WithHousing int `json:"with_housing"`
	WithWater   int `json:"with_water"`
	// NeverInspected counts households with neither (the blind spots).
	NeverInspected int `json:"never_inspected"`
	// Grades counts households by the grade of their current appraisal.
	Grades map[string]int `json:"grades"`
	// DangerousByRenovation counts the households whose current appraisal
	// is C or D by its renovation state.
	DangerousByRenovation map[string]int `json:"dangerous_by_renovation"`
	// WaterFailing counts households whose latest water inspection fails
	// each indicator of the standard that applies in their village.
	WaterFailing map[string]int `json:"water_failing"`
	// WaterUnsafe counts households whose latest water inspection is not
	// shown safe: it fails or does not record at least one indicator.
	WaterUnsafe int `json:"water_unsafe"`
	// WaterUnrecorded counts households whose latest water inspection does
	// not record an indicator.
	WaterUnrecorded map[string]int `json:"water_unrecorded"`
	// Status counts households by poverty status.
	Status map[string]int `json:"status"`
	// RelapseWatch counts the households on the relapse watch.
	RelapseWatch int `json:"relapse_watch"`
	// DuplicateVisits counts duplicate visits (a household visited twice
	// the same day for the same inspection counts one).
	DuplicateVisits int `json:"duplicate_visits"`
}

func (c *CoverageCounts) add(o *CoverageCounts) {
	c.Households += o.Households
	c.WithHousing += o.WithHousing
	c.WithWater += o.WithWater
	c.NeverInspected += o.NeverInspected
	c.WaterUnsafe += o.WaterUnsafe
	c.RelapseWatch += o.RelapseWatch
	c.DuplicateVisits += o.DuplicateVisits
	for _, m := range [][2]map[string]int{{c.Grades, o.Grades}, {c.DangerousByRenovation, o.DangerousByRenovation},
		{c.WaterFailing, o.WaterFailing}, {c.WaterUnrecorded, o.WaterUnrecorded}, {c.Status, o.Status}} {
		for k, v := range m[1] {
			m[0][k] += v
		}
	}
}

// HouseholdMark names a household in a report's list.
type HouseholdMark struct {
	ID             string `json:"id"`
	HeadName       string `json:"head_name"`
	RegistrationNo string `json:"registration_no,omitempty"`
}

// RelapseCase is a household on the relapse watch, with why.
type RelapseCase struct {
	HouseholdMark
	Status string `json:"status"`
	// Reasons are RelapseDangerousHouse, RelapseUnsafeWater and
	// RelapseRiskStatus, those that apply.
	Reasons []string `json:"reasons"`
	// HousingInspectionID and Grade are the current appraisal, if any.
	HousingInspectionID string `json:"housing_inspection_id,omitempty"`
	Grade               string `json:"grade,omitempty"`
	// WaterInspectionID, WaterFailing and WaterUnrecorded are the latest
	// water inspection, the indicators it fails and those it does not
	// record, if any.
	WaterInspectionID string   `json:"water_inspection_id,omitempty"`
	WaterFailing      []string `json:"water_failing,omitempty"`
	WaterUnrecorded   []string `json:"water_unrecorded,omitempty"`
}

// VillageCoverage is the coverage of one village, with the households a
// supervisor must act on listed by id.
type VillageCoverage struct {
	Code string `json:"code"`
	// Name is the village's name where the server knows it, "" otherwise.
	Name string `json:"name"`
	// Township and County are the 9- and 6-digit prefixes of Code.
	Township string         `json:"township"`
	County   string         `json:"county"`
	Counts   CoverageCounts `json:"counts"`
	// NeverInspected lists the blind spots: households with no
	// inspection of either kind.
	NeverInspected []HouseholdMark `json:"never_inspected"`
	// RelapseWatch lists the households lifted out of poverty whose current
	// appraisal is C or D or whose water is unsafe, and those at risk.
	RelapseWatch []RelapseCase `json:"relapse_watch"`
	// DuplicateVisits lists the village's duplicate visits.
	DuplicateVisits []DuplicateVisit `json:"duplicate_visits"`
}

// Levels of roll-up areas.
const (
	LevelTownship = "township"
	LevelCounty   = "county"
)

// AreaCoverage is the roll-up of the villages of a township or county that
// lie in the report's scope.
type AreaCoverage struct {
	Code   string         `json:"code"`
	Name   string         `json:"name"`
	Level  string         `json:"level"`
	Counts CoverageCounts `json:"counts"`
}

// CoverageSummary is what a coverage report adds to its villages: the
// roll-ups, in code order, and the point of the change log it reflects.
type CoverageSummary struct {
	Townships []AreaCoverage
	Counties  []AreaCoverage
	Totals    CoverageCounts
	// At is the head of the change log when the report was read.
	At Cursor
}

// CoverageBuilder computes a coverage report from households fed in
// village order, holding one village at a time and the roll-ups.
type CoverageBuilder struct {
	housing, household, water *schema.Form
	indicators                []string // every indicator of the water standards

	village    *VillageCoverage
	thresholds map[string]schema.Threshold
	sum        CoverageSummary
}

// NewCoverageBuilder returns a builder judging households by the forms of
// sch: grades, renovation states and statuses are those the forms declare,
// water indicators those of the water form's standards (national and
// regional thresholds).
func NewCoverageBuilder(sch *schema.Schema) *CoverageBuilder {
	b := &CoverageBuilder{housing: sch.Form(HousingEntity), household: sch.Form(HouseholdEntity), water: sch.Form(WaterEntity)}
	seen := map[string]bool{}
	if b.water != nil && b.water.Standards != nil {
		for k := range b.water.Standards.National {
			seen[k] = true
		}
		for _, rs := range b.water.Standards.Regional {
			for k := range rs.Thresholds {
				seen[k] = true
			}
		}
	}
	b.indicators = sortedKeys(seen)
	b.sum.Totals = b.newCounts()
	return b
}

// newCounts returns zero counts whose maps already hold every value the
// forms declare, so that a report's shape does not depend on its data.
func (b *CoverageBuilder) newCounts() CoverageCounts {
	c := CoverageCounts{Grades: map[string]int{}, DangerousByRenovation: map[string]int{}, WaterFailing: map[string]int{},
		WaterUnrecorded: map[string]int{}, Status: map[string]int{}}
	for _, v := range enumValues(b.housing, "grade") {
		c.Grades[v] = 0
	}
	for _, v := range enumValues(b.housing, "renovation") {
		c.DangerousByRenovation[v] = 0
	}
	for _, v := range enumValues(b.household, "status") {
		c.Status[v] = 0
	}
	for _, k := range b.indicators {
		c.WaterFailing[k], c.WaterUnrecorded[k] = 0, 0
	}
	return c
}

func enumValues(f *schema.Form, field string) []string {
	if f == nil || f.Field(field) == nil {
		return nil
	}
	return f.Field(field).Values
}

// Add counts a household. Households must come grouped by village, in
// ascending code order: when h starts a new village, Add returns the
// coverage of the previous one, complete; otherwise nil. A village that
// comes back after another is an error.
func (b *CoverageBuilder) Add(h *HouseholdInspections) (*VillageCoverage, error) {
	var done *VillageCoverage
	if b.village == nil || b.village.Code != h.Village {
		if b.village != nil && h.Village < b.village.Code {
			return nil, fmt.Errorf("coverage: households out of village order (%s after %s)", h.Village, b.village.Code)
		}
		done = b.closeVillage()
		b.village = &VillageCoverage{Code: h.Village, Township: prefix(h.Village, 9), County: prefix(h.Village, 6),
			Counts: b.newCounts(), NeverInspected: []HouseholdMark{}, RelapseWatch: []RelapseCase{},
			DuplicateVisits: []DuplicateVisit{}}
		b.thresholds = nil
		if b.water != nil {
			b.thresholds = b.water.ThresholdsFor(h.Village)
		}
	}
	v, c := b.village, &b.village.Counts
	mark := HouseholdMark{ID: h.ID, HeadName: h.HeadName, RegistrationNo: h.RegistrationNo}
	c.Households++
	c.Status[orUnset(h.Status)]++

	house := h.CurrentHousing()
	if house != nil {
		c.WithHousing++
		c.Grades[house.Grade]++
		if IsDangerousGrade(house.Grade) {
			c.DangerousByRenovation[orUnset(house.Renovation)]++
		}
	}
	water := h.LatestWater()
	var failing, unrecorded []string
	waterSafe := true
	if water != nil {
		c.WithWater++
		verdict := JudgeWater(water.Fields, b.thresholds)
		failing, unrecorded, waterSafe = verdict.Failing, verdict.Unrecorded, verdict.Safe()
		for _, k := range failing {
			c.WaterFailing[k]++
		}
		for _, k := range unrecorded {
			c.WaterUnrecorded[k]++
		}
		if !waterSafe {
			c.WaterUnsafe++
		}
	}
	if house == nil && water == nil {
		c.NeverInspected++
		v.NeverInspected = append(v.NeverInspected, mark)
	}

	var reasons []string
	if h.Status == PovertyLiftedOut || h.Status == PovertyRelapseRisk {
		if house != nil && IsDangerousGrade(house.Grade) {
			reasons = append(reasons, RelapseDangerousHouse)
		}
		if !waterSafe {
			reasons = append(reasons, RelapseUnsafeWater)
		}
		if h.Status == PovertyRelapseRisk {
			reasons = append(reasons, RelapseRiskStatus)
		}
	}
	if len(reasons) > 0 {
		rc := RelapseCase{HouseholdMark: mark, Status: h.Status, Reasons: reasons, WaterFailing: failing,
			WaterUnrecorded: unrecorded}
		if house != nil {
			rc.HousingInspectionID, rc.Grade = house.ID, house.Grade
		}
		if water != nil {
			rc.WaterInspectionID = water.ID
		}
		c.RelapseWatch++
		v.RelapseWatch = append(v.RelapseWatch, rc)
	}

	dups := h.DuplicateVisits()
	c.DuplicateVisits += len(dups)
	v.DuplicateVisits = append(v.DuplicateVisits, dups...)
	return done, nil
}

// closeVillage sorts the current village's lists, adds its counts to its
// township, county and the totals, and returns it.
func (b *CoverageBuilder) closeVillage() *VillageCoverage {
	v := b.village
	if v == nil {
		return nil
	}
	sort.Slice(v.NeverInspected, func(i, j int) bool { return v.NeverInspected[i].ID < v.NeverInspected[j].ID })
	sort.Slice(v.RelapseWatch, func(i, j int) bool { return v.RelapseWatch[i].ID < v.RelapseWatch[j].ID })
	sort.SliceStable(v.DuplicateVisits, func(i, j int) bool {
		return v.DuplicateVisits[i].HouseholdID < v.DuplicateVisits[j].HouseholdID
	})
	b.rollUp(&b.sum.Townships, v.Township, LevelTownship, &v.Counts)
	b.rollUp(&b.sum.Counties, v.County, LevelCounty, &v.Counts)
	b.sum.Totals.add(&v.Counts)
	b.village = nil
	return v
}

// rollUp adds counts to the area with code, the last of areas (villages
// come in code order, so an area's villages are contiguous) or a new one.
func (b *CoverageBuilder) rollUp(areas *[]AreaCoverage, code, level string, counts *CoverageCounts) {
	if n := len(*areas); n == 0 || (*areas)[n-1].Code != code {
		*areas = append(*areas, AreaCoverage{Code: code, Level: level, Counts: b.newCounts()})
	}
	(*areas)[len(*areas)-1].Counts.add(counts)
}

// Finish returns the coverage of the last village (nil when no household
// was added) and the roll-ups. The builder is spent.
func (b *CoverageBuilder) Finish() (*VillageCoverage, *CoverageSummary) {
	last := b.closeVillage()
	if b.sum.Townships == nil {
		b.sum.Townships = []AreaCoverage{}
	}
	if b.sum.Counties == nil {
		b.sum.Counties = []AreaCoverage{}
	}
	sum := b.sum
	return last, &sum
}

func prefix(code string, n int) string {
	if len(code) < n {
		return code
	}
	return code[:n]
}

func orUnset(v string) string {
	if v == "" {
		return Unset
	}
	return v
}

// ReinspectionQuery is what decides whether an assessment is outdated.
type ReinspectionQuery struct {
	// Now is the time of the report (the server's clock).
	Now time.Time
	// After is how old an appraisal may get: one inspected more than After
	// before Now's date (UTC) is due.
	After time.Duration
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
type ReinspectionSummary struct {
	Households int
	// ByReason counts households by reason; a household with several
	// reasons counts under each.
	ByReason map[string]int
	// At is the head of the change log when the list was read.
	At Cursor
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
	var reasons []DueReason
	cur := h.CurrentHousing()
	if cur != nil {
		checked := h.reinspected()[cur.ID]
		switch {
		case !checked && (cur.Renovation == RenovationCompleted || (cur.Renovation == RenovationVerified && IsDangerousGrade(cur.Grade))):
			reasons = append(reasons, DueReason{Code: ReasonRenovationNotReinspected, InspectionID: cur.ID})
		case IsDangerousGrade(cur.Grade) && cur.Renovation != RenovationCompleted && cur.Renovation != RenovationVerified:
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
