package export_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The rows of these tests: two households of one village, one with a
// location, a line feed in its head's name and a 16-digit registration
// number with a leading zero, the other without a location and with a
// name that starts like a formula; and a housing inspection of the first.
const (
	village  = "500240107201"
	hhA, hhB = "0b6e1a4e-0000-4000-8000-00000000000a", "0b6e1a4e-0000-4000-8000-00000000000b"
	housing  = "0b6e1a4e-0000-4000-8000-0000000000c1"
	photo1   = "1111111111111111111111111111111111111111111111111111111111111111"
	photo2   = "2222222222222222222222222222222222222222222222222222222222222222"
)

var updatedAt = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

// fields are a record's fields from Go values, as the store holds them.
func fields(tb testing.TB, kv map[string]any) map[string]json.RawMessage {
	tb.Helper()
	out := map[string]json.RawMessage{}
	for k, v := range kv {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		out[k] = b
	}
	return out
}

// households are the rows of the households' snapshot.
func households(tb testing.TB) []syncproto.SnapshotRow {
	a := syncproto.StoredRecord{Entity: "household", ID: hhA, Version: 3, Village: village, UpdatedAt: updatedAt, UpdatedBy: "admin",
		Fields: fields(tb, map[string]any{"village": village, "head_name": "李\n四", "registration_no": "0050024010720101",
			"members": 4, "category": "registered_poor", "status": "lifted_out", "location": map[string]any{"lat": 29.9, "lon": 108.1}})}
	b := syncproto.StoredRecord{Entity: "household", ID: hhB, Version: 1, Village: village, UpdatedAt: updatedAt, UpdatedBy: "admin",
		Fields: fields(tb, map[string]any{"village": village, "head_name": "=HYPERLINK(\"x\")", "members": 2, "category": "disabled_poor"})}
	h := syncproto.StoredRecord{Entity: "housing_inspection", ID: housing, Version: 1, Village: village, Parent: hhA,
		Fields: fields(tb, map[string]any{"household_id": hhA, "inspected_on": "2026-11-19", "grade": "C", "renovation": "planned",
			"photos": []string{photo1, "not-a-digest", photo2}})}
	return []syncproto.SnapshotRow{
		{Record: a, Latest: map[string]*syncproto.StoredRecord{"housing_inspection": &h}},
		{Record: b},
	}
}

// encode writes rows through the encoder of req and returns the bytes and
// the encoder.
func encode(tb testing.TB, req export.SnapshotRequest, rows []syncproto.SnapshotRow) ([]byte, export.Encoder) {
	tb.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	enc := export.NewEncoder(req, schema.V1(), w)
	defer enc.Close()
	if err := enc.Begin(); err != nil {
		tb.Fatal(err)
	}
	for _, r := range rows {
		if err := enc.Row(r); err != nil {
			tb.Fatal(err)
		}
	}
	if err := enc.End(); err != nil {
		tb.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes(), enc
}

// TestNDJSONIsOneRecordPerLine: NDJSON writes each record as pull returns
// it, one per line; fields the store passed through as stored keep their
// bytes (order, unescaped <), and the format keeps its codes.
func TestNDJSONIsOneRecordPerLine(t *testing.T) {
	rows := households(t)
	raw := `{"village":"500240107201","head_name":"a<b","category":"registered_poor"}`
	rows[1].Record.Fields, rows[1].Record.RawFields = nil, json.RawMessage(raw)
	body, enc := encode(t, export.SnapshotRequest{Format: export.FormatNDJSON, Entity: "household"}, rows)
	if enc.ContentType() != "application/x-ndjson" || !enc.Streams() {
		t.Errorf("content type %q, streams %v", enc.ContentType(), enc.Streams())
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(string(body), "}\n") {
		t.Fatalf("want two lines, each ended by a line feed: %q", body)
	}
	var first syncproto.Record
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Entity != "household" || first.ID != hhA || first.Version != 3 || string(first.Fields["category"]) != `"registered_poor"` ||
		first.UpdatedAt != "2026-11-20T08:00:00.000Z" || first.UpdatedBy != "admin" {
		t.Errorf("first line %s", lines[0])
	}
	if !strings.Contains(lines[1], `"fields":`+raw) {
		t.Errorf("stored fields not passed through as stored: %s", lines[1])
	}
}

// TestCSVSnapshotBytes: the CSV Excel opens with its Chinese intact: a
// byte-order mark, CR LF after each record, a line feed inside a value
// kept a line feed, a registration number a spreadsheet would change kept
// text by a leading tab, a 12-digit village code as it is, a head's name
// that starts like a formula defused by an apostrophe; headers and enum
// values are keys and codes, or the forms' labels in zh and en.
func TestCSVSnapshotBytes(t *testing.T) {
	req := export.SnapshotRequest{Format: export.FormatCSV, Entity: "household", Lang: export.LangCodes}
	body, enc := encode(t, req, households(t))
	if enc.ContentType() != "text/csv; charset=utf-8" {
		t.Errorf("content type %q", enc.ContentType())
	}
	want := "\uFEFF" +
		"id,version,updated_at,updated_by,village,head_name,registration_no,members,category,status,location_lat,location_lon\r\n" +
		hhA + ",3,2026-11-20T08:00:00.000Z,admin," + village + ",\"李\n四\",\"\t0050024010720101\",4,registered_poor,lifted_out,29.9,108.1\r\n" +
		hhB + ",1,2026-11-20T08:00:00.000Z,admin," + village + ",\"'=HYPERLINK(\"\"x\"\")\",,2,disabled_poor,,,\r\n"
	if string(body) != want {
		t.Errorf("CSV\n%q\nwant\n%q", body, want)
	}

	for _, c := range []struct {
		lang, head, villageName, category string
	}{
		{schema.LangZH, "户主姓名", "村名", "建档立卡贫困户"},
		{schema.LangEN, "Head of household", "Village name", "Registered poor"},
	} {
		req := export.SnapshotRequest{Format: export.FormatCSV, Entity: "household", Lang: c.lang,
			Divisions: schema.Divisions{village: "独庄村"}}
		body, _ := encode(t, req, households(t))
		all, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\uFEFF")))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		header := all[0]
		if header[5] != c.villageName || header[6] != c.head || all[1][5] != "独庄村" || all[1][9] != c.category {
			t.Errorf("%s: header %q, first row %q; want %s, %s, 独庄村, %s", c.lang, header, all[1], c.villageName, c.head, c.category)
		}
	}
}

// TestGeoJSONCountsNullGeometries: every household is a feature, one
// without a location with a null geometry, counted; the latest housing
// inspection's photos are links through PhotoURL in the set's order (a
// value that is no digest left out); without PhotoURL the inspection's
// photos are null and [].
func TestGeoJSONCountsNullGeometries(t *testing.T) {
	url := func(h string) string { return "https://fs.example/v1/photos/" + h }
	req := export.SnapshotRequest{Format: export.FormatGeoJSON, Entity: "household", PhotoURL: url}
	body, enc := encode(t, req, households(t))
	if enc.ContentType() != "application/geo+json" {
		t.Errorf("content type %q", enc.ContentType())
	}
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			ID       string          `json:"id"`
			Geometry json.RawMessage `json:"geometry"`
			Props    struct {
				Grade     string   `json:"housing_grade"`
				PhotoURL  *string  `json:"housing_photo_url"`
				PhotoURLs []string `json:"housing_photo_urls"`
			} `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(body, &fc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) != 2 {
		t.Fatalf("want a FeatureCollection of 2 features: %s", body)
	}
	a, b := fc.Features[0], fc.Features[1]
	if string(a.Geometry) != `{"type":"Point","coordinates":[108.1,29.9]}` || string(b.Geometry) != "null" {
		t.Errorf("geometries %s and %s", a.Geometry, b.Geometry)
	}
	if got := enc.(export.LocationCounter).WithoutLocation(); got != 1 {
		t.Errorf("WithoutLocation %d, want 1", got)
	}
	if s := enc.Summary(); !slices.Equal(s, []any{"features", 2, "without_location", 1}) {
		t.Errorf("summary %v", s)
	}
	wantURLs := []string{url(photo1), url(photo2)}
	if a.Props.Grade != "C" || !slices.Equal(a.Props.PhotoURLs, wantURLs) || a.Props.PhotoURL == nil || *a.Props.PhotoURL != wantURLs[0] {
		t.Errorf("housing of %s: grade %q, photo %v, photos %v", a.ID, a.Props.Grade, a.Props.PhotoURL, a.Props.PhotoURLs)
	}
	if b.Props.Grade != "" || b.Props.PhotoURL != nil || b.Props.PhotoURLs != nil {
		t.Errorf("a household without an inspection: grade %q, photo %v, photos %v; want none", b.Props.Grade, b.Props.PhotoURL, b.Props.PhotoURLs)
	}

	req.PhotoURL = nil
	body, _ = encode(t, req, households(t))
	if !bytes.Contains(body, []byte(`"housing_grade":"C","housing_renovation":"planned","housing_inspected_on":"2026-11-19","housing_photo_url":null,"housing_photo_urls":[]`)) {
		t.Errorf("without PhotoURL the photos must be null and []: %s", body)
	}
}

// TestXLSXSnapshotIsByteStable: the same rows make the same workbook,
// byte for byte, its zip entries in name order; read back, its sheet
// holds the header and the rows, numbers as numbers and identifiers as
// text (the registration number's leading zero and 16 digits kept).
func TestXLSXSnapshotIsByteStable(t *testing.T) {
	req := export.SnapshotRequest{Format: export.FormatXLSX, Entity: "household", Lang: export.LangCodes}
	first, enc := encode(t, req, households(t))
	if enc.ContentType() != export.MIMEXLSX || enc.Streams() {
		t.Errorf("content type %q, streams %v", enc.ContentType(), enc.Streams())
	}
	for i := 0; i < 3; i++ {
		if again, _ := encode(t, req, households(t)); !bytes.Equal(again, first) {
			t.Fatalf("workbook %d differs from the first (%d and %d bytes)", i+2, len(again), len(first))
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

	book, err := excelize.OpenReader(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	if sheets := book.GetSheetList(); !slices.Equal(sheets, []string{"household"}) {
		t.Fatalf("sheets %v", sheets)
	}
	rows, err := book.GetRows("household")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || strings.Join(rows[0][:7], ",") != "id,version,updated_at,updated_by,village,head_name,registration_no" {
		t.Fatalf("rows %q", rows)
	}
	for cell, want := range map[string]struct {
		value string
		typ   excelize.CellType
	}{
		"A2": {hhA, excelize.CellTypeInlineString},
		"B2": {"3", excelize.CellTypeUnset}, // a number
		"E2": {village, excelize.CellTypeInlineString},
		"F2": {"李\n四", excelize.CellTypeInlineString},
		"G2": {"0050024010720101", excelize.CellTypeInlineString},
		"H2": {"4", excelize.CellTypeUnset},
		"K2": {"29.9", excelize.CellTypeUnset},
		"F3": {"=HYPERLINK(\"x\")", excelize.CellTypeInlineString}, // a string cell, never a formula
	} {
		v, _ := book.GetCellValue("household", cell)
		typ, _ := book.GetCellType("household", cell)
		if v != want.value || typ != want.typ {
			t.Errorf("%s = %q (type %v), want %q (type %v)", cell, v, typ, want.value, want.typ)
		}
	}
	if f, _ := book.GetCellFormula("household", "F3"); f != "" {
		t.Errorf("F3 is a formula %q", f)
	}
}
