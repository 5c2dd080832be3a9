package server

import (
	"bufio"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The formats of the reports and lists (format=): JSON, the default, or a
// table for spreadsheets.
const formatJSON = "json"

// reportFormat is the format= and lang= of a report or list: json (the
// default), csv or xlsx, and the language of a table's headers and values
// (tableLang, as snapshots take it; JSON ignores it).
type reportFormat struct {
	format, lang string
}

// tabular reports whether the answer is a table (CSV or XLSX).
func (f reportFormat) tabular() bool { return f.format != formatJSON }

// parseReportFormat reads format= and lang=: 422 at query.format or
// query.lang for a value it does not know.
func parseReportFormat(c echo.Context) (reportFormat, []syncproto.FieldError) {
	f := reportFormat{format: strings.TrimSpace(c.QueryParam("format"))}
	var errs []syncproto.FieldError
	switch f.format {
	case "":
		f.format = formatJSON
	case formatJSON, formatCSV, formatXLSX:
	default:
		errs = append(errs, syncproto.FieldError{Path: "query.format", Message: "must be one of json, csv, xlsx"})
	}
	lang, fe := tableLang(c.QueryParam("lang"), c.Request().Header.Get("Accept-Language"))
	if fe != nil {
		errs = append(errs, *fe)
	}
	f.lang = lang
	return f, errs
}

// invalidReport is the 422 of a report's parameters.
func invalidReport(errs []syncproto.FieldError) error {
	return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid report request",
		Message: "the report's parameters are invalid", Errors: errs}
}

// reportColumn is one column of a report's table.
type reportColumn struct {
	header string
	// text tells the CSV how to keep a cell text (keepText): the form
	// field the column shows, or a stand-in of the column's type.
	text *schema.Field
}

// reportTable is one table of a report: a sheet of its XLSX, or one CSV.
type reportTable struct {
	key  string // the sheet's key (and the CSV's table= name)
	cols []reportColumn
}

// reportLabels makes the columns and labels the values of a report's
// tables in one language: from the forms' labels for what is a form's field
// or value, from schema/labels/tables.json for the rest (codes: the keys
// and codes themselves).
type reportLabels struct {
	lang   string
	schema *schema.Schema
	tables *schema.TableLabels
}

func (s *Server) reportLabels(lang string) reportLabels {
	return reportLabels{lang: lang, schema: s.schema, tables: schema.Tables()}
}

func (l reportLabels) codes() bool { return inCodes(l.lang) }

// field is a form's field, or nil.
func (l reportLabels) field(entity, name string) *schema.Field {
	if f := l.schema.Form(entity); f != nil {
		return f.Field(name)
	}
	return nil
}

// own is a column of the report's own, of a type (text, division_code,
// reference, integer), headed by its label.
func (l reportLabels) own(key string, typ schema.FieldType) reportColumn {
	h := key
	if !l.codes() {
		h = l.tables.Column(key, "", l.lang)
	}
	return reportColumn{header: h, text: &schema.Field{Name: key, Type: typ}}
}

// formField is a column showing a form's field, headed by the field's
// label; a report's own column of type typ where the form lacks it.
func (l reportLabels) formField(entity, name string, typ schema.FieldType) reportColumn {
	fd := l.field(entity, name)
	if fd == nil {
		return l.own(name, typ)
	}
	h := name
	if !l.codes() {
		h = fd.LabelIn(l.lang)
	}
	return reportColumn{header: h, text: fd}
}

// perValue is a count column of one value (key_value in codes), headed by
// the column's label with the value's.
func (l reportLabels) perValue(key, value, valueLabel string) reportColumn {
	h := key + "_" + value
	if !l.codes() {
		h = l.tables.Column(key, valueLabel, l.lang)
	}
	return reportColumn{header: h, text: &schema.Field{Name: h, Type: schema.TypeInteger}}
}

// fieldValue is a value of a form's enum field in the language.
func (l reportLabels) fieldValue(entity, name, v string) string {
	if v == "" || l.codes() {
		return v
	}
	if v == survey.Unset {
		return l.tables.Value("", v, l.lang)
	}
	if fd := l.field(entity, name); fd != nil {
		return fd.ValueLabelIn(v, l.lang)
	}
	return v
}

// value is a value of one of the reports' own enumerations (tables.json's
// values) in the language.
func (l reportLabels) value(enum, v string) string {
	if v == "" || l.codes() {
		return v
	}
	return l.tables.Value(enum, v, l.lang)
}

// values labels each of vs and joins them with ';', as a set's items.
func (l reportLabels) values(label func(string) string, vs []string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = label(v)
	}
	return strings.Join(out, ";")
}

// sheet is a sheet's name in the language.
func (l reportLabels) sheet(key string) string {
	if l.codes() {
		return key
	}
	return l.tables.Sheet(key, l.lang)
}

// regionFileName is the region part of a download's name: the region
// asked for, else the caller's single scope, else "all".
func regionFileName(actor syncproto.Actor, region string) string {
	if region != "" {
		return region
	}
	if !actor.AllRegions && len(actor.Scope) == 1 {
		return actor.Scope[0]
	}
	return "all"
}

// reportOutput writes the tables of a report as CSV (one of them, streamed
// as rows come) or XLSX (every table a sheet, sent once complete). Rows
// are cells of strings (text) and ints (numbers). Nothing reaches the
// client before the first 64 KiB of a CSV, or the end of an XLSX, so that
// an error before then is still a problem response; after it the
// connection is cut.
type reportOutput struct {
	s        *Server
	c        echo.Context
	format   string
	tables   []reportTable
	csvTable int // the table a CSV holds
	fileName string

	out   *bufio.Writer
	cw    *csvWriter
	cells []string
	book  *xlsxBook
	rows  int
	user  string // the user whose snapshot slot the table holds, once taken
}

// newReportOutput starts the answer; fileName is without its extension.
// A table is bounded as a snapshot is (snapshot_slots.go): it takes one
// of its user's snapshot slots (Config.SnapshotsPerUser, shared with
// their snapshots; 429 beyond), and its client must read at
// Config.SnapshotMinRate on average (rateBoundWriter), so that one slow
// reader cannot hold a read of the store for long. close gives the slot
// back.
func (s *Server) newReportOutput(c echo.Context, f reportFormat, l reportLabels, tables []reportTable, csvTable int, fileName string) (*reportOutput, error) {
	o := &reportOutput{s: s, c: c, format: f.format, tables: tables, csvTable: csvTable, fileName: fileName + "." + f.format}
	user := s.actor(c).UserID
	if !s.snapshotsByUser.acquire(user) {
		return o, tooManyUserSnapshots(s.snapshotsByUser.max)
	}
	o.user = user
	o.out = bufio.NewWriterSize(s.paced(c, &reportResponse{o: o}), 64<<10)
	if f.format == formatCSV {
		o.cw = &csvWriter{w: o.out}
		cols := tables[csvTable].cols
		o.cells = make([]string, len(cols))
		for i, col := range cols {
			o.cells[i] = col.header
		}
		if _, err := o.out.WriteString("\uFEFF"); err != nil {
			return o, err
		}
		return o, o.cw.Write(o.cells)
	}
	names, headers := make([]string, len(tables)), make([][]string, len(tables))
	for i, t := range tables {
		names[i] = l.sheet(t.key)
		headers[i] = make([]string, len(t.cols))
		for j, col := range t.cols {
			headers[i][j] = col.header
		}
	}
	var err error
	o.book, err = newXLSXBook(names, headers)
	return o, err
}

// reportResponse sets the download's headers and sends the status before
// the first byte of the body.
type reportResponse struct{ o *reportOutput }

func (r *reportResponse) Write(p []byte) (int, error) {
	resp := r.o.c.Response()
	if !resp.Committed {
		h := resp.Header()
		ct := "text/csv; charset=utf-8"
		if r.o.format == formatXLSX {
			ct = mimeXLSX
		}
		h.Set(echo.HeaderContentType, ct)
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+r.o.fileName+`"`)
		h.Set("Cache-Control", "no-store")
		resp.WriteHeader(http.StatusOK)
	}
	return resp.Write(p)
}

// fieldCell is a cell holding a value of a form's field that varies by
// row (a conflict's values): the CSV keeps it text as that field's cells
// (keepText), whatever the column.
type fieldCell struct {
	text  string
	field *schema.Field
}

// row adds a row to table t (a CSV skips the rows of its other tables).
func (o *reportOutput) row(t int, cells ...any) error {
	if o.book != nil {
		for i, v := range cells {
			if fc, ok := v.(fieldCell); ok {
				cells[i] = fc.text
			}
		}
		return o.book.addRow(t, cells)
	}
	if t != o.csvTable {
		return nil
	}
	cols := o.tables[t].cols
	for i, v := range cells {
		switch v := v.(type) {
		case int:
			o.cells[i] = strconv.Itoa(v)
		case int64:
			o.cells[i] = strconv.FormatInt(v, 10)
		case string:
			o.cells[i] = keepText(cols[i].text, v)
		case fieldCell:
			if v.field == nil {
				v.field = cols[i].text
			}
			o.cells[i] = keepText(v.field, v.text)
		default:
			o.cells[i] = ""
		}
	}
	if err := o.cw.Write(o.cells); err != nil {
		return err
	}
	o.rows++
	if o.rows%snapshotFlushEvery == 0 && o.c.Response().Committed {
		if err := o.out.Flush(); err != nil {
			return err
		}
		o.c.Response().Flush()
	}
	return nil
}

// finish writes what is left: the rest of a CSV, or the whole workbook.
func (o *reportOutput) finish() error {
	if o.book != nil {
		if err := o.book.writeTo(o.out); err != nil {
			return o.fail(err)
		}
	}
	if err := o.out.Flush(); err != nil {
		return o.fail(err)
	}
	if !o.c.Response().Committed { // an empty body cannot be: a CSV has its header
		return o.fail(errors.New("report: nothing written"))
	}
	return nil
}

// fail answers err: a problem response while nothing was sent, else the
// connection is cut so that the client cannot take a short table for the
// whole.
func (o *reportOutput) fail(err error) error {
	if !o.c.Response().Committed {
		return err
	}
	if o.c.Request().Context().Err() != nil {
		o.s.reqLog(o.c).Info("report cancelled by the client", "path", o.c.Request().URL.Path, "rows", o.rows)
	} else {
		o.s.reqLog(o.c).Error("report failed while streaming", "path", o.c.Request().URL.Path, "rows", o.rows, "err", err)
	}
	panic(http.ErrAbortHandler)
}

// close releases the workbook's temporary files and the user's snapshot
// slot.
func (o *reportOutput) close() {
	o.book.close()
	if o.user != "" {
		o.s.snapshotsByUser.release(o.user)
		o.user = ""
	}
}
