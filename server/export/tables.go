package export

import (
	"bufio"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Column is one column of a report's table.
type Column struct {
	Header string
	// Text tells the CSV how to keep a cell text (keepText): the form
	// field the column shows, or a stand-in of the column's type.
	Text *schema.Field
}

// Table is one table of a report: a sheet of its XLSX, or one CSV.
type Table struct {
	Key  string // the sheet's key (and the CSV's table= name)
	Cols []Column
}

// Labels makes the columns and labels the values of a report's tables in
// one language: from the forms' labels for what is a form's field or value,
// from schema/labels/tables.json for the rest (codes: the keys and codes
// themselves).
type Labels struct {
	lang   string
	schema *schema.Schema
	tables *schema.TableLabels
	forms  *survey.Forms
}

// NewLabels returns the labels of lang (zh, en or codes) over the forms of
// sch.
func NewLabels(lang string, sch *schema.Schema) Labels {
	return Labels{lang: lang, schema: sch, tables: schema.Tables(), forms: survey.FormsOf(sch)}
}

// Lang is the labels' language.
func (l Labels) Lang() string { return l.lang }

// Forms are the forms the reports read, by their roles.
func (l Labels) Forms() *survey.Forms { return l.forms }

// Codes reports whether the tables show keys and codes rather than labels.
func (l Labels) Codes() bool { return InCodes(l.lang) }

// Field is a form's field, or nil.
func (l Labels) Field(entity, name string) *schema.Field {
	if f := l.schema.Form(entity); f != nil {
		return f.Field(name)
	}
	return nil
}

// Own is a column of the report's own, of a type (text, division_code,
// reference, integer), headed by its label.
func (l Labels) Own(key string, typ schema.FieldType) Column {
	h := key
	if !l.Codes() {
		h = l.tables.Column(key, "", l.lang)
	}
	return Column{Header: h, Text: &schema.Field{Name: key, Type: typ}}
}

// FormField is a column showing a form's field, headed by the field's
// label; a report's own column of type typ where the form lacks it.
func (l Labels) FormField(entity, name string, typ schema.FieldType) Column {
	fd := l.Field(entity, name)
	if fd == nil {
		return l.Own(name, typ)
	}
	h := name
	if !l.Codes() {
		h = fd.LabelIn(l.lang)
	}
	return Column{Header: h, Text: fd}
}

// PerValue is a count column of one value (key_value in codes), headed by
// the column's label with the value's.
func (l Labels) PerValue(key, value, valueLabel string) Column {
	h := key + "_" + value
	if !l.Codes() {
		h = l.tables.Column(key, valueLabel, l.lang)
	}
	return Column{Header: h, Text: &schema.Field{Name: h, Type: schema.TypeInteger}}
}

// FieldValue is a value of a form's enum field in the language (and the
// reports' key for a value not recorded, survey.Unset).
func (l Labels) FieldValue(entity, name, v string) string {
	if v == "" || l.Codes() {
		return v
	}
	if v == survey.Unset {
		return l.tables.Value("", v, l.lang)
	}
	if fd := l.Field(entity, name); fd != nil {
		return fd.ValueLabelIn(v, l.lang)
	}
	return v
}

// Value is a value of one of the reports' own enumerations (tables.json's
// values) in the language.
func (l Labels) Value(enum, v string) string {
	if v == "" || l.Codes() {
		return v
	}
	return l.tables.Value(enum, v, l.lang)
}

// Values labels each of vs and joins them with ';', as a set's items.
func (l Labels) Values(label func(string) string, vs []string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = label(v)
	}
	return strings.Join(out, ";")
}

// Sheet is a sheet's name in the language.
func (l Labels) Sheet(key string) string {
	if l.Codes() {
		return key
	}
	return l.tables.Sheet(key, l.lang)
}

// FieldCell is a cell holding a value of a form's field that varies by row
// (a conflict's values): the CSV keeps it text as that field's cells
// (keepText), whatever the column.
type FieldCell struct {
	Text  string
	Field *schema.Field
}

// FieldText is a value of a field as a snapshot's cell shows it (enum
// values and a set's items labelled, a set joined by ';'); a value of no
// field of the form, or a location, is its JSON.
func (l Labels) FieldText(fd *schema.Field, raw json.RawMessage) FieldCell {
	if len(raw) == 0 || string(raw) == "null" {
		return FieldCell{}
	}
	if fd == nil || fd.Type == schema.TypeLocation {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return FieldCell{Text: s}
		}
		return FieldCell{Text: string(raw)}
	}
	row := syncproto.SnapshotRow{Record: syncproto.StoredRecord{Fields: map[string]json.RawMessage{fd.Name: raw}}}
	return FieldCell{Text: cellText(tableColumn{name: fd.Name, field: fd, lang: l.lang}, &row), Field: fd}
}

// TableWriter writes the tables of a report as CSV (one of them, written
// as rows come) or XLSX (every table a sheet, written by Finish). Rows are
// cells of strings (text), ints (numbers) and FieldCells.
type TableWriter struct {
	format   string
	tables   []Table
	csvTable int // the table a CSV holds

	out   *bufio.Writer
	cw    *csvWriter
	cells []string
	book  *xlsxBook
	rows  int
}

// NewTableWriter starts the tables on out: format is FormatCSV (the table
// csvTable, after a byte-order mark and its header) or FormatXLSX (every
// table a sheet named in l's language). Close releases it.
func NewTableWriter(out *bufio.Writer, format string, l Labels, tables []Table, csvTable int) (*TableWriter, error) {
	t := &TableWriter{format: format, tables: tables, csvTable: csvTable, out: out}
	if format == FormatCSV {
		t.cw = &csvWriter{w: out}
		cols := tables[csvTable].Cols
		t.cells = make([]string, len(cols))
		for i, col := range cols {
			t.cells[i] = col.Header
		}
		if _, err := out.WriteString("\uFEFF"); err != nil {
			return t, err
		}
		return t, t.cw.Write(t.cells)
	}
	names, headers := make([]string, len(tables)), make([][]string, len(tables))
	for i, tb := range tables {
		names[i] = l.Sheet(tb.Key)
		headers[i] = make([]string, len(tb.Cols))
		for j, col := range tb.Cols {
			headers[i][j] = col.Header
		}
	}
	var err error
	t.book, err = newXLSXBook(names, headers)
	return t, err
}

// ContentType is the media type of what the writer writes.
func (t *TableWriter) ContentType() string {
	if t.format == FormatXLSX {
		return MIMEXLSX
	}
	return "text/csv; charset=utf-8"
}

// Row adds a row to table i (a CSV skips the rows of its other tables).
func (t *TableWriter) Row(i int, cells ...any) error {
	if t.book != nil {
		for j, v := range cells {
			if fc, ok := v.(FieldCell); ok {
				cells[j] = fc.Text
			}
		}
		return t.book.addRow(i, cells)
	}
	if i != t.csvTable {
		return nil
	}
	cols := t.tables[i].Cols
	for j, v := range cells {
		switch v := v.(type) {
		case int:
			t.cells[j] = strconv.Itoa(v)
		case int64:
			t.cells[j] = strconv.FormatInt(v, 10)
		case string:
			t.cells[j] = keepText(cols[j].Text, v)
		case FieldCell:
			if v.Field == nil {
				v.Field = cols[j].Text
			}
			t.cells[j] = keepText(v.Field, v.Text)
		default:
			t.cells[j] = ""
		}
	}
	if err := t.cw.Write(t.cells); err != nil {
		return err
	}
	t.rows++
	return nil
}

// CSVRows is how many rows of a CSV were written (0 for XLSX).
func (t *TableWriter) CSVRows() int { return t.rows }

// Finish writes what is left: the rest of a CSV, or the whole workbook,
// and flushes the output.
func (t *TableWriter) Finish() error {
	if t.book != nil {
		if err := t.book.writeTo(t.out); err != nil {
			return err
		}
	}
	return t.out.Flush()
}

// Close releases the workbook's temporary files.
func (t *TableWriter) Close() { t.book.close() }

// Flush sends what is buffered to the output.
func (t *TableWriter) Flush() error { return t.out.Flush() }

// StandardsText is the standards a judgement applied as one cell, joined
// by ';': each as "name=value unit (version, effective date, basis)", the
// name the standard's label in the language (its key in codes), the basis
// as the coverage report's JSON has it.
func (l Labels) StandardsText(applied []schema.AppliedStandard) string {
	out := make([]string, len(applied))
	for i, a := range applied {
		name, unit := a.Name, ""
		if st := l.schema.Standards.Standard(a.Name); st != nil {
			unit = " " + st.Unit
			if lbl := st.Labels[l.lang]; lbl != "" && !l.Codes() {
				name = lbl
			}
		}
		out[i] = name + "=" + strconv.FormatFloat(a.Value, 'f', -1, 64) + unit + " (" + a.Version + ", " + a.Effective + ", " + a.Basis + ")"
	}
	return strings.Join(out, ";")
}
