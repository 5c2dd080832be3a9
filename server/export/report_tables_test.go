package export_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/syncproto"
)

// register names the village of these tests, its township and county.
var register = schema.Divisions{village: "独庄村", "500240107": "西沱镇", "500240": "石柱土家族自治县"}

// csvOf writes rows through a CSV TableWriter of tables holding table i,
// and returns its records, the BOM checked and stripped.
func csvOf(tb testing.TB, l export.Labels, tables []export.Table, i int, write func(row export.RowFunc) error) [][]string {
	tb.Helper()
	var buf bytes.Buffer
	tw, err := export.NewTableWriter(bufio.NewWriter(&buf), export.FormatCSV, l, tables, i)
	if err != nil {
		tb.Fatal(err)
	}
	defer tw.Close()
	if err := write(tw.Row); err != nil {
		tb.Fatal(err)
	}
	if err := tw.Finish(); err != nil {
		tb.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("\uFEFF")) {
		tb.Fatalf("CSV without a BOM: %.40q", buf.Bytes())
	}
	r := csv.NewReader(bytes.NewReader(buf.Bytes()[3:]))
	all, err := r.ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	return all
}

// byHeader maps a record to its header's columns.
func byHeader(header, record []string) map[string]string {
	m := map[string]string{}
	for i, h := range header {
		m[h] = record[i]
	}
	return m
}

// coverage is one village's figures and the report's summary over it.
func coverage() (*survey.VillageCoverage, *survey.CoverageSummary) {
	counts := survey.CoverageCounts{Households: 5, WithHousing: 3, WithWater: 2, NeverInspected: 1,
		Grades: map[string]int{"A": 1, "C": 2}, DangerousByRenovation: map[string]int{"planned": 1, survey.Unset: 1},
		WaterFailing: map[string]int{"reliability_pct": 1}, WaterUnrecorded: map[string]int{"quality_ok": 2}, WaterUnsafe: 2,
		Status: map[string]int{"lifted_out": 3, survey.Unset: 2}, RelapseWatch: 1, DuplicateVisits: 4}
	v := &survey.VillageCoverage{Code: village, Township: "500240107", County: "500240", Counts: counts,
		NeverInspected: []survey.HouseholdMark{{ID: hhB, HeadName: "谭明华", RegistrationNo: "5002401072010001"}}}
	sum := &survey.CoverageSummary{Totals: counts,
		Townships: []survey.AreaCoverage{{Code: "500240107", Level: survey.LevelTownship, Counts: counts}},
		Counties:  []survey.AreaCoverage{{Code: "500240", Level: survey.LevelCounty, Counts: counts}}}
	return v, sum
}

// TestCoverageTablesRows: the coverage tables' columns in their order and
// a village's row from its figures (one column per grade, renovation
// state, water indicator and status the forms declare, and unset); the
// never-inspected households one row each, registration numbers kept
// text; the areas township, county, total; headers and values labelled
// in zh and en.
func TestCoverageTablesRows(t *testing.T) {
	l := export.NewLabels(export.LangCodes, schema.V1())
	cov := export.NewCoverageTables(l, register)
	v, sum := coverage()
	if keys := export.CoverageTableKeys(); cov.Tables[export.CoverageVillages].Key != keys[0] || cov.Tables[export.CoverageAreas].Key != keys[1] ||
		cov.Tables[export.CoverageNeverInspected].Key != keys[2] || !slices.Equal(keys, []string{"villages", "areas", "never_inspected"}) {
		t.Fatalf("tables %v, keys %v", cov.Tables, keys)
	}
	// all writes the village and the summary through the tables of cov.
	all := func(cov *export.CoverageTables) func(export.RowFunc) error {
		return func(row export.RowFunc) error {
			if err := cov.Village(v, row); err != nil {
				return err
			}
			return cov.Summary("500240", sum, row)
		}
	}

	rows := csvOf(t, l, cov.Tables, export.CoverageVillages, all(cov))
	want := "village,village_name,township,township_name,county,county_name,households,with_housing,with_water,never_inspected," +
		"grade_A,grade_B,grade_C,grade_D," +
		"dangerous_by_renovation_none,dangerous_by_renovation_planned,dangerous_by_renovation_in_progress,dangerous_by_renovation_completed,dangerous_by_renovation_verified,dangerous_by_renovation_unset," +
		"water_failing_fetch_minutes,water_failing_liters_per_person_day,water_failing_quality_ok,water_failing_reliability_pct," +
		"water_unrecorded_fetch_minutes,water_unrecorded_liters_per_person_day,water_unrecorded_quality_ok,water_unrecorded_reliability_pct," +
		"water_unsafe,status_in_poverty,status_lifted_out,status_relapse_risk,status_unset,relapse_watch,duplicate_visits,standards"
	if len(rows) != 2 || strings.Join(rows[0], ",") != want {
		t.Fatalf("villages: header\n%s\nwant\n%s\n(%d rows)", strings.Join(rows[0], ","), want, len(rows)-1)
	}
	figures := village + ",独庄村,500240107,西沱镇,500240,石柱土家族自治县,5,3,2,1,1,0,2,0,0,1,0,0,0,1,0,0,0,1,0,0,2,0,2,0,3,0,2,1,4,"
	if got := strings.Join(rows[1], ","); got != figures {
		t.Errorf("village row %s", got)
	}

	rows = csvOf(t, l, cov.Tables, export.CoverageNeverInspected, all(cov))
	if len(rows) != 2 || strings.Join(rows[0], ",") != "village,village_name,household_id,head_name,registration_no" ||
		!slices.Equal(rows[1], []string{village, "独庄村", hhB, "谭明华", "\t5002401072010001"}) {
		t.Errorf("never inspected: %q", rows)
	}

	rows = csvOf(t, l, cov.Tables, export.CoverageAreas, all(cov))
	if len(rows) != 4 || strings.Join(rows[0][:4], ",") != "level,code,name,households" {
		t.Fatalf("areas: %q", rows)
	}
	for i, w := range [][]string{{"township", "500240107", "西沱镇"}, {"county", "500240", "石柱土家族自治县"}, {"total", "500240", "石柱土家族自治县"}} {
		if !slices.Equal(rows[1+i][:4], append(w, "5")) {
			t.Errorf("area row %d: %q, want %q then 5", i+1, rows[1+i][:4], w)
		}
	}
	if total := cov.TotalRow("", &sum.Totals); total[1] != "" || total[2] != "" {
		t.Errorf("the total of the whole scope: %v, want no code and no name", total[:3])
	}

	for _, c := range []struct {
		lang         string
		headers      []string
		level, total string
	}{
		{schema.LangZH, []string{"村", "村名", "乡镇名", "户数", "从未入户", "A级（安全）", "危房·已竣工", "危房·未填", "水质达标·不达标",
			"供水保证率（%）·未记录", "贫困状态·已脱贫", "贫困状态·未填", "返贫监测户"}, "", ""},
		{schema.LangEN, []string{"Village", "Village name", "Households", "Grade A (safe)", "Dangerous, renovation Completed",
			"Failing: Water quality meets the standard", "Status: Lifted out", "Relapse watch"}, "Level", "Total"},
	} {
		l := export.NewLabels(c.lang, schema.V1())
		cov := export.NewCoverageTables(l, register)
		rows := csvOf(t, l, cov.Tables, export.CoverageVillages, all(cov))
		for _, h := range c.headers {
			if !slices.Contains(rows[0], h) {
				t.Errorf("%s: no column %q in %q", c.lang, h, rows[0])
			}
		}
		// The labelled row holds the same places and figures as the coded one.
		if len(rows[0]) != len(strings.Split(want, ",")) || strings.Join(rows[1], ",") != figures {
			t.Errorf("%s: %d columns, village row %q", c.lang, len(rows[0]), rows[1])
		}
		if c.level != "" {
			rows := csvOf(t, l, cov.Tables, export.CoverageAreas, all(cov))
			if rows[0][0] != c.level || rows[3][0] != c.total || rows[1][0] != "Township" {
				t.Errorf("%s areas: %q", c.lang, rows)
			}
		}
	}
}

// TestReinspectionTableRow: a due household's row holds its appraisal,
// its chain, its reasons and its grade conflicts joined by ';', the age
// of an outdated appraisal, and in zh the labels of its status, grade and
// reasons.
func TestReinspectionTableRow(t *testing.T) {
	d := &survey.DueHousehold{HouseholdID: hhA, Village: village, HeadName: "李四", RegistrationNo: "0050024010720101", Status: "lifted_out",
		Current: &survey.InspectionMark{ID: housing, InspectedOn: "2025-01-02", Grade: "C", Renovation: "completed"},
		Chain:   []string{"first", housing},
		Reasons: []survey.DueReason{{Code: survey.ReasonAssessmentOutdated, AgeDays: 400},
			{Code: survey.ReasonGradeConflict, ConflictIDs: []string{"cf1", "cf2"}}}}
	l := export.NewLabels(export.LangCodes, schema.V1())
	tb := export.NewReinspectionTable(l, register)
	rows := csvOf(t, l, tb.Tables, 0, func(row export.RowFunc) error { return row(0, tb.Row(d)...) })
	want := "household_id,village,village_name,head_name,registration_no,status,current_inspection_id,inspected_on,grade,renovation,chain,reasons,age_days,conflict_ids"
	if strings.Join(rows[0], ",") != want || len(rows) != 2 {
		t.Fatalf("header %q (%d rows)", rows[0], len(rows)-1)
	}
	if got := byHeader(rows[0], rows[1]); got["village_name"] != "独庄村" || got["registration_no"] != "\t0050024010720101" ||
		got["grade"] != "C" || got["chain"] != "first;"+housing || got["reasons"] != survey.ReasonAssessmentOutdated+";"+survey.ReasonGradeConflict ||
		got["age_days"] != "400" || got["conflict_ids"] != "cf1;cf2" || got["current_inspection_id"] != housing {
		t.Errorf("row %v", got)
	}
	d.Current, d.Reasons = nil, d.Reasons[1:]
	if cells := tb.Row(d); cells[6] != "" || cells[12] != "" {
		t.Errorf("without an appraisal or an outdated one: current %q, age %v", cells[6], cells[12])
	}

	l = export.NewLabels(schema.LangZH, schema.V1())
	tb = export.NewReinspectionTable(l, register)
	cells := tb.Row(&survey.DueHousehold{HouseholdID: hhA, Village: village, Status: "lifted_out",
		Current: &survey.InspectionMark{ID: housing, Grade: "D"}, Reasons: []survey.DueReason{{Code: survey.ReasonAssessmentOutdated, AgeDays: 1}}})
	if cells[5] != "已脱贫" || !strings.Contains(cells[8].(string), "级") || cells[11] == survey.ReasonAssessmentOutdated {
		t.Errorf("zh: status %v, grade %v, reasons %v", cells[5], cells[8], cells[11])
	}
}

// TestConflictAndDuplicateRows: a conflict's row labels its field and
// values as the field's cells (a registration number kept text, a
// category labelled), and holds its resolution once resolved; a
// duplicate's row has its decision's time once decided.
func TestConflictAndDuplicateRows(t *testing.T) {
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	cf := &syncproto.ConflictEntry{ID: "cf1", Entity: "household", RecordID: hhA, Village: village, Field: "registration_no",
		Policy: "manual", Stored: json.RawMessage(`"0050024010720101"`), Incoming: json.RawMessage(`"0050024010720102"`),
		Kept: json.RawMessage(`"0050024010720101"`), State: "open", DeviceID: "dev", UserID: "u", DeviceAt: at, CreatedAt: at, Version: 2,
		HouseholdName: "李四"}
	l := export.NewLabels(export.LangCodes, schema.V1())
	tb := export.NewConflictTable(l, register)
	resolved := *cf
	resolved.Field, resolved.Stored, resolved.Incoming, resolved.Kept = "category", json.RawMessage(`"registered_poor"`),
		json.RawMessage(`"disabled_poor"`), json.RawMessage(`"registered_poor"`)
	resolved.State = "resolved"
	resolved.Resolved = &syncproto.ResolvedConflict{Value: json.RawMessage(`"disabled_poor"`), Note: "checked", By: "sup", At: at.Add(time.Hour)}
	rows := csvOf(t, l, tb.Tables, 0, func(row export.RowFunc) error {
		if err := row(0, tb.Row(cf)...); err != nil {
			return err
		}
		return row(0, tb.Row(&resolved)...)
	})
	if len(rows) != 3 || rows[0][0] != "conflict_id" || len(rows[0]) != 23 {
		t.Fatalf("conflicts: %q", rows)
	}
	open, done := byHeader(rows[0], rows[1]), byHeader(rows[0], rows[2])
	if open["stored"] != "\t0050024010720101" || open["incoming"] != "\t0050024010720102" || open["village_name"] != "独庄村" ||
		open["household_name"] != "李四" || open["resolved_at"] != "" || open["device_time"] != "2026-11-20T08:00:00.000Z" || open["version"] != "2" {
		t.Errorf("open conflict %v", open)
	}
	if done["resolution_value"] != "disabled_poor" || done["resolution_note"] != "checked" || done["resolved_by"] != "sup" ||
		done["resolved_at"] != "2026-11-20T09:00:00.000Z" {
		t.Errorf("resolved conflict %v", done)
	}
	lz := export.NewLabels(schema.LangZH, schema.V1())
	if cells := export.NewConflictTable(lz, register).Row(&resolved); cells[8] != "重点对象类别" ||
		cells[11].(export.FieldCell).Text != "贫困残疾人家庭" || cells[17].(export.FieldCell).Text != "贫困残疾人家庭" {
		t.Errorf("zh: field %v, incoming %v, resolution %v", cells[8], cells[11], cells[17])
	}

	dt := export.NewDuplicateTable(l, register)
	d := &syncproto.Duplicate{ID: "d1", Village: village, HouseholdA: hhA, HouseholdB: hhB, NameA: "甲", NameB: "乙", Reason: "same registration number",
		State: syncproto.StateOpen, CreatedAt: at, DecidedAt: at.Add(time.Hour)}
	merged := *d
	merged.State, merged.DecidedBy, merged.Survivor = "merged", "sup", hhA
	rows = csvOf(t, l, dt.Tables, 0, func(row export.RowFunc) error {
		if err := row(0, dt.Row(d)...); err != nil {
			return err
		}
		return row(0, dt.Row(&merged)...)
	})
	if len(rows) != 3 || strings.Join(rows[0], ",") != "duplicate_id,created_at,state,reason,village,village_name,household_a,household_a_name,household_b,household_b_name,decided_at,decided_by,survivor,note" {
		t.Fatalf("duplicates: %q", rows)
	}
	if rows[1][10] != "" || rows[2][10] != "2026-11-20T09:00:00.000Z" || rows[2][2] != "merged" || rows[1][5] != "独庄村" || rows[2][12] != hhA {
		t.Errorf("duplicates: %q", rows[1:])
	}
}
