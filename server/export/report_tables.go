package export

import (
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// This file is the design of the reports' tables: which columns, in what
// order, headed how, and how a report's domain values (survey's figures,
// the supervision lists) become their rows. A caller feeds the rows to a
// TableWriter: the HTTP API as the store streams them, a command the same
// way.

// RowFunc adds a row to the table at index table of a report's Tables: a
// TableWriter's Row, or a caller's wrapper of it.
type RowFunc func(table int, cells ...any) error

// The tables of the coverage report, as indexes into CoverageTables.Tables.
const (
	CoverageVillages = iota
	CoverageAreas
	CoverageNeverInspected
)

// CoverageTableKeys are the keys of the coverage report's tables, in the
// order of CoverageTables.Tables: a sheet's key, and a CSV's table= name.
func CoverageTableKeys() []string { return []string{"villages", "areas", "never_inspected"} }

// CoverageTables are the tables of the coverage report: the villages, one
// row each with its names and counts; the areas (each township, then each
// county of the region, then the total), with the same counts; the
// households never inspected, one row each.
type CoverageTables struct {
	// Tables are the three tables, at CoverageVillages, CoverageAreas and
	// CoverageNeverInspected.
	Tables []Table
	l      Labels
	names  schema.Divisions
	counts []func(*survey.CoverageCounts) int
}

// NewCoverageTables designs the coverage tables in l's language, over l's
// forms (which grades, renovation states, statuses and water indicators
// get a column), naming regions from names (a code it lacks is its own
// name).
func NewCoverageTables(l Labels, names schema.Divisions) *CoverageTables {
	f := l.Forms()
	counts, get := coverageCounts(l)
	village := l.FormField(f.HouseholdEntity(), f.Village, schema.TypeDivisionCode)
	villageName := l.Own("village_name", schema.TypeText)
	places := []Column{village, villageName, l.Own("township", schema.TypeDivisionCode), l.Own("township_name", schema.TypeText),
		l.Own("county", schema.TypeDivisionCode), l.Own("county_name", schema.TypeText)}
	areas := []Column{l.Own("level", schema.TypeText), l.Own("code", schema.TypeDivisionCode), l.Own("name", schema.TypeText)}
	keys := CoverageTableKeys()
	villageCols := append(append(append([]Column{}, places...), counts...), l.Own("standards", schema.TypeText))
	return &CoverageTables{l: l, names: names, counts: get, Tables: []Table{
		CoverageVillages: {Key: keys[CoverageVillages], Cols: villageCols},
		CoverageAreas:    {Key: keys[CoverageAreas], Cols: append(areas, counts...)},
		CoverageNeverInspected: {Key: keys[CoverageNeverInspected], Cols: []Column{village, villageName,
			l.Own("household_id", schema.TypeReference),
			l.FormField(f.HouseholdEntity(), f.HeadName, schema.TypeText),
			l.FormField(f.HouseholdEntity(), f.RegistrationNo, schema.TypeText)}},
	}}
}

// coverageCounts are the count columns of the coverage tables, in order,
// and how each reads its figure from a CoverageCounts: the households and
// inspections, one column per grade, per renovation state of a dangerous
// house, per failing and per unrecorded water indicator, per status (the
// values the forms declare, and unset), then the watch and the duplicates.
func coverageCounts(l Labels) ([]Column, []func(*survey.CoverageCounts) int) {
	f := l.Forms()
	var cols []Column
	var get []func(*survey.CoverageCounts) int
	add := func(col Column, f func(*survey.CoverageCounts) int) {
		cols, get = append(cols, col), append(get, f)
	}
	add(l.Own("households", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.Households })
	add(l.Own("with_housing", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.WithHousing })
	add(l.Own("with_water", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.WithWater })
	add(l.Own("never_inspected", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.NeverInspected })
	perValue := func(key, entity, field string, values []string, m func(*survey.CoverageCounts) map[string]int) {
		for _, v := range values {
			add(l.PerValue(key, v, l.FieldValue(entity, field, v)), func(c *survey.CoverageCounts) int { return m(c)[v] })
		}
	}
	enum := func(entity, field string, unset bool) []string {
		fd := l.Field(entity, field)
		if fd == nil {
			return nil
		}
		vs := append([]string(nil), fd.Values...)
		if unset {
			vs = append(vs, survey.Unset)
		}
		return vs
	}
	perValue("grade", f.Entity(survey.KindHousing), f.Grade, enum(f.Entity(survey.KindHousing), f.Grade, false),
		func(c *survey.CoverageCounts) map[string]int { return c.Grades })
	perValue("dangerous_by_renovation", f.Entity(survey.KindHousing), f.Renovation, enum(f.Entity(survey.KindHousing), f.Renovation, true),
		func(c *survey.CoverageCounts) map[string]int { return c.DangerousByRenovation })
	indicators := survey.WaterIndicators(l.schema)
	for _, water := range []struct {
		key string
		m   func(*survey.CoverageCounts) map[string]int
	}{
		{"water_failing", func(c *survey.CoverageCounts) map[string]int { return c.WaterFailing }},
		{"water_unrecorded", func(c *survey.CoverageCounts) map[string]int { return c.WaterUnrecorded }},
	} {
		for _, ind := range indicators {
			label := ind
			if fd := l.Field(f.Entity(survey.KindWater), ind); fd != nil && !l.Codes() {
				label = fd.LabelIn(l.Lang())
			} else if fd == nil {
				// A criterion of the water role (version 2's quality,
				// quantity, convenience, reliability).
				label = l.Value("indicator", ind)
			}
			add(l.PerValue(water.key, ind, label), func(c *survey.CoverageCounts) int { return water.m(c)[ind] })
		}
	}
	add(l.Own("water_unsafe", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.WaterUnsafe })
	perValue("status", f.HouseholdEntity(), f.Status, enum(f.HouseholdEntity(), f.Status, true),
		func(c *survey.CoverageCounts) map[string]int { return c.Status })
	add(l.Own("relapse_watch", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.RelapseWatch })
	add(l.Own("duplicate_visits", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.DuplicateVisits })
	return cols, get
}

// figures appends the count columns' cells of counts to cells.
func (t *CoverageTables) figures(cells []any, counts *survey.CoverageCounts) []any {
	for _, g := range t.counts {
		cells = append(cells, g(counts))
	}
	return cells
}

// VillageRow is a village's row of the villages table: its code and name,
// its township's and county's, then its counts, then the standards its
// water inspections were judged by (StandardsText).
func (t *CoverageTables) VillageRow(v *survey.VillageCoverage) []any {
	n := t.names
	row := t.figures([]any{v.Code, n.Name(v.Code), v.Township, n.Name(v.Township), v.County, n.Name(v.County)}, &v.Counts)
	return append(row, t.l.StandardsText(v.Standards))
}

// NeverInspectedRow is a row of the never-inspected table: a household of
// village v that no one inspected.
func (t *CoverageTables) NeverInspectedRow(v *survey.VillageCoverage, h survey.HouseholdMark) []any {
	return []any{v.Code, t.names.Name(v.Code), h.ID, h.HeadName, h.RegistrationNo}
}

// AreaRow is a township's or county's row of the areas table: its level
// (labelled), code and name, then its counts.
func (t *CoverageTables) AreaRow(a *survey.AreaCoverage) []any {
	return t.figures([]any{t.l.Value("level", a.Level), a.Code, t.names.Name(a.Code)}, &a.Counts)
}

// TotalRow is the last row of the areas table: the totals of region (the
// code asked for, "" for the caller's whole scope, which has no name).
func (t *CoverageTables) TotalRow(region string, totals *survey.CoverageCounts) []any {
	name := ""
	if region != "" {
		name = t.names.Name(region)
	}
	return t.figures([]any{t.l.Value("level", "total"), region, name}, totals)
}

// Village adds a village's rows, as the store reports it: its row of the
// villages table, then one row per never-inspected household. It returns
// the first error of row.
func (t *CoverageTables) Village(v *survey.VillageCoverage, row RowFunc) error {
	if err := row(CoverageVillages, t.VillageRow(v)...); err != nil {
		return err
	}
	for _, h := range v.NeverInspected {
		if err := row(CoverageNeverInspected, t.NeverInspectedRow(v, h)...); err != nil {
			return err
		}
	}
	return nil
}

// Summary adds the areas table once every village is in: each township,
// then each county, then the total of region. It returns the first error
// of row.
func (t *CoverageTables) Summary(region string, sum *survey.CoverageSummary, row RowFunc) error {
	for _, areas := range [][]survey.AreaCoverage{sum.Townships, sum.Counties} {
		for i := range areas {
			if err := row(CoverageAreas, t.AreaRow(&areas[i])...); err != nil {
				return err
			}
		}
	}
	return row(CoverageAreas, t.TotalRow(region, &sum.Totals)...)
}

// ReinspectionTable is the table of the re-inspection list: one row per
// due household, with its current appraisal, its chain and its reasons.
type ReinspectionTable struct {
	// Tables is the one table, households.
	Tables []Table
	l      Labels
	names  schema.Divisions
}

// NewReinspectionTable designs the re-inspection table in l's language,
// naming villages from names.
func NewReinspectionTable(l Labels, names schema.Divisions) *ReinspectionTable {
	f := l.Forms()
	h, w := f.HouseholdEntity(), f.Entity(survey.KindHousing)
	cols := []Column{l.Own("household_id", schema.TypeReference), l.FormField(h, f.Village, schema.TypeDivisionCode),
		l.Own("village_name", schema.TypeText), l.FormField(h, f.HeadName, schema.TypeText),
		l.FormField(h, f.RegistrationNo, schema.TypeText), l.FormField(h, f.Status, schema.TypeText),
		l.Own("current_inspection_id", schema.TypeReference), l.FormField(w, f.HousingDate, schema.TypeDate),
		l.FormField(w, f.Grade, schema.TypeText), l.FormField(w, f.Renovation, schema.TypeText),
		l.Own("chain", schema.TypeText), l.Own("reasons", schema.TypeText), l.Own("age_days", schema.TypeInteger),
		l.Own("conflict_ids", schema.TypeText)}
	return &ReinspectionTable{l: l, names: names, Tables: []Table{{Key: "households", Cols: cols}}}
}

// Row is a due household's row: status, grade and renovation labelled;
// its chain, its reasons (labelled) and the ids of its grade conflicts
// each joined by ';'; the appraisal's age in days when it is outdated,
// else empty.
func (t *ReinspectionTable) Row(d *survey.DueHousehold) []any {
	f := t.l.Forms()
	l := t.l
	h, w := f.HouseholdEntity(), f.Entity(survey.KindHousing)
	var cur survey.InspectionMark
	if d.Current != nil {
		cur = *d.Current
	}
	var reasons, conflicts []string
	age := any("")
	for _, r := range d.Reasons {
		reasons = append(reasons, r.Code)
		conflicts = append(conflicts, r.ConflictIDs...)
		if r.Code == survey.ReasonAssessmentOutdated {
			age = r.AgeDays
		}
	}
	return []any{d.HouseholdID, d.Village, t.names.Name(d.Village), d.HeadName, d.RegistrationNo,
		l.FieldValue(h, f.Status, d.Status), cur.ID, cur.InspectedOn, l.FieldValue(w, f.Grade, cur.Grade),
		l.FieldValue(w, f.Renovation, cur.Renovation), strings.Join(d.Chain, ";"),
		l.Values(func(v string) string { return l.Value("reason", v) }, reasons), age, strings.Join(conflicts, ";")}
}

// ConflictTable is the table of the conflict queue: one row per conflict,
// its values shown as a snapshot's cells show the field's (enum values
// labelled); a value that is not a scalar of its field is its JSON. Its
// last two columns are the departments of the two sides.
type ConflictTable struct {
	// Tables is the one table, conflicts.
	Tables []Table
	l      Labels
	names  schema.Divisions
	reg    *schema.Registries
}

// NewConflictTable designs the conflict table in l's language, naming
// villages from names.
func NewConflictTable(l Labels, names schema.Divisions) *ConflictTable {
	f := l.Forms()
	cols := []Column{l.Own("conflict_id", schema.TypeReference), l.Own("created_at", schema.TypeText),
		l.Own("state", schema.TypeText), l.Own("entity", schema.TypeText), l.Own("record_id", schema.TypeReference),
		l.FormField(f.HouseholdEntity(), f.Village, schema.TypeDivisionCode), l.Own("village_name", schema.TypeText),
		l.Own("household_name", schema.TypeText), l.Own("field", schema.TypeText), l.Own("policy", schema.TypeText),
		l.Own("stored", schema.TypeText), l.Own("incoming", schema.TypeText), l.Own("kept", schema.TypeText),
		l.Own("device", schema.TypeReference), l.Own("user", schema.TypeText), l.Own("device_time", schema.TypeText),
		l.Own("version", schema.TypeInteger), l.Own("resolution_value", schema.TypeText), l.Own("resolution_note", schema.TypeText),
		l.Own("resolved_by", schema.TypeText), l.Own("resolved_at", schema.TypeText),
		l.Own("department", schema.TypeText), l.Own("stored_department", schema.TypeText)}
	return &ConflictTable{l: l, names: names, reg: l.schema.Registries(), Tables: []Table{{Key: "conflicts", Cols: cols}}}
}

// Row is a conflict's row: the field by its label (the form's, or the
// reports' own for a field no form has), state, entity and policy
// labelled, the stored, incoming, kept and resolved values as FieldCells
// of the field, the resolution's columns empty while it is open.
func (t *ConflictTable) Row(cf *syncproto.ConflictEntry) []any {
	l := t.l
	fd := l.Field(cf.Entity, cf.Field)
	field := cf.Field
	if !l.Codes() {
		if fd != nil {
			field = fd.LabelIn(l.Lang())
		} else {
			field = l.Value("field", cf.Field)
		}
	}
	var resValue FieldCell
	var resNote, resBy, resAt string
	if r := cf.Resolved; r != nil {
		resValue, resNote, resBy, resAt = l.FieldText(fd, r.Value), r.Note, r.By, syncproto.FormatTime(r.At)
	}
	return []any{cf.ID, syncproto.FormatTime(cf.CreatedAt), l.Value("state", cf.State), l.Value("entity", cf.Entity),
		cf.RecordID, cf.Village, t.names.Name(cf.Village), cf.HouseholdName, field, l.Value("policy", cf.Policy),
		l.FieldText(fd, cf.Stored), l.FieldText(fd, cf.Incoming), l.FieldText(fd, cf.Kept), cf.DeviceID, cf.UserID,
		syncproto.FormatTime(cf.DeviceAt), cf.Version, resValue, resNote, resBy, resAt,
		t.department(cf.Department), t.department(cf.StoredDepartment)}
}

// department is a department by its label (departments.json), its name
// with codes or when the forms do not know it.
func (t *ConflictTable) department(name string) string {
	if d := t.reg.Department(name); d != nil && !t.l.Codes() && d.Labels[t.l.Lang()] != "" {
		return d.Labels[t.l.Lang()]
	}
	return name
}

// DuplicateTable is the table of the suspected duplicates: one row per
// pair of households.
type DuplicateTable struct {
	// Tables is the one table, duplicates.
	Tables []Table
	l      Labels
	names  schema.Divisions
}

// NewDuplicateTable designs the duplicate table in l's language, naming
// villages from names.
func NewDuplicateTable(l Labels, names schema.Divisions) *DuplicateTable {
	f := l.Forms()
	h := f.HouseholdEntity()
	cols := []Column{l.Own("duplicate_id", schema.TypeReference), l.Own("created_at", schema.TypeText),
		l.Own("state", schema.TypeText), l.Own("reason", schema.TypeText), l.FormField(h, f.Village, schema.TypeDivisionCode),
		l.Own("village_name", schema.TypeText), l.Own("household_a", schema.TypeReference), l.Own("household_a_name", schema.TypeText),
		l.Own("household_b", schema.TypeReference), l.Own("household_b_name", schema.TypeText), l.Own("decided_at", schema.TypeText),
		l.Own("decided_by", schema.TypeText), l.Own("survivor", schema.TypeReference), l.Own("note", schema.TypeText)}
	return &DuplicateTable{l: l, names: names, Tables: []Table{{Key: "duplicates", Cols: cols}}}
}

// Row is a duplicate's row: its state labelled, its decision's time empty
// while it is open.
func (t *DuplicateTable) Row(d *syncproto.Duplicate) []any {
	decidedAt := ""
	if d.State != syncproto.StateOpen {
		decidedAt = syncproto.FormatTime(d.DecidedAt)
	}
	return []any{d.ID, syncproto.FormatTime(d.CreatedAt), t.l.Value("state", d.State), d.Reason, d.Village,
		t.names.Name(d.Village), d.HouseholdA, d.NameA, d.HouseholdB, d.NameB, decidedAt, d.DecidedBy, d.Survivor, d.Note}
}
