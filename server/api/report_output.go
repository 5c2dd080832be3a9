package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/syncproto"
)

// reportFormat is the format= and lang= of a report or list: json (the
// default), csv or xlsx, and the language of a table's headers and values
// (tableLang, as snapshots take it; JSON ignores it).
type reportFormat struct {
	format, lang string
}

// tabular reports whether the answer is a table (CSV or XLSX).
func (f reportFormat) tabular() bool { return f.format != export.FormatJSON }

// parseReportFormat reads format= and lang=: 422 at query.format or
// query.lang for a value it does not know.
func parseReportFormat(c echo.Context) (reportFormat, []syncproto.FieldError) {
	f := reportFormat{format: strings.TrimSpace(c.QueryParam("format"))}
	var errs []syncproto.FieldError
	switch f.format {
	case "":
		f.format = export.FormatJSON
	case export.FormatJSON, export.FormatCSV, export.FormatXLSX:
	default:
		errs = append(errs, syncproto.FieldError{Path: "query.format", Message: "must be one of json, csv, xlsx"})
	}
	lang, fe := export.TableLang(c.QueryParam("lang"), c.Request().Header.Get("Accept-Language"))
	if fe != nil {
		fe.Path = "query." + fe.Path
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

// reportLabels are the labels of a report's tables in lang.
func (s *Server) reportLabels(lang string) export.Labels { return export.NewLabels(lang, s.schema) }

// reportOutput writes the tables of a report (export.TableWriter) as the
// answer: CSV (one of them, streamed as rows come) or XLSX (every table a
// sheet, sent once complete). Nothing reaches the client before the first
// 64 KiB of a CSV, or the end of an XLSX, so that an error before then is
// still a problem response; after it the connection is cut.
type reportOutput struct {
	s        *Server
	c        echo.Context
	tw       *export.TableWriter
	body     *reportBody
	fileName string
	user     string // the user whose snapshot slot the table holds, once taken
}

// newReportOutput starts the answer; fileName is without its extension.
// A table is bounded as a snapshot is (snapshot_slots.go): it takes one
// of its user's snapshot slots (Config.SnapshotsPerUser, shared with
// their snapshots; 429 beyond), and its client must read at
// Config.SnapshotMinRate on average (rateBoundWriter, through the
// reports' reportBody), so that one slow reader cannot hold a read of the
// store for long. close gives the slot back.
func (s *Server) newReportOutput(c echo.Context, f reportFormat, l export.Labels, tables []export.Table, csvTable int, fileName string) (*reportOutput, error) {
	o := &reportOutput{s: s, c: c, fileName: fileName + "." + f.format}
	user := s.actor(c).UserID
	if !s.snapshotsByUser.acquire(user) {
		return o, tooManyUserSnapshots(s.snapshotsByUser.max)
	}
	o.user = user
	o.body = s.newReportBody(c, func(h http.Header) {
		h.Set(echo.HeaderContentType, o.tw.ContentType())
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+o.fileName+`"`)
	})
	var err error
	o.tw, err = export.NewTableWriter(o.body.out, f.format, l, tables, csvTable)
	return o, err
}

// row adds a row to table t (a CSV skips the rows of its other tables),
// sending what is buffered now and then once the answer has begun (an
// XLSX workbook is spooled, and sent by finish).
func (o *reportOutput) row(t int, cells ...any) error {
	before := o.tw.CSVRows()
	if err := o.tw.Row(t, cells...); err != nil {
		return err
	}
	if n := o.tw.CSVRows(); n != before && n%snapshotFlushEvery == 0 {
		return o.body.flush()
	}
	return nil
}

// finish writes what is left: the rest of a CSV, or the whole workbook.
func (o *reportOutput) finish() error {
	if err := o.tw.Finish(); err != nil {
		return o.fail(err)
	}
	if err := o.body.end(); err != nil {
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
		o.s.reqLog(o.c).Info("report cancelled by the client", "path", o.c.Request().URL.Path, "rows", o.tw.CSVRows())
	} else {
		o.s.reqLog(o.c).Error("report failed while streaming", "path", o.c.Request().URL.Path, "rows", o.tw.CSVRows(), "err", err)
	}
	panic(http.ErrAbortHandler)
}

// close releases the workbook's temporary files and the user's snapshot
// slot.
func (o *reportOutput) close() {
	if o.tw != nil {
		o.tw.Close()
	}
	if o.user != "" {
		o.s.snapshotsByUser.release(o.user)
		o.user = ""
	}
}
