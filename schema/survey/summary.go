package survey

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// HouseholdSummary is what the coverage report makes of one household:
// the facts its village's counts are the sum of. A store keeps one per
// household, written in the transaction that changes the household or its
// inspections, and adds the difference between the old and the new one to
// its village's sums (Keys), so that the coverage counts of a region are
// read from sums, not computed from every record. The judgement is the
// coverage report's own (CoverageBuilder.Add counts a household by its
// summary).
type HouseholdSummary struct {
	ID      string `json:"id"`
	Village string `json:"village"`
	// Status is the household's poverty status, Unset when it has none.
	Status string `json:"status"`
	// WithHousing and WithWater: at least one housing, or water, inspection.
	WithHousing bool `json:"with_housing,omitempty"`
	WithWater   bool `json:"with_water,omitempty"`
	// Grade and Renovation are those of the current appraisal
	// (CurrentHousing); Renovation is Unset for a C or D appraisal
	// without one, "" for a safe grade.
	Grade      string `json:"grade,omitempty"`
	Renovation string `json:"renovation,omitempty"`
	// WaterFailing and WaterUnrecorded are the verdict of the latest water
	// inspection (LatestWater) per indicator; WaterUnsafe when it is not
	// shown safe.
	WaterFailing    []string `json:"water_failing,omitempty"`
	WaterUnrecorded []string `json:"water_unrecorded,omitempty"`
	WaterUnsafe     bool     `json:"water_unsafe,omitempty"`
	// RelapseWatch: the household is on the relapse watch.
	RelapseWatch bool `json:"relapse_watch,omitempty"`
	// DuplicateVisits is the number of its duplicate visits.
	DuplicateVisits int `json:"duplicate_visits,omitempty"`
	// LastInspected is the latest inspected_on of its inspections, "" when
	// it has none.
	LastInspected string `json:"last_inspected,omitempty"`

	// What Append needs to add an inspection without the others: the
	// current housing inspection's and the latest water inspection's
	// rank, whether the status is watched (and at risk), the visits per
	// form and day (the village's inspections per day and form are
	// their sum, DayKeys), and the previous_id values naming no
	// inspection of the household.
	Housing  *InspectionRank       `json:"housing,omitempty"`
	Water    *InspectionRank       `json:"water,omitempty"`
	Watched  bool                  `json:"watched,omitempty"`
	AtRisk   bool                  `json:"at_risk,omitempty"`
	Visits   map[string]VisitGroup `json:"visits,omitempty"`
	Dangling []string              `json:"dangling,omitempty"`
}

// InspectionRank is what ranks an inspection against another (later):
// its id, date, server time and change-log position; Done when a
// re-inspection names it in previous_id.
type InspectionRank struct {
	ID          string    `json:"id"`
	InspectedOn string    `json:"on,omitempty"`
	UpdatedAt   time.Time `json:"at"`
	Seq         int64     `json:"seq"`
	Done        bool      `json:"done,omitempty"`
}

func rankOf(in *InspectionFacts, done bool) *InspectionRank {
	return &InspectionRank{ID: in.ID, InspectedOn: in.InspectedOn, UpdatedAt: in.UpdatedAt, Seq: in.Seq, Done: done}
}

func (r *InspectionRank) facts() *InspectionFacts {
	return &InspectionFacts{ID: r.ID, InspectedOn: r.InspectedOn, UpdatedAt: r.UpdatedAt, Seq: r.Seq}
}

// DayKeys returns the household's inspections per day and form: each
// "day/entity" key with its count. A store sums them per village; the
// keys sort by day first, so that the keys from a day on are a range
// (SplitDayKey takes one apart).
func (s *HouseholdSummary) DayKeys() map[string]int {
	out := make(map[string]int, len(s.Visits))
	for k, g := range s.Visits {
		entity, day, _ := strings.Cut(k, "/")
		out[day+"/"+entity] = g.N
	}
	return out
}

// SplitDayKey returns the day and the form of a DayKeys key.
func SplitDayKey(key string) (day, entity string) {
	day, entity, _ = strings.Cut(key, "/")
	return day, entity
}

// VisitGroup is a household's inspections of one form on one day (the
// key "entity/day"): how many, and the distinct devices of those that are
// not re-inspections of another in the group, up to two (two make a
// duplicate visit).
type VisitGroup struct {
	N       int      `json:"n"`
	Devices []string `json:"d,omitempty"`
}

// NeverInspected reports whether the household has no inspection of
// either kind (a blind spot).
func (s *HouseholdSummary) NeverInspected() bool { return !s.WithHousing && !s.WithWater }

// Keys of the counters a summary adds to its village's sums: a plain name
// for a count, "name/value" for a count by value (the CoverageCounts
// member's JSON name, then the map key).
const (
	keyHouseholds      = "households"
	keyWithHousing     = "with_housing"
	keyWithWater       = "with_water"
	keyNeverInspected  = "never_inspected"
	keyWaterUnsafe     = "water_unsafe"
	keyRelapseWatch    = "relapse_watch"
	keyDuplicateVisits = "duplicate_visits"
	keyGrades          = "grades/"
	keyDangerous       = "dangerous_by_renovation/"
	keyWaterFailing    = "water_failing/"
	keyWaterUnrecorded = "water_unrecorded/"
	keyStatus          = "status/"
)

// Keys returns the counters the household adds to its village: each key
// with its count (1, or the number of duplicate visits). A store sums
// them per village; CountsOf turns the sums back into CoverageCounts.
func (s *HouseholdSummary) Keys() map[string]int {
	k := map[string]int{keyHouseholds: 1, keyStatus + orUnset(s.Status): 1}
	if s.WithHousing {
		k[keyWithHousing] = 1
		k[keyGrades+s.Grade] = 1
		if s.Renovation != "" {
			k[keyDangerous+s.Renovation] = 1
		}
	}
	if s.WithWater {
		k[keyWithWater] = 1
		for _, ind := range s.WaterFailing {
			k[keyWaterFailing+ind] = 1
		}
		for _, ind := range s.WaterUnrecorded {
			k[keyWaterUnrecorded+ind] = 1
		}
		if s.WaterUnsafe {
			k[keyWaterUnsafe] = 1
		}
	}
	if s.NeverInspected() {
		k[keyNeverInspected] = 1
	}
	if s.RelapseWatch {
		k[keyRelapseWatch] = 1
	}
	if s.DuplicateVisits > 0 {
		k[keyDuplicateVisits] = s.DuplicateVisits
	}
	return k
}

// addKeys adds summed counters (Keys) to the counts. A key it does not
// know is ignored (sums kept by an older judgement are rebuilt when the
// forms change, see Summarizer.Key).
func (c *CoverageCounts) addKeys(keys map[string]int) {
	for key, n := range keys {
		name, value, byValue := strings.Cut(key, "/")
		if !byValue {
			switch name {
			case keyHouseholds:
				c.Households += n
			case keyWithHousing:
				c.WithHousing += n
			case keyWithWater:
				c.WithWater += n
			case keyNeverInspected:
				c.NeverInspected += n
			case keyWaterUnsafe:
				c.WaterUnsafe += n
			case keyRelapseWatch:
				c.RelapseWatch += n
			case keyDuplicateVisits:
				c.DuplicateVisits += n
			}
			continue
		}
		var m map[string]int
		switch name + "/" {
		case keyGrades:
			m = c.Grades
		case keyDangerous:
			m = c.DangerousByRenovation
		case keyWaterFailing:
			m = c.WaterFailing
		case keyWaterUnrecorded:
			m = c.WaterUnrecorded
		case keyStatus:
			m = c.Status
		}
		if m != nil {
			m[value] += n
		}
	}
}

// summarize judges a household as the coverage report does, as of asOf:
// its summary, and the current housing inspection, the latest water
// inspection and its verdict the report's lists name.
func (b *CoverageBuilder) summarize(h *HouseholdInspections, asOf time.Time) (HouseholdSummary, *InspectionFacts, *InspectionFacts, WaterVerdict) {
	s := HouseholdSummary{ID: h.ID, Village: h.Village, Status: orUnset(h.Status)}
	house := h.CurrentHousing()
	if house != nil {
		s.WithHousing, s.Grade = true, house.Grade
		if b.forms.Dangerous(house.Grade) {
			s.Renovation = orUnset(house.Renovation)
		}
	}
	water := h.LatestWater()
	var verdict WaterVerdict
	if water != nil {
		if asOf.IsZero() {
			asOf = time.Now()
		}
		verdict = b.water.Judge(water.Fields, h.Village, asOf)
		s.WithWater, s.WaterFailing, s.WaterUnrecorded, s.WaterUnsafe = true, verdict.Failing, verdict.Unrecorded, !verdict.Safe()
	}
	if watched, atRisk := b.forms.Watched(h.Status); watched {
		s.RelapseWatch = (house != nil && b.forms.Dangerous(house.Grade)) || s.WaterUnsafe || atRisk
	}
	s.Watched, s.AtRisk = b.forms.Watched(h.Status)
	s.DuplicateVisits = len(h.DuplicateVisits())
	cur, done := h.currentHousing()
	if cur != nil {
		s.Housing = rankOf(cur, done[cur.ID])
	}
	if water != nil {
		s.Water = rankOf(water, false)
	}
	ids := make(map[string]bool, len(h.Inspections))
	for i := range h.Inspections {
		ids[h.Inspections[i].ID] = true
	}
	groups := map[string]map[string]bool{}
	for i := range h.Inspections {
		in := &h.Inspections[i]
		if in.PreviousID != "" && !ids[in.PreviousID] && !slices.Contains(s.Dangling, in.PreviousID) {
			s.Dangling = append(s.Dangling, in.PreviousID)
		}
		if in.InspectedOn == "" {
			continue
		}
		if s.Visits == nil {
			s.Visits = map[string]VisitGroup{}
		}
		s.LastInspected = max(s.LastInspected, in.InspectedOn)
		key := in.Entity + "/" + in.InspectedOn
		g := s.Visits[key]
		g.N++
		s.Visits[key] = g
		if groups[key] == nil {
			groups[key] = map[string]bool{}
		}
		groups[key][in.ID] = true
	}
	// The devices of each group's members that are not re-inspections of
	// another member (as DuplicateVisits counts them), up to two.
	for i := range h.Inspections {
		in := &h.Inspections[i]
		if in.InspectedOn == "" {
			continue
		}
		key := in.Entity + "/" + in.InspectedOn
		if in.PreviousID != "" && groups[key][in.PreviousID] {
			continue
		}
		if g := s.Visits[key]; len(g.Devices) < 2 && !slices.Contains(g.Devices, in.Device) {
			g.Devices = append(g.Devices, in.Device)
			s.Visits[key] = g
		}
	}
	slices.Sort(s.Dangling)
	return s, house, water, verdict
}

// Append returns the summary of the household after the inspection in
// was added to it, from the summary alone: the same summary Summarize
// makes of the household's inspections with in among them, as of the
// same day. live reports whether an id names an inspection of the
// household (it is asked only of a re-inspection's previous_id). ok is
// false when the summary cannot tell (in names the current housing
// inspection, an inspection names in, a re-inspection of one the same
// day): the caller summarizes the household's inspections instead.
func (s *Summarizer) Append(old *HouseholdSummary, in *InspectionFacts, asOf time.Time, live func(id string) (bool, error)) (sum HouseholdSummary, ok bool, err error) {
	if old.Housing == nil && old.WithHousing || old.Water == nil && old.WithWater {
		return sum, false, nil // a summary of an older judgement
	}
	if slices.Contains(old.Dangling, in.ID) || in.PreviousID == in.ID {
		return sum, false, nil
	}
	if in.Kind == KindHousing && old.Housing != nil && in.PreviousID == old.Housing.ID {
		return sum, false, nil
	}
	key := in.Entity + "/" + in.InspectedOn
	if in.InspectedOn != "" && in.PreviousID != "" && old.Visits[key].N > 0 {
		return sum, false, nil
	}
	sum = *old
	sum.Visits = maps.Clone(old.Visits)
	sum.Dangling = slices.Clone(old.Dangling)
	if in.PreviousID != "" {
		known, err := live(in.PreviousID)
		if err != nil {
			return sum, false, err
		}
		if !known && !slices.Contains(sum.Dangling, in.PreviousID) {
			sum.Dangling = append(sum.Dangling, in.PreviousID)
			slices.Sort(sum.Dangling)
		}
	}
	if in.InspectedOn != "" {
		if sum.Visits == nil {
			sum.Visits = map[string]VisitGroup{}
		}
		sum.LastInspected = max(sum.LastInspected, in.InspectedOn)
		g := sum.Visits[key]
		g.N++
		if len(g.Devices) < 2 && !slices.Contains(g.Devices, in.Device) {
			g.Devices = append(slices.Clone(g.Devices), in.Device)
			if len(g.Devices) == 2 {
				sum.DuplicateVisits++
			}
		}
		sum.Visits[key] = g
	}
	switch in.Kind {
	case KindHousing:
		sum.WithHousing = true
		if sum.Housing == nil || sum.Housing.Done || later(in, sum.Housing.facts()) {
			sum.Housing = rankOf(in, false)
			sum.Grade, sum.Renovation = in.Grade, ""
			if s.b.forms.Dangerous(in.Grade) {
				sum.Renovation = orUnset(in.Renovation)
			}
		}
	case KindWater:
		sum.WithWater = true
		if sum.Water == nil || later(in, sum.Water.facts()) {
			if asOf.IsZero() {
				asOf = time.Now()
			}
			verdict := s.b.water.Judge(in.Fields, sum.Village, asOf)
			sum.Water = rankOf(in, false)
			sum.WaterFailing, sum.WaterUnrecorded, sum.WaterUnsafe = verdict.Failing, verdict.Unrecorded, !verdict.Safe()
		}
	}
	if sum.Watched {
		sum.RelapseWatch = (sum.WithHousing && s.b.forms.Dangerous(sum.Grade)) || sum.WaterUnsafe || sum.AtRisk
	}
	return sum, true, nil
}

// summaryShape names the shape of HouseholdSummary, changed with it.
const summaryShape = "summary/2"

// Summarizer makes households' summaries by the forms of one schema: the
// judgement of the coverage report, for a store that keeps the summaries
// and their sums. It is used by one goroutine at a time (its water judge
// keeps the last region's thresholds), as a store's single writer does.
type Summarizer struct {
	b   *CoverageBuilder
	key string
	// changes are the days a standard's edition takes effect, sorted.
	changes []string
}

// NewSummarizer returns the summarizer of sch's forms.
func NewSummarizer(sch *schema.Schema) *Summarizer {
	doc, err := json.Marshal(sch)
	if err != nil { // a loaded schema marshals; keep a key that never matches a stored one
		doc = []byte(err.Error())
	}
	// The summaries' own shape is part of the key: those kept in an older
	// shape are rebuilt.
	sum := sha256.Sum256(append(doc, summaryShape...))
	s := &Summarizer{b: NewCoverageBuilder(sch), key: hex.EncodeToString(sum[:])}
	if sch.Standards != nil {
		for _, st := range sch.Standards.Standards {
			for _, ed := range st.Editions {
				s.changes = append(s.changes, ed.Effective)
			}
		}
	}
	slices.Sort(s.changes)
	s.changes = slices.Compact(s.changes)
	return s
}

// Forms are the roles and fields the summaries read.
func (s *Summarizer) Forms() *Forms { return s.b.forms }

// Key identifies the judgement: the digest of the schema. Summaries kept
// under another key (another publication of the forms or standards) must
// be recomputed.
func (s *Summarizer) Key() string { return s.key }

// Summarize returns the household's summary judged as of the day asOf (the
// standards in effect then apply).
func (s *Summarizer) Summarize(h *HouseholdInspections, asOf time.Time) HouseholdSummary {
	sum, _, _, _ := s.b.summarize(h, asOf)
	return sum
}

// Rejudge reports whether summaries judged as of the day judged may judge
// otherwise as of now: a standard's edition took effect after judged and
// on or before now. (Nothing else in a summary depends on the date.)
func (s *Summarizer) Rejudge(judged, now time.Time) bool {
	from, to := judged.UTC().Format(time.DateOnly), now.UTC().Format(time.DateOnly)
	for _, d := range s.changes {
		if d > from && d <= to {
			return true
		}
	}
	return false
}

// CountsOf returns the coverage counts whose counters sum to keys (the
// sums of households' Keys), shaped as a coverage report's: every value
// the forms declare present.
func (s *Summarizer) CountsOf(keys map[string]int) CoverageCounts {
	c := s.b.newCounts()
	c.addKeys(keys)
	return c
}

// AddCounts adds the counts o to c (a village's to its township's).
func (c *CoverageCounts) AddCounts(o *CoverageCounts) { c.add(o) }

// Rollup sums the counts of villages, fed in ascending code order, into
// their townships and counties and the totals, as a coverage report does
// (CoverageSummary): the roll-ups of villages read from a store's sums.
type Rollup struct{ b *CoverageBuilder }

// NewRollup returns an empty roll-up shaped by the summarizer's forms.
func (s *Summarizer) NewRollup() *Rollup { return &Rollup{b: NewCoverageBuilder(s.b.sch)} }

// Add adds one village's counts to its township, county and the totals.
func (r *Rollup) Add(village string, counts *CoverageCounts) {
	r.b.rollUp(&r.b.sum.Townships, prefix(village, 9), LevelTownship, counts)
	r.b.rollUp(&r.b.sum.Counties, prefix(village, 6), LevelCounty, counts)
	r.b.sum.Totals.add(counts)
}

// Finish returns the roll-ups and totals; the roll-up is spent.
func (r *Rollup) Finish() *CoverageSummary {
	_, sum := r.b.Finish()
	return sum
}

// InspectionOf returns the facts a summary takes from a record of the
// housing or water form as the store reads them (its date, grade,
// renovation and previous_id by the roles; a water inspection's fields),
// without the server's own (UpdatedAt, Seq, Device). ok is false for a
// record of another form, or one whose role fields are not text: the
// store then reads the household's inspections instead.
func (f *Forms) InspectionOf(id, entity string, fields map[string]json.RawMessage) (in InspectionFacts, ok bool) {
	in = InspectionFacts{ID: id, Entity: entity}
	var date string
	switch entity {
	case f.Entity(KindHousing):
		in.Kind, date = KindHousing, f.HousingDate
	case f.Entity(KindWater):
		in.Kind, date, in.Fields = KindWater, f.WaterDate, fields
	default:
		return in, false
	}
	for _, v := range []struct {
		field string
		to    *string
	}{{date, &in.InspectedOn}, {f.Grade, &in.Grade}, {f.Renovation, &in.Renovation}, {f.Previous, &in.PreviousID}} {
		raw, present := fields[v.field]
		if v.field == "" || !present || string(raw) == "null" {
			continue
		}
		if json.Unmarshal(raw, v.to) != nil {
			return in, false
		}
	}
	return in, true
}

// SameKeys reports whether the two summaries add the same counters to the
// same village (Keys), without making them: a store skips the sums of a
// household whose counters an appended inspection left alone.
func (s *HouseholdSummary) SameKeys(o *HouseholdSummary) bool {
	return s.Village == o.Village && s.Status == o.Status && s.WithHousing == o.WithHousing && s.WithWater == o.WithWater &&
		s.Grade == o.Grade && s.Renovation == o.Renovation && s.WaterUnsafe == o.WaterUnsafe &&
		s.RelapseWatch == o.RelapseWatch && s.DuplicateVisits == o.DuplicateVisits &&
		slices.Equal(s.WaterFailing, o.WaterFailing) && slices.Equal(s.WaterUnrecorded, o.WaterUnrecorded)
}

// AddDayChanges calls add with each DayKeys key whose count replacing the
// summary old by cur (either may be nil) changes, and the change.
func AddDayChanges(old, cur *HouseholdSummary, add func(village, key string, n int)) {
	if old != nil && cur != nil && old.Village == cur.Village {
		for k, g := range cur.Visits {
			if d := g.N - old.Visits[k].N; d != 0 {
				add(cur.Village, dayKey(k), d)
			}
		}
		for k, g := range old.Visits {
			if _, ok := cur.Visits[k]; !ok && g.N != 0 {
				add(cur.Village, dayKey(k), -g.N)
			}
		}
		return
	}
	for _, c := range []struct {
		s    *HouseholdSummary
		sign int
	}{{old, -1}, {cur, 1}} {
		if c.s != nil {
			for k, g := range c.s.Visits {
				add(c.s.Village, dayKey(k), c.sign*g.N)
			}
		}
	}
}

// dayKey is the DayKeys key of a Visits key.
func dayKey(visit string) string {
	entity, day, _ := strings.Cut(visit, "/")
	return day + "/" + entity
}
