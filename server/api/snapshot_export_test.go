package api_test

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
)

// TestSnapshotXLSXIsByteStable downloads the workbook of every entity at
// one as_of several times: the bytes must be the same each time, and its
// entries in name order (excelize alone wrote the streamed sheets in map
// order).
func TestSnapshotXLSXIsByteStable(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	pushSurvey(t, ts)
	resp, first := ts.Snapshot(t, admin, "format=xlsx")
	asOf := resp.Header.Get("X-Snapshot-Cursor")
	pushSurvey(t, ts) // later changes: as_of must still give the same file
	for i := 0; i < 8; i++ {
		_, body := ts.Snapshot(t, admin, "format=xlsx&as_of="+asOf)
		if i == 0 {
			first = body
			continue
		}
		if !bytes.Equal(body, first) {
			t.Fatalf("download %d differs from the first (%d and %d bytes)", i+1, len(body), len(first))
		}
	}
	zr, err := zip.NewReader(bytes.NewReader(first), int64(len(first)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(zr.File); i++ {
		if zr.File[i-1].Name >= zr.File[i].Name {
			t.Fatalf("entries out of order: %s before %s", zr.File[i-1].Name, zr.File[i].Name)
		}
	}
}

// TestSnapshotCSVValuesAreByteExact reads the CSV's bytes: a line feed
// inside a value stays a line feed (encoding/csv with UseCRLF wrote CR LF),
// records end in CR LF, and identifiers that look like numbers start with
// a tab so that spreadsheets keep them text, leading zeros and all 16
// digits; in the XLSX they are string cells.
func TestSnapshotCSVValuesAreByteExact(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	id := uuid.NewString()
	ts.MustPush(t, storetest.NewDevice("admin").Changeset(storetest.Upsert("household", id, 0, storetest.T0,
		map[string]any{"village": storetest.SouthVillage, "head_name": "李\n四", "registration_no": "0050024010720101"})))

	_, body := ts.Snapshot(t, admin, "entity=household&format=csv")
	if !bytes.Contains(body, []byte("\"李\n四\"")) || bytes.Contains(body, []byte("李\r\n四")) {
		t.Errorf("the line feed of 李\\n四 is not kept: %q", body)
	}
	if want := "\"\t0050024010720101\""; !bytes.Contains(body, []byte(want)) {
		t.Errorf("registration number not kept text (%q): %q", want, body)
	}
	// A 12-digit village code reads back as the same digits: it stays as
	// it is, for scripts that join on codes.
	if want := "," + storetest.SouthVillage + ","; !bytes.Contains(body, []byte(want)) {
		t.Errorf("village code changed (%q): %q", want, body)
	}
	lines := bytes.Split(bytes.TrimSuffix(body, []byte("\r\n")), []byte("\r\n"))
	if len(lines) != 2 || !bytes.HasSuffix(body, []byte("\r\n")) {
		t.Errorf("want a header and one record, each ended by CR LF: %q", body)
	}

	_, body = ts.Snapshot(t, admin, "entity=household&format=xlsx")
	book, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	for cell, want := range map[string]string{"E2": storetest.SouthVillage, "G2": "0050024010720101", "F2": "李\n四"} {
		v, _ := book.GetCellValue("household", cell)
		typ, _ := book.GetCellType("household", cell)
		if v != want || typ != excelize.CellTypeInlineString {
			t.Errorf("XLSX %s = %q (type %v), want the string %q", cell, v, typ, want)
		}
	}
}

// TestWaterVerdictIsOneJudgement pushes a water inspection that records
// no measurement: the GeoJSON and the coverage report must both call its
// four indicators unrecorded, none failing, and the water not safe.
func TestWaterVerdictIsOneJudgement(t *testing.T) {
	ts := mustServeV1(t, nil) // version 1's four indicators (TestWaterCriteriaVerdictIsOneJudgement: version 2's)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	hh, water := uuid.NewString(), uuid.NewString()
	ts.MustPush(t, storetest.NewDevice("admin").Changeset(
		storetest.Upsert("household", hh, 0, storetest.T0, map[string]any{"village": storetest.SouthVillage, "head_name": "谭明华"}),
		storetest.Upsert("water_inspection", water, 0, storetest.T0, map[string]any{"household_id": hh, "inspected_on": "2026-11-20"})))
	all := `["fetch_minutes","liters_per_person_day","quality_ok","reliability_pct"]`

	_, body := ts.Snapshot(t, admin, "format=geojson")
	_, props := geojsonFeatures(t, body)
	failures, _ := json.Marshal(props[hh]["water_failures"])
	unrecorded, _ := json.Marshal(props[hh]["water_unrecorded"])
	if props[hh]["water_safe"] != false || string(failures) != `[]` || string(unrecorded) != all {
		t.Errorf("GeoJSON: water_safe %v, water_failures %s, water_unrecorded %s; want false, [], %s",
			props[hh]["water_safe"], failures, unrecorded, all)
	}

	resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/coverage?region="+storetest.SouthVillage, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("coverage: %d %s", resp.StatusCode, body)
	}
	var cov struct {
		Totals survey.CoverageCounts `json:"totals"`
	}
	if err := json.Unmarshal(body, &cov); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"fetch_minutes", "liters_per_person_day", "quality_ok", "reliability_pct"} {
		if cov.Totals.WaterFailing[k] != 0 || cov.Totals.WaterUnrecorded[k] != 1 {
			t.Errorf("coverage %s: failing %d, unrecorded %d; want 0, 1", k, cov.Totals.WaterFailing[k], cov.Totals.WaterUnrecorded[k])
		}
	}
	if cov.Totals.WaterUnsafe != 1 {
		t.Errorf("coverage water_unsafe %d, want 1", cov.Totals.WaterUnsafe)
	}
}

// TestSnapshotLanguages asks for the CSV and XLSX in Chinese and English,
// by lang and by Accept-Language: headers and enum values are the schema's
// labels; without either they stay keys and codes, as does NDJSON always.
func TestSnapshotLanguages(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	f := pushSurvey(t, ts)
	get := func(query, acceptLanguage string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/snapshot?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		if acceptLanguage != "" {
			req.Header.Set("Accept-Language", acceptLanguage)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp, b.Bytes()
	}
	for _, c := range []struct {
		query, acceptLanguage, head, category, hazards string
	}{
		{"lang=zh", "", "户主姓名", "建档立卡贫困户", "屋顶;墙体"},
		{"lang=en", "zh-CN", "Head of household", "Registered poor", "Roof;Walls"},
		{"", "zh-CN,zh;q=0.9,en;q=0.8", "户主姓名", "建档立卡贫困户", "屋顶;墙体"},
		{"", "en-GB,en;q=0.9", "Head of household", "Registered poor", "Roof;Walls"},
		{"", "fr-FR", "Head of household", "Registered poor", "Roof;Walls"},
		{"", "", "head_name", "registered_poor", "roof;walls"},
		{"lang=codes", "zh-CN", "head_name", "registered_poor", "roof;walls"},
	} {
		resp, body := get("entity=household&format=csv&"+c.query, c.acceptLanguage)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("?%s: %d %s", c.query, resp.StatusCode, body)
		}
		all, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xEF\xBB\xBF")))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		// The category is three columns after the head of household.
		head := -1
		for i, h := range all[0] {
			if h == c.head {
				head = i
			}
		}
		if head < 0 {
			t.Errorf("?%s Accept-Language %q: header %v lacks %q", c.query, c.acceptLanguage, all[0], c.head)
			continue
		}
		for _, r := range all[1:] {
			if r[0] == f.tan && r[head+3] != c.category {
				t.Errorf("?%s Accept-Language %q: category of tan %q, want %q", c.query, c.acceptLanguage, r[head+3], c.category)
			}
		}
		_, body = get("entity=housing_inspection&format=csv&"+c.query, c.acceptLanguage)
		if !bytes.Contains(body, []byte(","+c.hazards+",")) {
			t.Errorf("?%s Accept-Language %q: hazards %q not in %s", c.query, c.acceptLanguage, c.hazards, body)
		}
	}

	_, body := get("format=xlsx&entity=household&lang=zh", "")
	book, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	// The sheet is named by the form's title in the language.
	if got := book.GetSheetList(); len(got) != 1 || got[0] != "农户" {
		t.Errorf("XLSX sheets %v, want 农户", got)
	}
	if h, _ := book.GetCellValue("农户", "G1"); h != "户主姓名" {
		t.Errorf("XLSX header G1 %q, want 户主姓名", h)
	}
	if h, _ := book.GetCellValue("农户", "L1"); h != "位置（纬度）" {
		t.Errorf("XLSX header L1 %q, want 位置（纬度）", h)
	}

	_, body = get("format=ndjson&entity=household&lang=zh", "zh-CN")
	if !bytes.Contains(body, []byte(`"categories":["registered_poor"]`)) {
		t.Errorf("NDJSON must keep its codes: %s", body)
	}
	resp, body := get("format=csv&entity=household&lang=fr", "")
	if resp.StatusCode != http.StatusUnprocessableEntity || !bytes.Contains(body, []byte(`"query.lang"`)) {
		t.Errorf("lang=fr: %d %s", resp.StatusCode, body)
	}
}

// TestInspectionRowsNameTheirHousehold reads the inspections' CSV and XLSX:
// each row carries its household's village and head, the head as of the
// snapshot's point (as_of gives the name before a later edit).
func TestInspectionRowsNameTheirHousehold(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	f := pushSurvey(t, ts)
	resp, _ := ts.Snapshot(t, admin, "entity=household")
	before := resp.Header.Get("X-Snapshot-Cursor")
	ts.MustPush(t, storetest.NewDevice("admin").Changeset(
		storetest.Upsert("household", f.tan, 1, storetest.T0.Add(time.Hour), map[string]any{"head_name": "谭明"})))

	for query, head := range map[string]string{"": "谭明", "&as_of=" + url.QueryEscape(before): "谭明华"} {
		_, body := ts.Snapshot(t, admin, "entity=housing_inspection&format=csv"+query)
		header, rows := readCSV(t, body)
		if strings.Join(header[4:7], ",") != "household_id,village,head_name" {
			t.Fatalf("header %v", header)
		}
		for _, id := range []string{f.housingOld, f.housingNew} {
			if r := rows[id]; r["village"] != storetest.SouthVillage || r["head_name"] != head || r["household_id"] != f.tan {
				t.Errorf("?%s: inspection %s: %v, want village %s, head %s", query, id, r, storetest.SouthVillage, head)
			}
		}
	}
	_, body := ts.Snapshot(t, admin, "format=xlsx&lang=zh")
	book, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	if got := strings.Join(book.GetSheetList(), ","); got != "防返贫监测走访,农户,农村住房安全鉴定,家庭成员,农村饮水安全核查" {
		t.Fatalf("XLSX sheets %s, want the forms' titles in zh", got)
	}
	rows, _ := book.GetRows("农村饮水安全核查")
	if strings.Join(rows[0][4:8], ",") != "农户,村,村名,户主姓名" {
		t.Fatalf("XLSX header %v", rows[0])
	}
	for _, r := range rows[1:] {
		if r[0] == f.northWater && (r[5] != storetest.NorthVillage || r[6] != storetest.NorthVillage || r[7] != "巴特尔") {
			t.Errorf("XLSX row %v", r)
		}
	}
}

// TestDivisionRegister loads the demo's register (it names every region of
// the fixtures), refuses bad registers with their line, and names the
// villages of a labelled CSV from it; a village it lacks stays its code,
// and a table in codes has no name column.
func TestDivisionRegister(t *testing.T) {
	demo, err := schema.LoadDivisions("../../fixtures/divisions-demo.csv")
	if err != nil {
		t.Fatal(err)
	}
	regions := fixtures.Regions()
	if len(demo) != len(regions) {
		t.Errorf("the demo register has %d regions, the fixtures %d", len(demo), len(regions))
	}
	for _, r := range regions {
		if demo[r.Code] != r.Name {
			t.Errorf("register %s = %q, fixtures %q", r.Code, demo[r.Code], r.Name)
		}
	}
	dir := t.TempDir()
	for body, want := range map[string]string{
		"code,name\r\n5002,a\r\n50024,\r\n": "line 3: no name",
		"code,name\r\n50x,a\r\n":            "line 2: the code must be 2 to 12 digits",
		"code,name\r\n50,a\r\n50,b\r\n":     "line 3: 50 is named twice",
		"id,label\r\n50,a\r\n":              "line 1: the header must be code,name",
		"\uFEFFcode,name\r\n500240,石柱\r\n":  "",
	} {
		path := filepath.Join(dir, "d.csv")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := schema.LoadDivisions(path)
		if (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}

	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(c *api.Config) { c.Divisions = demo })
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	known, unknown := uuid.NewString(), uuid.NewString()
	ts.MustPush(t, storetest.NewDevice("admin").Changeset(
		storetest.Upsert("household", known, 0, storetest.T0, map[string]any{"village": storetest.SouthVillage, "head_name": "甲"}),
		storetest.Upsert("household", unknown, 0, storetest.T0, map[string]any{"village": "500240199201", "head_name": "乙"})))
	_, body := ts.Snapshot(t, admin, "entity=household&format=csv&lang=zh")
	all, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xEF\xBB\xBF")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if all[0][5] != "村名" {
		t.Fatalf("header %v", all[0])
	}
	for _, r := range all[1:] {
		if want := map[string]string{known: "独庄村", unknown: "500240199201"}[r[0]]; r[5] != want {
			t.Errorf("village name of %s: %q, want %q", r[0], r[5], want)
		}
	}
	_, body = ts.Snapshot(t, admin, "entity=household&format=csv")
	if header, _ := readCSV(t, body); strings.Contains(strings.Join(header, ","), "village_name") {
		t.Errorf("a table in codes has a name column: %v", header)
	}
}
