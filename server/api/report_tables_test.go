package api_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// getTable sends GET path with token (and Accept-Language when lang is
// not empty), expects 200 with the media type of format, a download name
// and no-store, and returns the body.
func getTable(tb testing.TB, ts *apitest.Server, token, path, format, acceptLanguage string) []byte {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", path, resp.StatusCode, body.Bytes())
	}
	want := map[string]string{export.FormatCSV: "text/csv; charset=utf-8", export.FormatXLSX: export.MIMEXLSX}[format]
	if ct := resp.Header.Get("Content-Type"); ct != want {
		tb.Fatalf("GET %s: content type %q, want %q", path, ct, want)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="fieldsync-`) || !strings.HasSuffix(cd, "."+format+`"`) {
		tb.Fatalf("GET %s: Content-Disposition %q", path, cd)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		tb.Fatalf("GET %s: Cache-Control %q", path, resp.Header.Get("Cache-Control"))
	}
	return body.Bytes()
}

// csvTable parses a report's CSV: its BOM, then records.
func csvTable(tb testing.TB, body []byte) [][]string {
	tb.Helper()
	if !bytes.HasPrefix(body, []byte("\xEF\xBB\xBF")) {
		tb.Fatalf("CSV without a BOM: %.40q", body)
	}
	r := csv.NewReader(bytes.NewReader(body[3:]))
	r.FieldsPerRecord = -1
	all, err := r.ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	if len(all) == 0 {
		tb.Fatal("CSV without a header")
	}
	return all
}

// xlsxSheets reads every sheet of a workbook, in order, as its name and
// rows of cell text.
func xlsxSheets(tb testing.TB, body []byte) ([]string, map[string][][]string, *excelize.File) {
	tb.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	rows := map[string][][]string{}
	for _, name := range f.GetSheetList() {
		if rows[name], err = f.GetRows(name); err != nil {
			tb.Fatal(err)
		}
	}
	return f.GetSheetList(), rows, f
}

// column finds a header's index, failing when it is missing.
func column(tb testing.TB, header []string, name string) int {
	tb.Helper()
	for i, h := range header {
		if h == name {
			return i
		}
	}
	tb.Fatalf("no column %q in %q", name, header)
	return -1
}

// TestCoverageTables: the coverage report as CSV and XLSX, on the demo
// with its register: one row per village with its names and the JSON's
// counts, the areas with the totals, the never-inspected households one
// row each; headers and values in codes (no Accept-Language), zh and en;
// identifiers kept text; the same bytes twice; the supervisor's scope.
func TestCoverageTables(t *testing.T) {
	ts := mustServeDemoRegister(t)
	apitest.SeedDemo(t, ts)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	var rep coverageBody
	getReport(t, ts, admin, "/v1/reports/coverage?region=500240", &rep)
	never := 0
	for _, v := range rep.Villages {
		never += len(v.NeverInspected)
	}
	if len(rep.Villages) != 8 || never == 0 {
		t.Fatalf("demo county 500240: %d villages, %d never inspected", len(rep.Villages), never)
	}

	// Codes: keys and codes, names from the register.
	body := getTable(t, ts, admin, "/v1/reports/coverage?region=500240&format=csv", export.FormatCSV, "")
	rows := csvTable(t, body)
	header := rows[0]
	if strings.Join(header[:7], ",") != "village,village_name,township,township_name,county,county_name,households" {
		t.Fatalf("header %v", header)
	}
	for _, h := range []string{"grade_A", "grade_D", "dangerous_by_renovation_unset", "water_failing_quality",
		"water_unrecorded_reliability", "standards", "status_lifted_out", "status_unset", "relapse_watch", "duplicate_visits"} {
		column(t, header, h)
	}
	if len(rows) != 1+len(rep.Villages) {
		t.Fatalf("%d rows for %d villages", len(rows)-1, len(rep.Villages))
	}
	households, gradeC, failing := column(t, header, "households"), column(t, header, "grade_C"), column(t, header, "water_failing_reliability")
	for i, v := range rep.Villages {
		r := rows[1+i]
		// A village code reads back as the same digits in a spreadsheet:
		// it stays as it is (docs/protocol.md).
		if r[0] != v.Code || r[1] != v.Name || v.Name == "" || r[3] != "西沱镇" && r[3] != "黄水镇" && r[3] != "中益乡" ||
			r[5] != "石柱土家族自治县" {
			t.Errorf("village row %v for %s %s", r[:6], v.Code, v.Name)
		}
		if r[households] != itoa(v.Counts.Households) || r[gradeC] != itoa(v.Counts.Grades["C"]) ||
			r[failing] != itoa(v.Counts.WaterFailing["reliability"]) ||
			!strings.Contains(r[len(r)-1], "water_quantity=35 L/person/day (T/CHES 18-2018, 2019-01-01, national)") {
			t.Errorf("village %s: counts %v, JSON %+v", v.Code, r, v.Counts)
		}
	}

	// The never-inspected households as a flat CSV of their own.
	rows = csvTable(t, getTable(t, ts, admin, "/v1/reports/coverage?region=500240&format=csv&table=never_inspected", export.FormatCSV, ""))
	if strings.Join(rows[0], ",") != "village,village_name,household_id,head_name,registration_no" || len(rows) != 1+never {
		t.Fatalf("never inspected: %d rows, header %v", len(rows)-1, rows[0])
	}
	for _, r := range rows[1:] {
		if !strings.HasPrefix(r[4], "\t500240") || len(r[4]) != 17 || r[2] == "" || r[3] == "" {
			t.Errorf("never inspected row %q: the registration number must be kept text", r)
		}
	}
	// The areas: each township, the county, the total.
	rows = csvTable(t, getTable(t, ts, admin, "/v1/reports/coverage?region=500240&format=csv&table=areas&lang=en", export.FormatCSV, ""))
	if len(rows) != 1+len(rep.Townships)+len(rep.Counties)+1 || rows[0][0] != "Level" || rows[0][5] != "With water inspection" {
		t.Fatalf("areas: %v", rows)
	}
	last := rows[len(rows)-1]
	if last[0] != "Total" || last[1] != "500240" || last[2] != "石柱土家族自治县" || last[3] != itoa(rep.Totals.Households) ||
		rows[1][0] != "Township" || rows[1][2] != "西沱镇" {
		t.Fatalf("areas: %v", rows)
	}

	// zh from Accept-Language, en from lang=, both from the labels.
	rows = csvTable(t, getTable(t, ts, admin, "/v1/reports/coverage?region=500240&format=csv", export.FormatCSV, "zh-CN,zh;q=0.9"))
	for _, h := range []string{"村", "村名", "乡镇名", "户数", "从未入户", "A级（安全）", "危房·已竣工", "危房·未填", "水质·不达标",
		"供水保障率·未记录", "适用标准", "贫困状态·已脱贫", "贫困状态·未填", "返贫监测户"} {
		column(t, rows[0], h)
	}
	rows = csvTable(t, getTable(t, ts, admin, "/v1/reports/coverage?region=500240&format=csv&lang=en", export.FormatCSV, "zh-CN"))
	for _, h := range []string{"Village", "Village name", "Households", "Grade A (safe)", "Dangerous, renovation Completed",
		"Failing: Water quality", "Standards applied", "Status: Lifted out", "Relapse watch"} {
		column(t, rows[0], h)
	}

	// lang=codes wins over Accept-Language.
	rows = csvTable(t, getTable(t, ts, admin, "/v1/reports/coverage?region=500240&format=csv&lang=codes", export.FormatCSV, "zh-CN"))
	if rows[0][0] != "village" || rows[0][7] != "with_housing" {
		t.Fatalf("lang=codes: header %v", rows[0])
	}

	// XLSX: the three sheets, named in the language, numbers typed,
	// identifiers text.
	first := getTable(t, ts, admin, "/v1/reports/coverage?region=500240&format=xlsx&lang=zh", export.FormatXLSX, "")
	names, sheets, f := xlsxSheets(t, first)
	if strings.Join(names, ",") != "各村,汇总,从未入户" {
		t.Fatalf("sheets %v", names)
	}
	if len(sheets["各村"]) != 1+len(rep.Villages) || len(sheets["从未入户"]) != 1+never || sheets["各村"][1][1] != rep.Villages[0].Name {
		t.Fatalf("sheets: %d villages, %d never inspected; %v", len(sheets["各村"])-1, len(sheets["从未入户"])-1, sheets["各村"][1])
	}
	if typ, _ := f.GetCellType("各村", "A2"); typ != excelize.CellTypeSharedString && typ != excelize.CellTypeInlineString {
		t.Errorf("a village code is a %v cell, not text", typ)
	}
	if typ, _ := f.GetCellType("各村", "G2"); typ != excelize.CellTypeNumber && typ != excelize.CellTypeUnset {
		t.Errorf("a count is a %v cell, not a number", typ)
	}
	if typ, _ := f.GetCellType("从未入户", "E2"); typ != excelize.CellTypeSharedString && typ != excelize.CellTypeInlineString {
		t.Errorf("a registration number is a %v cell, not text", typ)
	}
	// Byte-stable: the same report is the same bytes.
	ts.Clock.Advance(time.Minute) // a later generated_at must not change the table
	for i := range 6 {
		if again := getTable(t, ts, admin, "/v1/reports/coverage?region=500240&format=xlsx&lang=zh", export.FormatXLSX, ""); !bytes.Equal(again, first) {
			t.Fatalf("download %d of one report differs from the first (%d and %d bytes)", i+2, len(again), len(first))
		}
	}
	if a, b := getTable(t, ts, admin, "/v1/reports/coverage?format=csv", export.FormatCSV, ""),
		getTable(t, ts, admin, "/v1/reports/coverage?format=csv", export.FormatCSV, ""); !bytes.Equal(a, b) {
		t.Error("two CSV downloads of one report differ")
	}

	// Scope: a supervisor of 150422 gets that county's villages only.
	ts.AddUser(t, "supervisor.bairin", syncproto.RoleSupervisor, "150422")
	sup := ts.Login(t, "supervisor.bairin", uuid.NewString())
	rows = csvTable(t, getTable(t, ts, sup, "/v1/reports/coverage?format=csv", export.FormatCSV, ""))
	if len(rows) != 1+8 {
		t.Fatalf("the supervisor's scope: %d villages", len(rows)-1)
	}
	for _, r := range rows[1:] {
		if !strings.HasPrefix(r[0], "150422") {
			t.Errorf("village %q outside the supervisor's scope", r[0])
		}
	}
	resp, b := getRaw(t, ts, sup, "/v1/reports/coverage?format=xlsx&region=500240")
	apitest.MustProblem(t, resp, b, 403)
}

// getRaw sends GET path with token.
func getRaw(tb testing.TB, ts *apitest.Server, token, path string) (*http.Response, []byte) {
	tb.Helper()
	return ts.DoAs(tb, token, http.MethodGet, path, "", nil)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestReportTableRequests: a bad format, lang or table is a 422 with its
// path; limit and cursor are for the JSON pages; every refusal is a
// problem, not a table.
func TestReportTableRequests(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	for _, c := range []struct{ path, errPath string }{
		{"/v1/reports/coverage?format=pdf", "query.format"},
		{"/v1/reports/coverage?format=csv&lang=fr", "query.lang"},
		{"/v1/reports/coverage?format=csv&table=relapse", "query.table"},
		{"/v1/reports/coverage?format=xlsx&table=areas", "query.table"},
		{"/v1/reports/coverage?table=areas", "query.table"},
		{"/v1/reinspections?format=ods", "query.format"},
		{"/v1/conflicts?format=csv&limit=10", "query.limit"},
		{"/v1/conflicts?format=xlsx&cursor=abc", "query.cursor"},
		{"/v1/conflicts?format=txt", "query.format"},
		{"/v1/duplicates?format=csv&lang=de", "query.lang"},
	} {
		resp, body := getRaw(t, ts, admin, c.path)
		p := apitest.MustProblem(t, resp, body, 422)
		if len(p.Errors) == 0 || p.Errors[0].Path != c.errPath {
			t.Errorf("%s: %s, want the path %s", c.path, body, c.errPath)
		}
	}
	resp, body := getRaw(t, ts, admin, "/v1/reinspections?format=csv&sheet=1")
	apitest.MustProblem(t, resp, body, 400)
}

// TestReinspectionTable: the re-inspection list as CSV and XLSX, one row
// per due household of the JSON, reasons labelled and joined.
func TestReinspectionTable(t *testing.T) {
	ts := mustServeDemoRegister(t)
	apitest.SeedDemo(t, ts)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	var re reinspectionBody
	getReport(t, ts, admin, "/v1/reinspections?region=500240", &re)
	if len(re.Households) == 0 {
		t.Fatal("no household due in 500240")
	}
	rows := csvTable(t, getTable(t, ts, admin, "/v1/reinspections?region=500240&format=csv", export.FormatCSV, ""))
	want := "household_id,village,village_name,head_name,registration_no,status,current_inspection_id,inspected_on,grade,renovation,chain,reasons,age_days,conflict_ids"
	if strings.Join(rows[0], ",") != want || len(rows) != 1+len(re.Households) {
		t.Fatalf("%d rows for %d households; header %v", len(rows)-1, len(re.Households), rows[0])
	}
	reasons := column(t, rows[0], "reasons")
	for i, d := range re.Households {
		r := rows[1+i]
		var codes []string
		for _, x := range d.Reasons {
			codes = append(codes, x.Code)
		}
		if r[0] != d.HouseholdID || r[1] != d.Village || r[2] != d.VillageName || d.VillageName == "" || r[3] != d.HeadName ||
			r[4] != "\t"+d.RegistrationNo || r[reasons] != strings.Join(codes, ";") || r[6] != d.Current.ID || r[8] != d.Current.Grade {
			t.Errorf("row %q for %+v", r, d)
		}
	}
	rows = csvTable(t, getTable(t, ts, admin, "/v1/reinspections?region=500240&format=csv&lang=zh", export.FormatCSV, ""))
	if strings.Join(rows[0][:6], ",") != "农户ID,村,村名,户主姓名,建档立卡编号,贫困状态" {
		t.Fatalf("zh header %v", rows[0])
	}
	labelled := map[string]bool{}
	for _, r := range rows[1:] {
		for _, x := range strings.Split(r[reasons], ";") {
			labelled[x] = true
		}
		if g := r[8]; g != "" && !strings.Contains(g, "级") {
			t.Errorf("grade %q not labelled", g)
		}
	}
	if !labelled["危房未改造"] || !labelled["改造后未复核"] {
		t.Errorf("reasons in zh: %v", labelled)
	}
	first := getTable(t, ts, admin, "/v1/reinspections?region=500240&format=xlsx&lang=en", export.FormatXLSX, "")
	names, sheets, _ := xlsxSheets(t, first)
	if len(names) != 1 || names[0] != "Due households" || len(sheets[names[0]]) != 1+len(re.Households) ||
		sheets[names[0]][0][11] != "Reasons" {
		t.Fatalf("xlsx: %v, %d rows", names, len(sheets[names[0]]))
	}
	if again := getTable(t, ts, admin, "/v1/reinspections?region=500240&format=xlsx&lang=en", export.FormatXLSX, ""); !bytes.Equal(again, first) {
		t.Error("two downloads of one list differ")
	}
}

// TestConflictAndDuplicateTables: the conflict queue as a table holds
// every conflict of the scope across more pages than one (the server reads
// them page by page), with labelled values; the duplicates likewise; a
// supervisor sees their scope only.
func TestConflictAndDuplicateTables(t *testing.T) {
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(c *api.Config) {
		c.Divisions = schema.Divisions{storetest.SouthVillage: "独庄村"}
	})
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	a, b := storetest.NewDevice("admin"), storetest.NewDevice("admin")
	// Each household edited from its first version by a second device:
	// a conflict on members (manual) per household, over several pages.
	n := api.TablePageSize + 30
	ids := make([]string, n)
	for start := 0; start < n; start += 200 {
		var create, edit []syncproto.Change
		for i := start; i < min(start+200, n); i++ {
			ids[i] = uuid.NewString()
			create = append(create, storetest.Upsert("household", ids[i], 0, storetest.T0, map[string]any{
				"village": storetest.SouthVillage, "head_name": "户" + itoa(i), "members": 3, "category": "registered_poor"}))
			edit = append(edit, storetest.Upsert("household", ids[i], 0, storetest.T0.Add(time.Minute), map[string]any{
				"village": storetest.SouthVillage, "head_name": "户" + itoa(i), "members": 4, "category": "disabled_poor"}))
		}
		ts.MustPush(t, a.Changeset(create...))
		ts.MustPush(t, b.Changeset(edit...))
	}
	// What the JSON pages hold, all of them.
	total := 0
	for cursor := ""; ; {
		var page struct {
			Conflicts []json.RawMessage `json:"conflicts"`
			Cursor    string            `json:"cursor"`
			HasMore   bool              `json:"has_more"`
		}
		getReport(t, ts, admin, "/v1/conflicts?limit=5000&cursor="+cursor, &page)
		total += len(page.Conflicts)
		if !page.HasMore {
			break
		}
		cursor = page.Cursor
	}
	if total <= api.TablePageSize {
		t.Fatalf("only %d conflicts: the test needs more than a page", total)
	}
	rows := csvTable(t, getTable(t, ts, admin, "/v1/conflicts?format=csv", export.FormatCSV, ""))
	if len(rows) != 1+total {
		t.Fatalf("the CSV holds %d conflicts, the queue %d", len(rows)-1, total)
	}
	seen := map[string]bool{}
	h := rows[0]
	id, field, stored, incoming, name, vname := column(t, h, "conflict_id"), column(t, h, "field"), column(t, h, "stored"),
		column(t, h, "incoming"), column(t, h, "household_name"), column(t, h, "village_name")
	for _, r := range rows[1:] {
		if seen[r[id]] {
			t.Fatalf("conflict %s twice", r[id])
		}
		seen[r[id]] = true
		if r[field] == "category" && (r[stored] != "registered_poor" || r[incoming] != "disabled_poor") {
			t.Errorf("category conflict values %q %q", r[stored], r[incoming])
		}
		if r[field] == "members" && (r[stored] != "3" || r[incoming] != "4") || r[name] == "" || r[vname] != "独庄村" {
			t.Errorf("conflict row %q", r)
		}
	}
	rows = csvTable(t, getTable(t, ts, admin, "/v1/conflicts?format=csv&state=open&lang=zh", export.FormatCSV, ""))
	found := false
	for _, r := range rows[1:] {
		if r[field] == "重点对象类别" {
			found = true
			if r[stored] != "建档立卡贫困户" || r[incoming] != "贫困残疾人家庭" || r[column(t, rows[0], "状态")] != "待处理" ||
				r[column(t, rows[0], "合并规则")] != "人工裁定" {
				t.Errorf("a conflict in zh: %q", r)
			}
		}
	}
	if !found {
		t.Error("no category conflict in zh")
	}
	xl := getTable(t, ts, admin, "/v1/conflicts?format=xlsx", export.FormatXLSX, "")
	if _, sheets, _ := xlsxSheets(t, xl); len(sheets["conflicts"]) != 1+total {
		t.Errorf("the XLSX holds %d conflicts, the queue %d", len(sheets["conflicts"])-1, total)
	}
	// Another county's supervisor sees none of them.
	ts.AddUser(t, "supervisor.bairin", syncproto.RoleSupervisor, "150422")
	sup := ts.Login(t, "supervisor.bairin", uuid.NewString())
	if rows := csvTable(t, getTable(t, ts, sup, "/v1/conflicts?format=csv", export.FormatCSV, "")); len(rows) != 1 {
		t.Errorf("a supervisor of 150422 sees %d conflicts of 500240", len(rows)-1)
	}

	// Duplicates: a household registered twice with one number.
	dup1, dup2 := uuid.NewString(), uuid.NewString()
	ts.MustPush(t, a.Changeset(
		storetest.Upsert("household", dup1, 0, storetest.T0, map[string]any{"village": storetest.SouthVillage, "head_name": "谭明华", "registration_no": "0050024010700001"}),
		storetest.Upsert("household", dup2, 0, storetest.T0, map[string]any{"village": storetest.SouthVillage, "head_name": "谭明化", "registration_no": "0050024010700001"})))
	var dl struct {
		Duplicates []map[string]any `json:"duplicates"`
	}
	getReport(t, ts, admin, "/v1/duplicates", &dl)
	rows = csvTable(t, getTable(t, ts, admin, "/v1/duplicates?format=csv&lang=en", export.FormatCSV, ""))
	if len(dl.Duplicates) == 0 || len(rows) != 1+len(dl.Duplicates) {
		t.Fatalf("%d duplicates, %d rows", len(dl.Duplicates), len(rows)-1)
	}
	r := rows[1]
	if strings.Join(rows[0][:6], ",") != "Duplicate ID,Created at,State,Reason,Village,Village name" || r[2] != "Open" ||
		r[5] != "独庄村" || r[6] != dup1 || r[7] != "谭明华" || r[8] != dup2 || r[9] != "谭明化" {
		t.Fatalf("duplicates: %q", rows)
	}
	if rows := csvTable(t, getTable(t, ts, sup, "/v1/duplicates?format=csv", export.FormatCSV, "")); len(rows) != 1 {
		t.Errorf("a supervisor of 150422 sees %d duplicates of 500240", len(rows)-1)
	}
	_, sheets, _ := xlsxSheets(t, getTable(t, ts, admin, "/v1/duplicates?format=xlsx&lang=zh", export.FormatXLSX, ""))
	if len(sheets["疑似重复"]) != 2 || sheets["疑似重复"][1][2] != "待处理" {
		t.Errorf("duplicates xlsx: %v", sheets)
	}
}

// TestCoverageNamesComeFromTheRegister: the JSON coverage report's names
// (villages, areas, the region) are those of the operator's register, ""
// without one: no name is compiled into the server.
func TestCoverageNamesComeFromTheRegister(t *testing.T) {
	register := schema.Divisions{"500240": "某县", "500240107": "某镇", storetest.SouthVillage: "某村"}
	for _, c := range []struct {
		divisions               schema.Divisions
		village, township, area string
	}{{register, "某村", "某镇", "某县"}, {nil, "", "", ""}} {
		ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.Divisions = c.divisions })
		ts.MustPush(t, storetest.NewDevice("admin").Changeset(storetest.Upsert("household", uuid.NewString(), 0, storetest.T0,
			map[string]any{"village": storetest.SouthVillage, "head_name": "甲"})))
		var rep coverageBody
		getReport(t, ts, ts.Login(t, "admin", apitest.AdminDevice), "/v1/reports/coverage?region=500240107", &rep)
		if len(rep.Villages) != 1 || rep.Villages[0].Name != c.village || rep.RegionName != c.township ||
			rep.Townships[0].Name != c.township || rep.Counties[0].Name != c.area {
			t.Errorf("register %v: %+v", c.divisions, rep)
		}
	}
}
