package survey

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema"
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
	// Standards are the published standards the water judgement applied
	// (name, edition, effective date, value, basis), if any.
	Standards []schema.AppliedStandard `json:"standards,omitempty"`
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
	// Standards are the published standards its water inspections were
	// judged by, as they apply in the village on the report's date (name,
	// edition, effective date, value, basis); none when no inspection was
	// judged by a standard.
	Standards []schema.AppliedStandard `json:"standards,omitempty"`
}

// Levels of roll-up areas.
const (
	LevelTownship = "township"
	LevelCounty   = "county"
	// LevelVillage is a village's own counts (survey.AreaCoverage of the
	// aggregates' reads).
	LevelVillage = "village"
)

// LevelDigits returns how many digits of a division code name an area of
// the level (12 a village, 9 a township, 6 a county), 0 for another level.
func LevelDigits(level string) int {
	switch level {
	case LevelVillage:
		return 12
	case LevelTownship:
		return 9
	case LevelCounty:
		return 6
	}
	return 0
}

// AreaCoverage is the roll-up of the villages of a township or county that
// lie in the report's scope.
type AreaCoverage struct {
	Code   string         `json:"code"`
	Name   string         `json:"name"`
	Level  string         `json:"level"`
	Counts CoverageCounts `json:"counts"`
}

// CoverageSummary is what a coverage report adds to its villages: the
// roll-ups, in code order, and the totals. (The point of the change log a
// report reflects is the protocol's: syncproto.CoverageReport.)
type CoverageSummary struct {
	Townships []AreaCoverage
	Counties  []AreaCoverage
	Totals    CoverageCounts
}

// CoverageBuilder computes a coverage report from households fed in
// village order, holding one village at a time and the roll-ups.
type CoverageBuilder struct {
	// AsOf is the day the water inspections are judged as of: the
	// standards in effect then apply. Today (UTC) when zero.
	AsOf time.Time

	sch        *schema.Schema
	forms      *Forms
	water      *WaterJudge
	indicators []string // every indicator of the water judgement

	village *VillageCoverage
	sum     CoverageSummary
}

// NewCoverageBuilder returns a builder judging households by the forms of
// sch: grades, renovation states and statuses are those the forms declare,
// water indicators those of the water form (WaterJudge: its role's
// criteria, or its standards' national and regional thresholds).
func NewCoverageBuilder(sch *schema.Schema) *CoverageBuilder {
	b := &CoverageBuilder{sch: sch, forms: FormsOf(sch), water: NewWaterJudge(sch)}
	b.indicators = b.water.Indicators()
	b.sum.Totals = b.newCounts()
	return b
}

// newCounts returns zero counts whose maps already hold every value the
// forms declare, so that a report's shape does not depend on its data.
func (b *CoverageBuilder) newCounts() CoverageCounts {
	c := CoverageCounts{Grades: map[string]int{}, DangerousByRenovation: map[string]int{}, WaterFailing: map[string]int{},
		WaterUnrecorded: map[string]int{}, Status: map[string]int{}}
	for _, v := range enumValues(b.forms.Housing, b.forms.Grade) {
		c.Grades[v] = 0
	}
	for _, v := range enumValues(b.forms.Housing, b.forms.Renovation) {
		c.DangerousByRenovation[v] = 0
	}
	for _, v := range enumValues(b.forms.Household, b.forms.Status) {
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
	}
	v, c := b.village, &b.village.Counts
	mark := HouseholdMark{ID: h.ID, HeadName: h.HeadName, RegistrationNo: h.RegistrationNo}
	// The counts are the household's summary's: the same judgement a
	// store keeps per household and sums per village (HouseholdSummary).
	s, house, water, verdict := b.summarize(h, b.AsOf)
	c.addKeys(s.Keys())
	if water != nil {
		v.Standards = addStandards(v.Standards, verdict.Standards)
	}
	if s.NeverInspected() {
		v.NeverInspected = append(v.NeverInspected, mark)
	}
	if s.RelapseWatch {
		var reasons []string
		if house != nil && b.forms.Dangerous(house.Grade) {
			reasons = append(reasons, RelapseDangerousHouse)
		}
		if s.WaterUnsafe {
			reasons = append(reasons, RelapseUnsafeWater)
		}
		if _, atRisk := b.forms.Watched(h.Status); atRisk {
			reasons = append(reasons, RelapseRiskStatus)
		}
		rc := RelapseCase{HouseholdMark: mark, Status: h.Status, Reasons: reasons, WaterFailing: verdict.Failing,
			WaterUnrecorded: verdict.Unrecorded, Standards: verdict.Standards}
		if house != nil {
			rc.HousingInspectionID, rc.Grade = house.ID, house.Grade
		}
		if water != nil {
			rc.WaterInspectionID = water.ID
		}
		v.RelapseWatch = append(v.RelapseWatch, rc)
	}

	v.DuplicateVisits = append(v.DuplicateVisits, h.DuplicateVisits()...)
	return done, nil
}

// addStandards adds to list the standards of more it lacks (by name,
// edition and basis), keeping it sorted by name.
func addStandards(list, more []schema.AppliedStandard) []schema.AppliedStandard {
	for _, a := range more {
		if !slices.Contains(list, a) {
			list = append(list, a)
		}
	}
	slices.SortStableFunc(list, func(a, b schema.AppliedStandard) int { return strings.Compare(a.Name, b.Name) })
	return list
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
