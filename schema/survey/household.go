package survey

import (
	"encoding/json"
	"slices"
	"sort"
	"time"
)

// InspectionFacts is what the reports need of one accepted (not deleted)
// inspection.
type InspectionFacts struct {
	ID     string
	Entity string
	// Kind is the role of the inspection's form: KindHousing or KindWater.
	Kind string
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

	// Fields are the household record's whole fields, and Children every
	// accepted (not deleted) record of every form whose parent is the
	// household — persons, inspections, any form a version adds — with
	// its whole fields, ordered by id: what the verification judges. Both
	// are filled only when the stream's query asks for children
	// (syncproto.HouseholdQuery.Children), from the same read.
	Fields   map[string]json.RawMessage
	Children []Record
}

// Record is one accepted (not deleted) child record of a household, of any
// form: its id, entity, whole fields, and the server time and change-log
// position of its last accepted change.
type Record struct {
	ID, Entity string
	Fields     map[string]json.RawMessage
	UpdatedAt  time.Time
	Seq        int64
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
		if in := &h.Inspections[i]; in.Kind == KindHousing && in.PreviousID != "" && in.PreviousID != in.ID {
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
	cur, _ := h.currentHousing()
	return cur
}

// currentHousing is CurrentHousing, with the reinspected set it ranked by.
func (h *HouseholdInspections) currentHousing() (*InspectionFacts, map[string]bool) {
	done := h.reinspected()
	var cur *InspectionFacts
	for i := range h.Inspections {
		in := &h.Inspections[i]
		if in.Kind != KindHousing {
			continue
		}
		if cur == nil || (done[cur.ID] && !done[in.ID]) || (done[cur.ID] == done[in.ID] && later(in, cur)) {
			cur = in
		}
	}
	return cur, done
}

// LatestWater returns the household's latest water inspection by
// inspected_on (ties by the later accepted change), or nil.
func (h *HouseholdInspections) LatestWater() *InspectionFacts {
	var cur *InspectionFacts
	for i := range h.Inspections {
		if in := &h.Inspections[i]; in.Kind == KindWater && (cur == nil || later(in, cur)) {
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
		if in := &h.Inspections[i]; in.Kind == KindHousing {
			byID[in.ID] = in
		}
	}
	var rev []string
	seen := map[string]bool{}
	for in := byID[id]; in != nil && !seen[in.ID]; in = byID[in.PreviousID] {
		seen[in.ID] = true
		rev = append(rev, in.ID)
	}
	slices.Reverse(rev)
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
