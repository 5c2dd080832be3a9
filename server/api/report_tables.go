package api

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/export"
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
func (s *Server) coverageCounts(l export.Labels) ([]export.Column, []func(*survey.CoverageCounts) int) {
	var cols []export.Column
	var get []func(*survey.CoverageCounts) int
	add := func(col export.Column, f func(*survey.CoverageCounts) int) {
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
	perValue("grade", survey.HousingEntity, "grade", enum(survey.HousingEntity, survey.GradeField, false),
		func(c *survey.CoverageCounts) map[string]int { return c.Grades })
	perValue("dangerous_by_renovation", survey.HousingEntity, "renovation", enum(survey.HousingEntity, survey.RenovationField, true),
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
			if fd := l.Field(survey.WaterEntity, ind); fd != nil && !l.Codes() {
				label = fd.LabelIn(l.Lang())
			}
			add(l.PerValue(water.key, ind, label), func(c *survey.CoverageCounts) int { return water.m(c)[ind] })
		}
	}
	add(l.Own("water_unsafe", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.WaterUnsafe })
	perValue("status", survey.HouseholdEntity, "status", enum(survey.HouseholdEntity, survey.StatusField, true),
		func(c *survey.CoverageCounts) map[string]int { return c.Status })
	add(l.Own("relapse_watch", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.RelapseWatch })
	add(l.Own("duplicate_visits", schema.TypeInteger), func(c *survey.CoverageCounts) int { return c.DuplicateVisits })
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
		case f.format != export.FormatCSV:
			return invalidReport([]syncproto.FieldError{{Path: "query.table", Message: "is for format csv: an XLSX holds every table as a sheet"}})
		}
	}
	l := s.reportLabels(f.lang)
	counts, get := s.coverageCounts(l)
	village := l.FormField(survey.HouseholdEntity, survey.VillageField, schema.TypeDivisionCode)
	villageName := l.Own("village_name", schema.TypeText)
	places := []export.Column{village, villageName, l.Own("township", schema.TypeDivisionCode), l.Own("township_name", schema.TypeText),
		l.Own("county", schema.TypeDivisionCode), l.Own("county_name", schema.TypeText)}
	areas := []export.Column{l.Own("level", schema.TypeText), l.Own("code", schema.TypeDivisionCode), l.Own("name", schema.TypeText)}
	tables := []export.Table{
		{Key: coverageVillages, Cols: append(places, counts...)},
		{Key: coverageAreas, Cols: append(areas, counts...)},
		{Key: coverageNeverInspected, Cols: []export.Column{village, villageName, l.Own("household_id", schema.TypeReference),
			l.FormField(survey.HouseholdEntity, survey.HeadNameField, schema.TypeText),
			l.FormField(survey.HouseholdEntity, survey.RegistrationNoField, schema.TypeText)}},
	}
	name := "fieldsync-coverage-"
	if table != "" && table != coverageVillages {
		name += table + "-"
	}
	out, err := s.newReportOutput(c, f, l, tables, csvTable, name+export.RegionFileName(actor, region))
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
	sum, err := s.reports.Coverage(c.Request().Context(), actor, func(v *survey.VillageCoverage) error {
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
		if err := out.row(1, figures([]any{l.Value("level", a.Level), a.Code, s.divisions.Name(a.Code)}, &a.Counts)...); err != nil {
			return out.fail(err)
		}
	}
	totalName := ""
	if region != "" {
		totalName = s.divisions.Name(region)
	}
	if err := out.row(1, figures([]any{l.Value("level", "total"), region, totalName}, &sum.Totals)...); err != nil {
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
	cols := []export.Column{l.Own("household_id", schema.TypeReference), l.FormField(h, survey.VillageField, schema.TypeDivisionCode),
		l.Own("village_name", schema.TypeText), l.FormField(h, survey.HeadNameField, schema.TypeText),
		l.FormField(h, survey.RegistrationNoField, schema.TypeText), l.FormField(h, survey.StatusField, schema.TypeText),
		l.Own("current_inspection_id", schema.TypeReference), l.FormField(w, survey.InspectedOnField, schema.TypeDate),
		l.FormField(w, survey.GradeField, schema.TypeText), l.FormField(w, survey.RenovationField, schema.TypeText),
		l.Own("chain", schema.TypeText), l.Own("reasons", schema.TypeText), l.Own("age_days", schema.TypeInteger),
		l.Own("conflict_ids", schema.TypeText)}
	out, err := s.newReportOutput(c, f, l, []export.Table{{Key: "households", Cols: cols}}, 0,
		"fieldsync-reinspections-"+export.RegionFileName(actor, region))
	defer out.close()
	if err != nil {
		return err
	}
	q := survey.ReinspectionQuery{Now: s.now(), After: s.reinspectAfter}
	_, err = s.reports.Reinspections(c.Request().Context(), actor, q, func(d *survey.DueHousehold) error {
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
			l.FieldValue(h, survey.StatusField, d.Status), cur.ID, cur.InspectedOn, l.FieldValue(w, survey.GradeField, cur.Grade),
			l.FieldValue(w, survey.RenovationField, cur.Renovation), strings.Join(d.Chain, ";"),
			l.Values(func(v string) string { return l.Value("reason", v) }, reasons), age, strings.Join(conflicts, ";"))
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
	cols := []export.Column{l.Own("conflict_id", schema.TypeReference), l.Own("created_at", schema.TypeText),
		l.Own("state", schema.TypeText), l.Own("entity", schema.TypeText), l.Own("record_id", schema.TypeReference),
		l.FormField(survey.HouseholdEntity, survey.VillageField, schema.TypeDivisionCode), l.Own("village_name", schema.TypeText),
		l.Own("household_name", schema.TypeText), l.Own("field", schema.TypeText), l.Own("policy", schema.TypeText),
		l.Own("stored", schema.TypeText), l.Own("incoming", schema.TypeText), l.Own("kept", schema.TypeText),
		l.Own("device", schema.TypeReference), l.Own("user", schema.TypeText), l.Own("device_time", schema.TypeText),
		l.Own("version", schema.TypeInteger), l.Own("resolution_value", schema.TypeText), l.Own("resolution_note", schema.TypeText),
		l.Own("resolved_by", schema.TypeText), l.Own("resolved_at", schema.TypeText)}
	out, err := s.newReportOutput(c, f, l, []export.Table{{Key: "conflicts", Cols: cols}}, 0,
		"fieldsync-conflicts-"+export.RegionFileName(actor, region))
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
			fd := l.Field(cf.Entity, cf.Field)
			field := cf.Field
			if !l.Codes() {
				if fd != nil {
					field = fd.LabelIn(l.Lang())
				} else {
					field = l.Value("field", cf.Field)
				}
			}
			var resValue export.FieldCell
			var resNote, resBy, resAt string
			if r := cf.Resolved; r != nil {
				resValue, resNote, resBy, resAt = l.FieldText(fd, r.Value), r.Note, r.By, syncproto.FormatTime(r.At)
			}
			if err := out.row(0, cf.ID, syncproto.FormatTime(cf.CreatedAt), l.Value("state", cf.State), l.Value("entity", cf.Entity),
				cf.RecordID, cf.Village, s.divisions.Name(cf.Village), cf.HouseholdName, field, l.Value("policy", cf.Policy),
				l.FieldText(fd, cf.Stored), l.FieldText(fd, cf.Incoming), l.FieldText(fd, cf.Kept), cf.DeviceID, cf.UserID,
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

// duplicateTable answers the suspected duplicates as CSV or XLSX, one row
// each.
func (s *Server) duplicateTable(c echo.Context, f reportFormat, actor syncproto.Actor, region, state string) error {
	l := s.reportLabels(f.lang)
	h := survey.HouseholdEntity
	cols := []export.Column{l.Own("duplicate_id", schema.TypeReference), l.Own("created_at", schema.TypeText),
		l.Own("state", schema.TypeText), l.Own("reason", schema.TypeText), l.FormField(h, survey.VillageField, schema.TypeDivisionCode),
		l.Own("village_name", schema.TypeText), l.Own("household_a", schema.TypeReference), l.Own("household_a_name", schema.TypeText),
		l.Own("household_b", schema.TypeReference), l.Own("household_b_name", schema.TypeText), l.Own("decided_at", schema.TypeText),
		l.Own("decided_by", schema.TypeText), l.Own("survivor", schema.TypeReference), l.Own("note", schema.TypeText)}
	out, err := s.newReportOutput(c, f, l, []export.Table{{Key: "duplicates", Cols: cols}}, 0,
		"fieldsync-duplicates-"+export.RegionFileName(actor, region))
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
		if err := out.row(0, d.ID, syncproto.FormatTime(d.CreatedAt), l.Value("state", d.State), d.Reason, d.Village,
			s.divisions.Name(d.Village), d.HouseholdA, d.NameA, d.HouseholdB, d.NameB, decidedAt, d.DecidedBy, d.Survivor,
			d.Note); err != nil {
			return out.fail(err)
		}
	}
	return out.finish()
}
