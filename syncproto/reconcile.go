package syncproto

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
)

// FieldSource is the source a Statement names for the field teams' own
// record.
const FieldSource = "field"

// The kinds of a BlindSpot.
const (
	// BlindNotInField: a registry row that matches no household the
	// teams recorded.
	BlindNotInField = "not_in_field"
	// BlindNeverInspected: a household a registry lists, recorded but
	// never inspected.
	BlindNeverInspected = "never_inspected"
)

// How a registry row was matched to a household.
const (
	MatchRegistrationNo = "registration_no"
	MatchIDCard         = "id_card"
	MatchHeadName       = "village_head_name"
)

// The kinds of a Disagreement.
const (
	// DisagreeField: a registry and the field record state different
	// values.
	DisagreeField = "registry_field"
	// DisagreeDepartments: two registries state different values.
	DisagreeDepartments = "departments"
)

// ReconciliationReport is the reconciliation's totals over the scope and
// the point of the change log it reflects; the villages come one by one.
type ReconciliationReport struct {
	Villages      int    `json:"villages"`
	RegistryRows  int    `json:"registry_rows"`
	Matched       int    `json:"matched"`
	BlindSpots    int    `json:"blind_spots"`
	Unregistered  int    `json:"unregistered"`
	Ambiguous     int    `json:"ambiguous"`
	Disagreements int    `json:"disagreements"`
	At            Cursor `json:"-"`
}

// VillageReconciliation is one village's reconciliation: the blind spots
// (households on a registry that no team visited), the households visited
// (inspected) but on no registry, the rows matching more than one
// household (listed, never guessed), and every disagreement.
type VillageReconciliation struct {
	Village       string            `json:"village"`
	BlindSpots    []BlindSpot       `json:"blind_spots"`
	Unregistered  []FieldHousehold  `json:"unregistered"`
	Ambiguous     []AmbiguousMatch  `json:"ambiguous"`
	Disagreements []Disagreement    `json:"disagreements"`
	Matches       map[string]string `json:"-"` // "source/key" → household id
}

// BlindSpot is a household on a registry that no team visited: a row that
// matches no recorded household (Kind BlindNotInField, with the row's
// source, key and name), or a recorded household a registry lists that was
// never inspected (BlindNeverInspected, with its id and every source that
// lists it).
type BlindSpot struct {
	Kind        string   `json:"kind"`
	Source      string   `json:"source,omitempty"`
	Key         string   `json:"key,omitempty"`
	Name        string   `json:"name"`
	HouseholdID string   `json:"household_id,omitempty"`
	Sources     []string `json:"sources,omitempty"`
}

// FieldHousehold is a household the teams inspected that no registry
// lists.
type FieldHousehold struct {
	HouseholdID    string `json:"household_id"`
	HeadName       string `json:"head_name"`
	RegistrationNo string `json:"registration_no,omitempty"`
}

// AmbiguousMatch is a registry row that matches several households by the
// same key (By): they are listed, and the row is matched to none.
type AmbiguousMatch struct {
	Source     string   `json:"source"`
	Key        string   `json:"key"`
	Name       string   `json:"name"`
	By         string   `json:"by"`
	Households []string `json:"households"`
}

// Statement is what one source says of a field: the source (a registry
// source, or FieldSource), its department (none for the field), the row's
// key, the value, and the date (the import's time; for the field, the
// household's latest inspection day, or the person record's last change).
type Statement struct {
	Source     string          `json:"source"`
	Department string          `json:"department,omitempty"`
	Key        string          `json:"key,omitempty"`
	Value      json.RawMessage `json:"value"`
	Date       string          `json:"date,omitempty"`
}

// Disagreement is two sources stating different values of one field of a
// household (PersonID empty) or of one of its persons: A is a registry,
// B the field record (Kind DisagreeField) or another registry
// (DisagreeDepartments).
type Disagreement struct {
	Kind        string    `json:"kind"`
	HouseholdID string    `json:"household_id"`
	HeadName    string    `json:"head_name"`
	PersonID    string    `json:"person_id,omitempty"`
	Field       string    `json:"field"`
	A           Statement `json:"a"`
	B           Statement `json:"b"`
}

// ReconciliationService reconciles the registries with the field records:
// it owns the schema whose registries.json declares the sources and the
// forms their fields state.
type ReconciliationService struct {
	store  RegistryStore
	schema *schema.Schema
	forms  *survey.Forms
}

// NewReconciliationService returns the reconciliation over store for sch.
func NewReconciliationService(store RegistryStore, sch *schema.Schema) *ReconciliationService {
	return &ReconciliationService{store: store, schema: sch, forms: survey.FormsOf(sch)}
}

// Reconcile reads the actor's scope village by village (one read
// transaction, RegistryVillages) and calls emit with each village's
// reconciliation, in village order; it returns the totals. Rows match
// households by registration number, then (a person's row) by
// identity-card number, then by village and head of household's name; a
// key that two households share is an AmbiguousMatch, never a guess. An
// error from emit stops it and is returned. ENotFound when the schema
// declares no registries.
func (s *ReconciliationService) Reconcile(ctx context.Context, actor Actor, emit func(*VillageReconciliation) error) (*ReconciliationReport, error) {
	reg := s.schema.Registries()
	if reg == nil || len(reg.Sources) == 0 {
		return nil, Errorf(ENotFound, "the served form set declares no registry sources")
	}
	sum := &ReconciliationReport{}
	at, err := s.store.RegistryVillages(ctx, actor, HouseholdQuery{Forms: s.forms, Children: true}, func(rv *RegistryVillage) error {
		vr := s.village(reg, rv)
		if !actor.Can(PermissionSeeIdentity) {
			maskIdentities(reg, vr)
		}
		sum.Villages++
		sum.RegistryRows += len(rv.Rows)
		sum.Matched += len(vr.Matches)
		sum.BlindSpots += len(vr.BlindSpots)
		sum.Unregistered += len(vr.Unregistered)
		sum.Ambiguous += len(vr.Ambiguous)
		sum.Disagreements += len(vr.Disagreements)
		return emit(vr)
	})
	if err != nil {
		return nil, err
	}
	sum.At = at
	return sum, nil
}

// person is a person record of a household, as matching finds it.
type person struct {
	household *survey.HouseholdInspections
	record    *survey.Record
}

// match is a row matched to a household (and for a person's row, maybe to
// one of its persons).
type match struct {
	row       *RegistryRow
	src       *schema.RegistrySource
	household *survey.HouseholdInspections
	person    *survey.Record
	by        string
}

// village reconciles one village.
func (s *ReconciliationService) village(reg *schema.Registries, rv *RegistryVillage) *VillageReconciliation {
	vr := &VillageReconciliation{Village: rv.Village, BlindSpots: []BlindSpot{}, Unregistered: []FieldHousehold{},
		Ambiguous: []AmbiguousMatch{}, Disagreements: []Disagreement{}, Matches: map[string]string{}}
	byRegNo := map[string][]*survey.HouseholdInspections{}
	byHead := map[string][]*survey.HouseholdInspections{}
	byID := map[string][]person{}
	personEntity := ""
	if f := s.schema.Form(schema.LevelPerson); f != nil {
		personEntity = f.Entity
	}
	for _, h := range rv.Households {
		if h.RegistrationNo != "" {
			byRegNo[h.RegistrationNo] = append(byRegNo[h.RegistrationNo], h)
		}
		if h.HeadName != "" {
			byHead[h.HeadName] = append(byHead[h.HeadName], h)
		}
		for i := range h.Children {
			c := &h.Children[i]
			if c.Entity != personEntity {
				continue
			}
			if id := text(c.Fields["id_card"]); id != "" {
				byID[id] = append(byID[id], person{h, c})
			}
		}
	}
	listed := map[string][]string{}
	var matches []match
	for _, row := range rv.Rows {
		src := reg.Source(row.Source)
		if src == nil {
			continue // a source a later form set dropped
		}
		name := text(row.Fields["head_name"])
		if src.Level == schema.LevelPerson {
			name = text(row.Fields["name"])
		}
		m := match{row: row, src: src}
		ambiguous := func(by string, hs []*survey.HouseholdInspections) {
			am := AmbiguousMatch{Source: row.Source, Key: row.Key, Name: name, By: by}
			for _, h := range hs {
				am.Households = append(am.Households, h.ID)
			}
			slices.Sort(am.Households)
			vr.Ambiguous = append(vr.Ambiguous, am)
		}
		decided := false
		if no := text(row.Fields["registration_no"]); no != "" {
			switch hs := byRegNo[no]; len(hs) {
			case 0:
			case 1:
				m.household, m.by, decided = hs[0], MatchRegistrationNo, true
			default:
				ambiguous(MatchRegistrationNo, hs)
				continue
			}
		}
		if !decided && src.Level == schema.LevelPerson {
			switch ps := byID[text(row.Fields["id_card"])]; len(ps) {
			case 0:
			case 1:
				m.household, m.person, m.by, decided = ps[0].household, ps[0].record, MatchIDCard, true
			default:
				hs := make([]*survey.HouseholdInspections, len(ps))
				for i, p := range ps {
					hs[i] = p.household
				}
				ambiguous(MatchIDCard, hs)
				continue
			}
		}
		if !decided {
			if head := text(row.Fields["head_name"]); head != "" {
				switch hs := byHead[head]; len(hs) {
				case 0:
				case 1:
					m.household, m.by, decided = hs[0], MatchHeadName, true
				default:
					ambiguous(MatchHeadName, hs)
					continue
				}
			}
		}
		if !decided {
			vr.BlindSpots = append(vr.BlindSpots, BlindSpot{Kind: BlindNotInField, Source: row.Source, Key: row.Key, Name: name})
			continue
		}
		if src.Level == schema.LevelPerson && m.person == nil {
			m.person = findPerson(m.household, personEntity, row)
		}
		matches = append(matches, m)
		vr.Matches[row.Source+"/"+row.Key] = m.household.ID
		if !slices.Contains(listed[m.household.ID], row.Source) {
			listed[m.household.ID] = append(listed[m.household.ID], row.Source)
		}
	}
	for _, h := range rv.Households {
		switch srcs := listed[h.ID]; {
		case len(srcs) > 0 && len(h.Inspections) == 0:
			vr.BlindSpots = append(vr.BlindSpots, BlindSpot{Kind: BlindNeverInspected, Name: h.HeadName, HouseholdID: h.ID, Sources: srcs})
		case len(srcs) == 0 && len(h.Inspections) > 0:
			vr.Unregistered = append(vr.Unregistered, FieldHousehold{HouseholdID: h.ID, HeadName: h.HeadName, RegistrationNo: h.RegistrationNo})
		}
	}
	vr.Disagreements = s.disagreements(reg, matches)
	return vr
}

// findPerson finds a person's row among the household's persons: by
// identity-card number, then by name when one person has it.
func findPerson(h *survey.HouseholdInspections, entity string, row *RegistryRow) *survey.Record {
	id, name := text(row.Fields["id_card"]), text(row.Fields["name"])
	var byName []*survey.Record
	for i := range h.Children {
		c := &h.Children[i]
		if c.Entity != entity {
			continue
		}
		if id != "" && text(c.Fields["id_card"]) == id {
			return c
		}
		if name != "" && text(c.Fields["name"]) == name {
			byName = append(byName, c)
		}
	}
	if len(byName) == 1 {
		return byName[0]
	}
	return nil
}

// disagreements compares each matched row with the field record, field by
// field it states, and the rows of two sources on the same household or
// person with each other.
func (s *ReconciliationService) disagreements(reg *schema.Registries, matches []match) []Disagreement {
	var out []Disagreement
	type subject struct{ household, person string }
	bySubject := map[subject][]match{}
	for _, m := range matches {
		subj := subject{m.household.ID, ""}
		if m.src.Level == schema.LevelPerson {
			if m.person == nil {
				continue // the person is not on the field roster: nothing to compare
			}
			subj.person = m.person.ID
		}
		bySubject[subj] = append(bySubject[subj], m)
		for _, f := range m.src.Fields {
			if f.States == "" || f.Name == "village" || f.Name == m.src.Key && m.by == MatchIDCard {
				continue
			}
			rv, ok := m.row.Fields[f.Name]
			if !ok {
				continue
			}
			fv, date := s.fieldValue(m, f.States)
			if fv == nil || agrees(&f, rv, fv) {
				continue
			}
			out = append(out, Disagreement{Kind: DisagreeField, HouseholdID: m.household.ID, HeadName: m.household.HeadName, PersonID: subj.person,
				Field: f.States, A: statement(reg, m, rv),
				B: Statement{Source: FieldSource, Value: fv, Date: date}})
		}
	}
	for subj, ms := range bySubject {
		for i := range ms {
			for j := i + 1; j < len(ms); j++ {
				a, b := ms[i], ms[j]
				if a.src.Name == b.src.Name {
					continue
				}
				for _, fa := range a.src.Fields {
					if fa.States == "" || fa.Name == "village" {
						continue
					}
					for _, fb := range b.src.Fields {
						if fb.States != fa.States {
							continue
						}
						va, oka := a.row.Fields[fa.Name]
						vb, okb := b.row.Fields[fb.Name]
						if !oka || !okb || sameValue(va, vb) {
							continue
						}
						out = append(out, Disagreement{Kind: DisagreeDepartments, HouseholdID: subj.household, HeadName: a.household.HeadName,
							PersonID: subj.person, Field: fa.States, A: statement(reg, a, va), B: statement(reg, b, vb)})
					}
				}
			}
		}
	}
	if out == nil {
		return []Disagreement{}
	}
	slices.SortFunc(out, func(x, y Disagreement) int {
		return cmp.Or(cmp.Compare(x.HouseholdID, y.HouseholdID), cmp.Compare(x.PersonID, y.PersonID), cmp.Compare(x.Field, y.Field),
			cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.A.Source, y.A.Source), cmp.Compare(x.B.Source, y.B.Source))
	})
	return out
}

// statement is what a matched row says of a field.
func statement(reg *schema.Registries, m match, v json.RawMessage) Statement {
	return Statement{Source: m.src.Name, Department: m.src.Department, Key: m.row.Key, Value: v, Date: FormatTime(m.row.ImportedAt)}
}

// fieldValue is the field record's value of a field of the household (or
// the matched person) and its date; nil when the record has none.
func (s *ReconciliationService) fieldValue(m match, field string) (json.RawMessage, string) {
	if m.src.Level == schema.LevelPerson {
		v := m.person.Fields[field]
		if len(v) == 0 || string(v) == "null" {
			return nil, ""
		}
		return v, FormatTime(m.person.UpdatedAt)
	}
	var v json.RawMessage
	switch field {
	case s.forms.HeadName:
		v, _ = json.Marshal(m.household.HeadName)
	case s.forms.RegistrationNo:
		if m.household.RegistrationNo == "" {
			return nil, ""
		}
		v, _ = json.Marshal(m.household.RegistrationNo)
	default:
		v = m.household.Fields[field]
	}
	if len(v) == 0 || string(v) == "null" {
		return nil, ""
	}
	return v, lastVisit(m.household)
}

// lastVisit is the day of the household's latest inspection, or "".
func lastVisit(h *survey.HouseholdInspections) string {
	last := ""
	for _, in := range h.Inspections {
		last = max(last, in.InspectedOn)
	}
	return last
}

// agrees reports whether the registry's value of f agrees with the field
// record's value of the field f states: the same value, one the field's
// Agrees lists for it, or (a set on the form) a value among the set's.
func agrees(f *schema.RegistryField, rv, fv json.RawMessage) bool {
	if sameValue(rv, fv) {
		return true
	}
	var set []string
	if json.Unmarshal(fv, &set) == nil {
		return slices.Contains(set, text(rv))
	}
	if alt, ok := f.Agrees[text(rv)]; ok {
		return slices.Contains(alt, text(fv))
	}
	return false
}

// sameValue compares two JSON values: numbers by value, text without
// surrounding space.
func sameValue(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	switch xv := x.(type) {
	case string:
		yv, ok := y.(string)
		return ok && strings.TrimSpace(xv) == strings.TrimSpace(yv)
	case float64:
		yv, ok := y.(float64)
		return ok && xv == yv
	}
	return false
}

// text is a JSON string's value, or "".
func text(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

// maskIdentities masks the identity numbers of a village's findings for
// an actor without PermissionSeeIdentity: the keys of the sources keyed by
// a field stating an identity, and the values of such fields.
func maskIdentities(reg *schema.Registries, vr *VillageReconciliation) {
	identity := func(source, field string) bool {
		src := reg.Source(source)
		if src == nil {
			return false
		}
		f := src.Field(field)
		return f != nil && f.States == "id_card"
	}
	keyed := func(source string) bool {
		src := reg.Source(source)
		return src != nil && identity(source, src.Key)
	}
	for i := range vr.BlindSpots {
		if keyed(vr.BlindSpots[i].Source) {
			vr.BlindSpots[i].Key = schema.MaskIdentity(vr.BlindSpots[i].Key)
		}
	}
	for i := range vr.Ambiguous {
		if keyed(vr.Ambiguous[i].Source) {
			vr.Ambiguous[i].Key = schema.MaskIdentity(vr.Ambiguous[i].Key)
		}
	}
	for i := range vr.Disagreements {
		d := &vr.Disagreements[i]
		for _, st := range []*Statement{&d.A, &d.B} {
			if keyed(st.Source) {
				st.Key = schema.MaskIdentity(st.Key)
			}
			if d.Field == "id_card" {
				st.Value = schema.MaskIdentityValue(st.Value)
			}
		}
	}
}
