package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Encoder writes the rows of a snapshot in one format. It is the
// snapshot's writer for the HTTP answer and for fieldsync export alike.
type Encoder interface {
	// ContentType is the media type of what it writes.
	ContentType() string
	// Streams reports whether the body is written while the rows are read
	// (every format but XLSX).
	Streams() bool
	// Begin writes what comes before the first row.
	Begin() error
	// Row encodes one record.
	Row(r syncproto.SnapshotRow) error
	// End writes what comes after the last row.
	End() error
	// Close releases what the encoder holds (temporary files), whether or
	// not the snapshot completed.
	Close()
	// Summary adds log attributes to the snapshot's last log line.
	Summary() []any
}

// LocationCounter is an encoder that counts the households it wrote
// without a location (GeoJSON).
type LocationCounter interface{ WithoutLocation() int }

// NewEncoder returns the encoder of the request's format, writing to w.
func NewEncoder(req SnapshotRequest, sch *schema.Schema, w *bufio.Writer) Encoder {
	switch req.Format {
	case FormatCSV:
		return &csvEncoder{w: w, cw: &csvWriter{w: w}, schema: sch, form: sch.Form(req.Entity), lang: req.Lang, names: req.Divisions}
	case FormatGeoJSON:
		f := survey.FormsOf(sch)
		return &geojsonEncoder{w: w, forms: f, water: f.Water, judge: survey.NewWaterJudge(sch), photoURL: req.PhotoURL}
	case FormatXLSX:
		return &xlsxEncoder{w: w, schema: sch, entities: req.Entities(sch), lang: req.Lang, names: req.Divisions}
	}
	return &ndjsonEncoder{w: w}
}

// ndjsonEncoder writes one protocol Record (as pull returns it) per line,
// through Record.AppendJSON (the fields as stored, when the store passed
// them through).
type ndjsonEncoder struct {
	w   io.Writer
	buf []byte
}

func (e *ndjsonEncoder) ContentType() string { return "application/x-ndjson" }
func (e *ndjsonEncoder) Streams() bool       { return true }
func (e *ndjsonEncoder) Begin() error        { return nil }
func (e *ndjsonEncoder) Row(r syncproto.SnapshotRow) error {
	rec := syncproto.WireRecord(&r.Record)
	b, err := rec.AppendJSON(e.buf[:0])
	if err != nil {
		return err
	}
	e.buf = append(b, '\n')
	_, err = e.w.Write(e.buf)
	return err
}
func (e *ndjsonEncoder) End() error     { return nil }
func (e *ndjsonEncoder) Close()         {}
func (e *ndjsonEncoder) Summary() []any { return nil }

// tableColumn is one column of a CSV file or an XLSX sheet: a record's own
// column (id, version, updated_at, updated_by) when field is nil, otherwise
// a form field; a location is two columns, part "lat" and "lon".
type tableColumn struct {
	name  string
	field *schema.Field
	part  string
	lang  string // zh, en, or codes (or "") for keys and codes
	// village is the column of the record's village (an inspection's is
	// its household's); fromParent takes field from the parent record
	// (the household's head on an inspection row).
	village, fromParent bool
	// names is the division register of a village_name column (the
	// village's name, or its code where the register has none).
	names schema.Divisions
}

// tableColumns are the columns of a form's table, in a stable order: the
// record's own, then every field in schema order.
//
// A form with a parent (an inspection) gets, after its parent field, the
// parent's village and head_name (when the parent form has those fields),
// so that an inspection row says where and whose.
//
// A labelled table (lang zh or en) has after the village a village_name
// column, from names.
func tableColumns(sch *schema.Schema, form *schema.Form, lang string, names schema.Divisions) []tableColumn {
	labelled := !InCodes(lang)
	nameCol := tableColumn{name: "village_name", lang: lang, names: names}
	cols := []tableColumn{{name: "id", lang: lang}, {name: "version", lang: lang}, {name: "updated_at", lang: lang},
		{name: "updated_by", lang: lang}}
	var parent *schema.Form
	if form.Parent != nil {
		parent = sch.Form(form.Parent.Entity)
	}
	for i := range form.Fields {
		fd := &form.Fields[i]
		if parent != nil && fd.Name == form.Parent.Field {
			cols = append(cols, tableColumn{name: fd.Name, field: fd, lang: lang})
			if v := parent.Field(parent.ScopeField); v != nil && form.Field(v.Name) == nil {
				cols = append(cols, tableColumn{name: v.Name, field: v, lang: lang, village: true})
				if labelled {
					cols = append(cols, nameCol)
				}
			}
			if h := parent.Field("head_name"); h != nil && form.Field(h.Name) == nil {
				cols = append(cols, tableColumn{name: h.Name, field: h, lang: lang, fromParent: true})
			}
			continue
		}
		if fd.Type == schema.TypeLocation {
			cols = append(cols, tableColumn{name: fd.Name + "_lat", field: fd, part: "lat", lang: lang},
				tableColumn{name: fd.Name + "_lon", field: fd, part: "lon", lang: lang})
			continue
		}
		cols = append(cols, tableColumn{name: fd.Name, field: fd, lang: lang})
		if labelled && fd.Name == form.ScopeField && fd.Type == schema.TypeDivisionCode {
			cols = append(cols, nameCol)
		}
	}
	return cols
}

// columnHeaders are the header row: keys, or labels in the columns'
// language.
func columnHeaders(cols []tableColumn) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.header()
	}
	return out
}

// location is a location field's value, its numbers kept as written.
type location struct {
	Lat json.Number `json:"lat"`
	Lon json.Number `json:"lon"`
}

// cellText renders one cell of a record as text: strings as they are,
// numbers in their canonical JSON form, booleans true or false, a set's
// items joined by ';', a location's latitude or longitude, and the empty
// string for an absent field.
func cellText(c tableColumn, row *syncproto.SnapshotRow) string {
	rec := &row.Record
	switch {
	case c.name == "village_name" && c.field == nil:
		return c.names.Name(rec.Village)
	case c.village:
		return rec.Village
	case c.fromParent:
		if row.Parent == nil {
			return ""
		}
		rec = row.Parent
	}
	if c.field == nil {
		switch c.name {
		case "id":
			return rec.ID
		case "version":
			return strconv.FormatInt(rec.Version, 10)
		case "updated_at":
			if rec.UpdatedAt.IsZero() {
				return ""
			}
			return syncproto.FormatTime(rec.UpdatedAt)
		default:
			return rec.UpdatedBy
		}
	}
	raw, ok := rec.Fields[c.field.Name]
	if !ok || string(raw) == "null" {
		return ""
	}
	switch c.field.Type {
	case schema.TypeInteger, schema.TypeNumber, schema.TypeBoolean:
		return string(raw)
	case schema.TypeSet:
		var items []string
		if json.Unmarshal(raw, &items) != nil {
			return string(raw)
		}
		if len(c.field.Values) > 0 {
			for i := range items {
				items[i] = c.valueLabel(items[i])
			}
		}
		return strings.Join(items, ";")
	case schema.TypeLocation:
		var loc location
		if json.Unmarshal(raw, &loc) != nil {
			return ""
		}
		if c.part == "lat" {
			return loc.Lat.String()
		}
		return loc.Lon.String()
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return string(raw)
	}
	if c.field.Type == schema.TypeEnum {
		return c.valueLabel(s)
	}
	return s
}

// csvEncoder writes a CSV file that Excel opens with its Chinese text
// intact: UTF-8 with a byte-order mark, CRLF record ends, a header row;
// values byte for byte (a line feed in a value stays one), text that a
// spreadsheet would take for a number or a formula kept text (keepText).
type csvEncoder struct {
	w      io.Writer
	cw     *csvWriter
	schema *schema.Schema
	form   *schema.Form
	lang   string
	names  schema.Divisions
	cols   []tableColumn
	cell   []string
}

func (e *csvEncoder) ContentType() string { return "text/csv; charset=utf-8" }
func (e *csvEncoder) Streams() bool       { return true }

func (e *csvEncoder) Begin() error {
	if _, err := io.WriteString(e.w, "\uFEFF"); err != nil {
		return err
	}
	e.cols = tableColumns(e.schema, e.form, e.lang, e.names)
	e.cell = make([]string, len(e.cols))
	return e.cw.Write(columnHeaders(e.cols))
}

func (e *csvEncoder) Row(r syncproto.SnapshotRow) error {
	for i, c := range e.cols {
		e.cell[i] = keepText(c.field, cellText(c, &r))
	}
	return e.cw.Write(e.cell)
}

// defuseFormula keeps a spreadsheet from running typed text as a formula
// (CSV injection): text starting with = + - @ or a tab or carriage return
// gets a leading apostrophe, which Excel shows as text.
func defuseFormula(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (e *csvEncoder) End() error     { return nil }
func (e *csvEncoder) Close()         {}
func (e *csvEncoder) Summary() []any { return nil }

// geojsonEncoder writes households as a GeoJSON FeatureCollection of
// Points, with their latest housing grade, its photos' URLs and water
// safety as properties. A household without a location is a feature with
// a null geometry (RFC 7946, 3.2), so that the map's table holds every
// household, the newest (registered before anyone stood at the house with
// a GPS) included; they are counted (withoutLocation).
type geojsonEncoder struct {
	w         io.Writer
	forms     *survey.Forms
	water     *schema.Form
	judge     *survey.WaterJudge
	photoURL  func(string) string
	features  int
	unlocated int
	buf       bytes.Buffer
}

// WithoutLocation is the count of households written with a null geometry.
func (e *geojsonEncoder) WithoutLocation() int { return e.unlocated }

// geoFeature is one household as a GeoJSON Feature.
type geoFeature struct {
	Type       string              `json:"type"`
	ID         string              `json:"id"`
	Geometry   *geoPoint           `json:"geometry"`
	Properties householdProperties `json:"properties"`
}

// geoPoint is a GeoJSON Point: [longitude, latitude] (WGS 84).
type geoPoint struct {
	Type        string         `json:"type"`
	Coordinates [2]json.Number `json:"coordinates"`
}

// householdProperties are a household feature's properties; an absent
// value is null.
type householdProperties struct {
	ID                 string          `json:"id"`
	Version            int64           `json:"version"`
	Village            string          `json:"village"`
	HeadName           json.RawMessage `json:"head_name"`
	Category           json.RawMessage `json:"category"`
	Status             json.RawMessage `json:"status"`
	Members            json.RawMessage `json:"members"`
	RegistrationNo     json.RawMessage `json:"registration_no"`
	HousingGrade       json.RawMessage `json:"housing_grade"`
	HousingRenovation  json.RawMessage `json:"housing_renovation"`
	HousingInspectedOn json.RawMessage `json:"housing_inspected_on"`
	HousingPhotoURL    *string         `json:"housing_photo_url"`
	HousingPhotoURLs   []string        `json:"housing_photo_urls"`
	WaterSafe          *bool           `json:"water_safe"`
	WaterFailures      []string        `json:"water_failures"`
	WaterUnrecorded    []string        `json:"water_unrecorded"`
	WaterInspectedOn   json.RawMessage `json:"water_inspected_on"`
}

func (e *geojsonEncoder) ContentType() string { return "application/geo+json" }
func (e *geojsonEncoder) Streams() bool       { return true }

func (e *geojsonEncoder) Begin() error {
	_, err := io.WriteString(e.w, `{"type":"FeatureCollection","features":[`)
	return err
}

func (e *geojsonEncoder) Row(r syncproto.SnapshotRow) error {
	rec := &r.Record
	var loc location
	var point *geoPoint
	if raw, ok := rec.Fields["location"]; !ok || json.Unmarshal(raw, &loc) != nil || loc.Lat == "" || loc.Lon == "" {
		e.unlocated++
	} else {
		point = &geoPoint{Type: "Point", Coordinates: [2]json.Number{loc.Lon, loc.Lat}}
	}
	f := geoFeature{Type: "Feature", ID: rec.ID, Geometry: point,
		Properties: householdProperties{ID: rec.ID, Version: rec.Version, Village: rec.Village,
			HeadName: rec.Fields["head_name"], Category: rec.Fields["category"], Status: rec.Fields["status"],
			Members: rec.Fields["members"], RegistrationNo: rec.Fields["registration_no"]}}
	if h := r.Latest[e.forms.Entity(survey.KindHousing)]; h != nil {
		f.Properties.HousingGrade = h.Fields[e.forms.Grade]
		f.Properties.HousingRenovation = h.Fields[e.forms.Renovation]
		f.Properties.HousingInspectedOn = h.Fields[e.forms.HousingDate]
		f.Properties.HousingPhotoURL, f.Properties.HousingPhotoURLs = photoURLs(h.Fields[syncproto.PhotosField], e.photoURL)
	}
	if w := r.Latest[e.forms.Entity(survey.KindWater)]; w != nil && e.water != nil {
		// A snapshot judges its latest water inspections as of today.
		verdict := e.judge.Judge(w.Fields, rec.Village, time.Time{})
		safe := verdict.Safe()
		f.Properties.WaterSafe, f.Properties.WaterFailures, f.Properties.WaterUnrecorded = &safe, verdict.Failing, verdict.Unrecorded
		f.Properties.WaterInspectedOn = w.Fields[e.forms.WaterDate]
	}
	e.buf.Reset()
	if e.features > 0 {
		e.buf.WriteByte(',')
	}
	e.buf.WriteByte('\n')
	enc := json.NewEncoder(&e.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		return err
	}
	e.features++
	_, err := e.w.Write(bytes.TrimRight(e.buf.Bytes(), "\n"))
	return err
}

// photoURLs are the download URLs of the photos of a set field, in the
// set's order (by digest: a set records no order of taking), and the
// first of them; nil and an empty list without photos.
func photoURLs(raw json.RawMessage, photoURL func(string) string) (*string, []string) {
	var hashes []string
	urls := []string{}
	if photoURL != nil && len(raw) > 0 && json.Unmarshal(raw, &hashes) == nil {
		for _, h := range hashes {
			if syncproto.ValidSHA256(h) {
				urls = append(urls, photoURL(h))
			}
		}
	}
	if len(urls) == 0 {
		return nil, urls
	}
	return &urls[0], urls
}

func (e *geojsonEncoder) End() error {
	_, err := io.WriteString(e.w, "\n]}\n")
	return err
}
func (e *geojsonEncoder) Close() {}
func (e *geojsonEncoder) Summary() []any {
	return []any{"features", e.features, "without_location", e.unlocated}
}

// xlsxEncoder writes a workbook with one sheet per entity, named by the
// entity, through xlsxBook (excelize's StreamWriter, spooled, zipped in
// name order straight into the response). An XLSX sheet holds at most
// 1,048,575 records; a larger one is refused (use CSV).
type xlsxEncoder struct {
	w        io.Writer
	schema   *schema.Schema
	entities []string
	lang     string
	names    schema.Divisions
	book     *xlsxBook
	sheets   map[string]int           // the sheet of each entity
	cols     map[string][]tableColumn // the columns of each entity
	cells    []any
}

func (e *xlsxEncoder) ContentType() string { return MIMEXLSX }
func (e *xlsxEncoder) Streams() bool       { return false }

func (e *xlsxEncoder) Begin() error {
	e.sheets, e.cols = map[string]int{}, map[string][]tableColumn{}
	headers := make([][]string, len(e.entities))
	for i, entity := range e.entities {
		e.sheets[entity] = i
		e.cols[entity] = tableColumns(e.schema, e.schema.Form(entity), e.lang, e.names)
		headers[i] = columnHeaders(e.cols[entity])
	}
	var err error
	e.book, err = newXLSXBook(sheetNames(e.schema, e.entities, e.lang), headers)
	return err
}

func (e *xlsxEncoder) Row(r syncproto.SnapshotRow) error {
	i, ok := e.sheets[r.Record.Entity]
	if !ok {
		return fmt.Errorf("xlsx: a %s row without its sheet", r.Record.Entity)
	}
	e.cells = e.cells[:0]
	for _, c := range e.cols[r.Record.Entity] {
		e.cells = append(e.cells, cellValue(c, &r))
	}
	return e.book.addRow(i, e.cells)
}

// cellValue is a typed XLSX cell: numbers and booleans as such (so that
// they sum and filter), everything else as cellText; nil for an absent
// field.
func cellValue(c tableColumn, row *syncproto.SnapshotRow) any {
	if c.field == nil && c.name == "version" {
		return row.Record.Version
	}
	text := cellText(c, row)
	if c.field == nil || text == "" {
		return text
	}
	switch c.field.Type {
	case schema.TypeInteger, schema.TypeNumber, schema.TypeLocation:
		if x, err := strconv.ParseFloat(text, 64); err == nil {
			return x
		}
	case schema.TypeBoolean:
		return text == "true"
	}
	return text
}

func (e *xlsxEncoder) End() error { return e.book.writeTo(e.w) }
func (e *xlsxEncoder) Close()     { e.book.close() }

func (e *xlsxEncoder) Summary() []any { return nil }
