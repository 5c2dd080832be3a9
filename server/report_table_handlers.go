package server

import (
	"encoding/json"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The tables of the coverage report: a CSV holds one (table=, villages by
// default), an XLSX all three as sheets.
const (
	coverageVillages       = "villages"
	coverageAreas          = "areas"
	coverageNeverInspected = "never_inspected"
)

var coverageTables = []string{coverageVillages, coverageAreas, coverageNeverInspected}

// tablePageSize is how many conflicts a table of the queue reads at a
// time: the server holds one page, however long the queue.
const tablePageSize = 500

// coverageCounts are the count columns of the coverage tables, in order,
// and how each reads its figure from a CoverageCounts: the households and
// inspections, one column per grade, per renovation state of a dangerous
// house, per failing and per unrecorded water indicator, per status (the
// values the forms declare, and unset), then the watch and the duplicates.
func (s *Server) coverageCounts(l reportLabels) ([]reportColumn, []func(*survey.CoverageCounts) int) {
	var cols []reportColumn
	var get []func(*survey.CoverageCounts) int
	add := func(col reportColumn, f func(*survey.CoverageCounts) int) {
		cols, get = append(cols, col), append(get, f)
	}
	add(l.own("households", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.Households })
	add(l.own("with_housing", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.WithHousing })
	add(l.own("with_water", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.WithWater })
	add(l.own("never_inspected", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.NeverInspected })
	perValue := func(key, entity, field string, values []string, m func(*survey.CoverageCounts) map[string]int) {
		for _, v := range values {
			add(l.perValue(key, v, l.fieldValue(entity, field, v)), func(c *survey.CoverageCounts) int { return m(c)[v] })
		}
	}
	enum := func(entity, field string, unset bool) []string {
		fd := l.field(entity, field)
		if fd == nil {
			return nil
		}
		vs := append([]string(nil), fd.Values...)
		if unset {
			vs = append(vs, survey.Unset)
		}
		return vs
	}
	perValue("grade", survey.HousingEntity, survey.GradeField, enum(survey.HousingEntity, survey.GradeField, false),
		func(c *survey.CoverageCounts) map[string]int { return c.Grades })
	perValue("dangerous_by_renovation", survey.HousingEntity, survey.RenovationField, enum(survey.HousingEntity, survey.RenovationField, true),
		func(c *survey.CoverageCounts) map[string]int { return c.DangerousByRenovation })
	indicators := survey.WaterIndicators(s.schema)
	for _, water := range []struct {
		key string
		m   func(*survey.CoverageCounts) map[string]int
	}{
		{"water_failing", func(c *survey.CoverageCounts) map[string]int { return c.WaterFailing }},
		{"water_unrecorded", func(c *survey.CoverageCounts) map[string]int { return c.WaterUnrecorded }},
	} {
		for _, ind := range indicators {
			label := ind
			if fd := l.field(survey.WaterEntity, ind); fd != nil && !l.codes() {
				label = fd.LabelIn(l.lang)
			}
			add(l.perValue(water.key, ind, label), func(c *survey.CoverageCounts) int { return water.m(c)[ind] })
		}
	}
	add(l.own("water_unsafe", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.WaterUnsafe })
	perValue("status", survey.HouseholdEntity, survey.StatusField, enum(survey.HouseholdEntity, survey.StatusField, true),
		func(c *survey.CoverageCounts) map[string]int { return c.Status })
	add(l.own("relapse_watch", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.RelapseWatch })
	add(l.own("duplicate_visits", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.DuplicateVisits })
	return cols, get
}

// coverageTable answers the coverage report as CSV or XLSX: the villages,
// one row each with its names and counts; the areas (each township and
// county of the region, then the total); the households never inspected,
// one row each. A CSV holds the table named by table (villages when
// empty), an XLSX the three as sheets.
func (s *Server) coverageTable(c echo.Context, f reportFormat, table string, actor syncproto.Actor, region string) error {
	csvTable := 0
	if table != "" {
		csvTable = -1
		for i, t := range coverageTables {
			if t == table {
				csvTable = i
			}
		}
		switch {
		case csvTable < 0:
			return invalidReport([]syncproto.FieldError{{Path: "query.table", Message: "must be one of " + strings.Join(coverageTables, ", ")}})
		case f.format != formatCSV:
			return invalidReport([]syncproto.FieldError{{Path: "query.table", Message: "is for format csv: an XLSX holds every table as a sheet"}})
		}
	}
	l := s.reportLabels(f.lang)
	counts, get := s.coverageCounts(l)
	village := l.formField(survey.HouseholdEntity, survey.VillageField, schema.TypeDivisionCode)
	villageName := l.own("village_name", schema.TypeText)
	places := []reportColumn{village, villageName, l.own("township", schema.TypeDivisionCode), l.own("township_name", schema.TypeText),
		l.own("county", schema.TypeDivisionCode), l.own("county_name", schema.TypeText)}
	areas := []reportColumn{l.own("level", schema.TypeText), l.own("code", schema.TypeDivisionCode), l.own("name", schema.TypeText)}
	tables := []reportTable{
		{key: coverageVillages, cols: append(places, counts...)},
		{key: coverageAreas, cols: append(areas, counts...)},
		{key: coverageNeverInspected, cols: []reportColumn{village, villageName, l.own("household_id", schema.TypeReference),
			l.formField(survey.HouseholdEntity, survey.HeadNameField, schema.TypeText),
			l.formField(survey.HouseholdEntity, survey.RegistrationNoField, schema.TypeText)}},
	}
	name := "fieldsync-coverage-"
	if table != "" && table != coverageVillages {
		name += table + "-"
	}
	out, err := s.newReportOutput(c, f, l, tables, csvTable, name+regionFileName(actor, region))
	defer out.close()
	if err != nil {
		return err
	}
	figures := func(cells []any, counts *survey.CoverageCounts) []any {
		for _, g := range get {
			cells = append(cells, g(counts))
		}
		return cells
	}
	sum, err := s.store.Coverage(c.Request().Context(), actor, func(v *survey.VillageCoverage) error {
		name := s.divisions.Name(v.Code)
		cells := []any{v.Code, name, v.Township, s.divisions.Name(v.Township), v.County, s.divisions.Name(v.County)}
		if err := out.row(0, figures(cells, &v.Counts)...); err != nil {
			return err
		}
		for _, h := range v.NeverInspected {
			if err := out.row(2, v.Code, name, h.ID, h.HeadName, h.RegistrationNo); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return out.fail(err)
	}
	for _, a := range append(append([]survey.AreaCoverage{}, sum.Townships...), sum.Counties...) {
		if err := out.row(1, figures([]any{l.value("level", a.Level), a.Code, s.divisions.Name(a.Code)}, &a.Counts)...); err != nil {
			return out.fail(err)
		}
	}
	totalName := ""
	if region != "" {
		totalName = s.divisions.Name(region)
	}
	if err := out.row(1, figures([]any{l.value("level", "total"), region, totalName}, &sum.Totals)...); err != nil {
		return out.fail(err)
	}
	return out.finish()
}

// reinspectionTable answers the re-inspection list as CSV or XLSX: one row
// per due household, its reasons (and the ids of its chain and of its
// grade conflicts) joined by ';'.
func (s *Server) reinspectionTable(c echo.Context, f reportFormat, actor syncproto.Actor, region string) error {
	l := s.reportLabels(f.lang)
	h, w := survey.HouseholdEntity, survey.HousingEntity
	cols := []reportColumn{l.own("household_id", schema.TypeReference), l.formField(h, survey.VillageField, schema.TypeDivisionCode),
		l.own("village_name", schema.TypeText), l.formField(h, survey.HeadNameField, schema.TypeText),
		l.formField(h, survey.RegistrationNoField, schema.TypeText), l.formField(h, survey.StatusField, schema.TypeText),
		l.own("current_inspection_id", schema.TypeReference), l.formField(w, survey.InspectedOnField, schema.TypeDate),
		l.formField(w, survey.GradeField, schema.TypeText), l.formField(w, survey.RenovationField, schema.TypeText),
		l.own("chain", schema.TypeText), l.own("reasons", schema.TypeText), l.own("age_days", schema.TypeInteger),
		l.own("conflict_ids", schema.TypeText)}
	out, err := s.newReportOutput(c, f, l, []reportTable{{key: "households", cols: cols}}, 0,
		"fieldsync-reinspections-"+regionFileName(actor, region))
	defer out.close()
	if err != nil {
		return err
	}
	q := survey.ReinspectionQuery{Now: s.now(), After: s.reinspectAfter}
	_, err = s.store.Reinspections(c.Request().Context(), actor, q, func(d *survey.DueHousehold) error {
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
		return out.row(0, d.HouseholdID, d.Village, s.divisions.Name(d.Village), d.HeadName, d.RegistrationNo,
			l.fieldValue(h, survey.StatusField, d.Status), cur.ID, cur.InspectedOn, l.fieldValue(w, survey.GradeField, cur.Grade),
			l.fieldValue(w, survey.RenovationField, cur.Renovation), strings.Join(d.Chain, ";"),
			l.values(func(v string) string { return l.value("reason", v) }, reasons), age, strings.Join(conflicts, ";"))
	})
	if err != nil {
		return out.fail(err)
	}
	return out.finish()
}

// conflictTable answers the conflict queue as CSV or XLSX: every conflict
// of the scope (and state), read page by page of tablePageSize, so that the
// server holds one page at a time however long the queue. Values are as a
// snapshot's cells show a field's (enum values labelled); one that is not
// a scalar of its field is its JSON.
func (s *Server) conflictTable(c echo.Context, f reportFormat, actor syncproto.Actor, region, state string) error {
	l := s.reportLabels(f.lang)
	cols := []reportColumn{l.own("conflict_id", schema.TypeReference), l.own("created_at", schema.TypeText),
		l.own("state", schema.TypeText), l.own("entity", schema.TypeText), l.own("record_id", schema.TypeReference),
		l.formField(survey.HouseholdEntity, survey.VillageField, schema.TypeDivisionCode), l.own("village_name", schema.TypeText),
		l.own("household_name", schema.TypeText), l.own("field", schema.TypeText), l.own("policy", schema.TypeText),
		l.own("stored", schema.TypeText), l.own("incoming", schema.TypeText), l.own("kept", schema.TypeText),
		l.own("device", schema.TypeReference), l.own("user", schema.TypeText), l.own("device_time", schema.TypeText),
		l.own("version", schema.TypeInteger), l.own("resolution_value", schema.TypeText), l.own("resolution_note", schema.TypeText),
		l.own("resolved_by", schema.TypeText), l.own("resolved_at", schema.TypeText)}
	out, err := s.newReportOutput(c, f, l, []reportTable{{key: "conflicts", cols: cols}}, 0,
		"fieldsync-conflicts-"+regionFileName(actor, region))
	defer out.close()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	for after := int64(0); ; {
		list, next, err := s.store.ListConflicts(ctx, actor, state, after, tablePageSize)
		if err != nil {
			return out.fail(err)
		}
		for _, cf := range list {
			fd := l.field(cf.Entity, cf.Field)
			field := cf.Field
			if !l.codes() {
				if fd != nil {
					field = fd.LabelIn(l.lang)
				} else {
					field = l.value("field", cf.Field)
				}
			}
			var resValue fieldCell
			var resNote, resBy, resAt string
			if r := cf.Resolved; r != nil {
				resValue, resNote, resBy, resAt = l.fieldText(fd, r.Value), r.Note, r.By, syncproto.FormatTime(r.At)
			}
			if err := out.row(0, cf.ID, syncproto.FormatTime(cf.CreatedAt), l.value("state", cf.State), l.value("entity", cf.Entity),
				cf.RecordID, cf.Village, s.divisions.Name(cf.Village), cf.HouseholdName, field, l.value("policy", cf.Policy),
				l.fieldText(fd, cf.Stored), l.fieldText(fd, cf.Incoming), l.fieldText(fd, cf.Kept), cf.DeviceID, cf.UserID,
				syncproto.FormatTime(cf.DeviceAt), cf.Version, resValue, resNote, resBy, resAt); err != nil {
				return out.fail(err)
			}
		}
		if len(list) < tablePageSize {
			break
		}
		after = next
	}
	return out.finish()
}

// fieldText is a value of a field as a snapshot's cell shows it (cellText:
// enum values and a set's items labelled, a set joined by ';'); a value of
// no field of the form, or a location, is its JSON.
func (l reportLabels) fieldText(fd *schema.Field, raw json.RawMessage) fieldCell {
	if len(raw) == 0 || string(raw) == "null" {
		return fieldCell{}
	}
	if fd == nil || fd.Type == schema.TypeLocation {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return fieldCell{text: s}
		}
		return fieldCell{text: string(raw)}
	}
	row := syncproto.SnapshotRow{Record: syncproto.StoredRecord{Fields: map[string]json.RawMessage{fd.Name: raw}}}
	return fieldCell{text: cellText(tableColumn{name: fd.Name, field: fd, lang: l.lang}, &row), field: fd}
}

// duplicateTable answers the suspected duplicates as CSV or XLSX, one row
// each.
func (s *Server) duplicateTable(c echo.Context, f reportFormat, actor syncproto.Actor, region, state string) error {
	l := s.reportLabels(f.lang)
	h := survey.HouseholdEntity
	cols := []reportColumn{l.own("duplicate_id", schema.TypeReference), l.own("created_at", schema.TypeText),
		l.own("state", schema.TypeText), l.own("reason", schema.TypeText), l.formField(h, survey.VillageField, schema.TypeDivisionCode),
		l.own("village_name", schema.TypeText), l.own("household_a", schema.TypeReference), l.own("household_a_name", schema.TypeText),
		l.own("household_b", schema.TypeReference), l.own("household_b_name", schema.TypeText), l.own("decided_at", schema.TypeText),
		l.own("decided_by", schema.TypeText), l.own("survivor", schema.TypeReference), l.own("note", schema.TypeText)}
	out, err := s.newReportOutput(c, f, l, []reportTable{{key: "duplicates", cols: cols}}, 0,
		"fieldsync-duplicates-"+regionFileName(actor, region))
	defer out.close()
	if err != nil {
		return err
	}
	list, err := s.store.ListDuplicates(c.Request().Context(), actor, state)
	if err != nil {
		return out.fail(err)
	}
	for _, d := range list {
		decidedAt := ""
		if d.State != syncproto.StateOpen {
			decidedAt = syncproto.FormatTime(d.DecidedAt)
		}
		if err := out.row(0, d.ID, syncproto.FormatTime(d.CreatedAt), l.value("state", d.State), d.Reason, d.Village,
			s.divisions.Name(d.Village), d.HouseholdA, d.NameA, d.HouseholdB, d.NameB, decidedAt, d.DecidedBy, d.Survivor,
			d.Note); err != nil {
			return out.fail(err)
		}
	}
	return out.finish()
}
