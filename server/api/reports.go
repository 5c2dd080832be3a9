package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/syncproto"
)

// DefaultReinspectAfter is how old a housing appraisal may get before its
// household is due for re-inspection, unless configured otherwise.
const DefaultReinspectAfter = 365 * 24 * time.Hour

// handleCoverage is GET /v1/reports/coverage?region=: the coverage of every
// village in the region (the caller's scope when absent), streamed village
// by village in code order, then the roll-ups per township and county and
// the totals. The body is
//
//	{"region", "region_name", "villages": [VillageCoverage...],
//	 "townships": [...], "counties": [...], "totals": {...},
//	 "cursor", "generated_at"}
//
// where cursor names the point of the change log the report reflects.
//
// With format=csv or xlsx it is a table instead (coverageTable).
func (s *Server) handleCoverage(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "region", "format", "lang", "table", "summary"); err != nil {
		return err
	}
	if c.QueryParams().Has("summary") {
		return s.handleCoverageSummary(c)
	}
	actor, region, err := s.regionScope(c)
	if err != nil {
		return err
	}
	f, errs := parseReportFormat(c)
	if table := c.QueryParam("table"); f.format == export.FormatJSON && table != "" {
		errs = append(errs, syncproto.FieldError{Path: "query.table", Message: "is for format csv"})
	}
	if len(errs) > 0 {
		return invalidReport(errs)
	}
	if f.tabular() {
		return s.coverageTable(c, f, strings.TrimSpace(c.QueryParam("table")), actor, region)
	}
	names := regionNames(s.divisions)
	out := s.newJSONStream(c, reportHead{Region: region, RegionName: names.of(region)}, "villages")
	sum, err := s.reports.Coverage(c.Request().Context(), actor, func(v *survey.VillageCoverage) error {
		v.Name = names.of(v.Code)
		return out.item(v)
	})
	if err != nil {
		return out.fail(err)
	}
	for _, areas := range [][]survey.AreaCoverage{sum.Townships, sum.Counties} {
		for i := range areas {
			areas[i].Name = names.of(areas[i].Code)
		}
	}
	return out.finish(coverageTail{Townships: sum.Townships, Counties: sum.Counties, Totals: sum.Totals,
		Cursor: s.cursors.Encode(sum.At), GeneratedAt: syncproto.FormatTime(s.now())})
}

// handleReinspections is GET /v1/reinspections?region=: the households of
// the region due for re-inspection, each with its current appraisal, its
// re-inspection chain and its reasons, streamed in village order. It is not
// paged: one read transaction makes the list consistent, and the server
// holds one household at a time. The body is
//
//	{"region", "region_name", "reinspect_after_days", "households": [DueHousehold...],
//	 "counts": {"households", "by_reason"}, "cursor", "generated_at"}
//
// With format=csv or xlsx it is a table instead (reinspectionTable).
func (s *Server) handleReinspections(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "region", "format", "lang"); err != nil {
		return err
	}
	actor, region, err := s.regionScope(c)
	if err != nil {
		return err
	}
	f, errs := parseReportFormat(c)
	if len(errs) > 0 {
		return invalidReport(errs)
	}
	if f.tabular() {
		return s.reinspectionTable(c, f, actor, region)
	}
	now := s.now()
	names := regionNames(s.divisions)
	out := s.newJSONStream(c, reinspectionHead{Region: region, RegionName: names.of(region),
		AfterDays: s.reinspectAfter.Hours() / 24}, "households")
	q := survey.ReinspectionQuery{Now: now, After: s.reinspectAfter}
	sum, err := s.reports.Reinspections(c.Request().Context(), actor, q, func(d *survey.DueHousehold) error {
		d.VillageName = names.of(d.Village)
		return out.item(d)
	})
	if err != nil {
		return out.fail(err)
	}
	return out.finish(reinspectionTail{Counts: reinspectionCounts{Households: sum.Households, ByReason: sum.ByReason},
		Cursor: s.cursors.Encode(sum.At), GeneratedAt: syncproto.FormatTime(now)})
}

// reportHead is the first members of a report.
type reportHead struct {
	// Region is the prefix asked for, "" for the caller's whole scope.
	Region     string `json:"region"`
	RegionName string `json:"region_name"`
}

type reinspectionHead struct {
	Region     string  `json:"region"`
	RegionName string  `json:"region_name"`
	AfterDays  float64 `json:"reinspect_after_days"`
}

type coverageTail struct {
	Townships   []survey.AreaCoverage `json:"townships"`
	Counties    []survey.AreaCoverage `json:"counties"`
	Totals      survey.CoverageCounts `json:"totals"`
	Cursor      string                `json:"cursor"`
	GeneratedAt string                `json:"generated_at"`
}

type reinspectionCounts struct {
	Households int            `json:"households"`
	ByReason   map[string]int `json:"by_reason"`
}

type reinspectionTail struct {
	Counts      reinspectionCounts `json:"counts"`
	Cursor      string             `json:"cursor"`
	GeneratedAt string             `json:"generated_at"`
}

// regionNames are the names of regions in the JSON reports: those of the
// operator's division register (serve --divisions), "" for a code it
// lacks or without one.
type regionNames schema.Divisions

func (n regionNames) of(code string) string { return n[code] }

// jsonStream answers with a JSON object one of whose members, an array, is
// written item by item as a store produces it: the head's members, the
// array, then the tail's members, through the reports' reportBody (which
// renews the write deadline while the client reads). Nothing reaches the
// client before the first 64 KiB or the end, so that an error before then
// is still a problem response.
type jsonStream struct {
	s       *Server
	c       echo.Context
	body    *reportBody
	head    []byte // the head object without its closing brace, then the array's key
	started bool
	items   int
}

func (s *Server) newJSONStream(c echo.Context, head any, arrayKey string) *jsonStream {
	h := marshalNoEscape(head)
	h = bytes.TrimSuffix(h, []byte("}"))
	if len(h) > 1 {
		h = append(h, ',')
	}
	h = append(h, strconv.Quote(arrayKey)...)
	h = append(h, ":[\n"...)
	return &jsonStream{s: s, c: c, head: h, body: s.newReportBody(c, func(h http.Header) {
		h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	})}
}

func marshalNoEscape(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// The report types are plain structs, maps and slices.
		panic(fmt.Sprintf("report: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func (j *jsonStream) start() error {
	if j.started {
		return nil
	}
	j.started = true
	_, err := j.body.Write(j.head)
	return err
}

// item writes one element of the array, each on a line of its own,
// flushing now and then.
func (j *jsonStream) item(v any) error {
	if err := j.start(); err != nil {
		return err
	}
	b := marshalNoEscape(v)
	if j.items > 0 {
		b = append([]byte(",\n"), b...)
	}
	j.items++
	if _, err := j.body.Write(b); err != nil {
		return err
	}
	if j.items%snapshotFlushEvery == 0 {
		return j.body.flush()
	}
	return nil
}

// finish closes the array, writes the tail's members and sends the rest.
func (j *jsonStream) finish(tail any) error {
	if err := j.start(); err != nil {
		return j.fail(err)
	}
	t := marshalNoEscape(tail)
	out := []byte("\n]")
	if len(t) > 2 {
		out = append(append(out, ','), t[1:]...)
	} else {
		out = append(out, '}')
	}
	out = append(out, '\n')
	if _, err := j.body.Write(out); err != nil {
		return j.fail(err)
	}
	if err := j.body.end(); err != nil {
		return j.fail(err)
	}
	return nil
}

// fail ends the answer after err. Before anything was written it is a
// problem response (what is buffered is dropped); afterwards the status
// is sent, so the connection is cut and the client sees an incomplete body
// rather than a short list it might take for the whole.
func (j *jsonStream) fail(err error) error {
	if !j.body.committed() {
		return err
	}
	ctx := j.c.Request().Context()
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		j.s.reqLog(j.c).Info("report cancelled by the client", "path", j.c.Request().URL.Path, "items", j.items)
	} else {
		j.s.reqLog(j.c).Error("report failed while streaming", "path", j.c.Request().URL.Path, "items", j.items, "err", err)
	}
	panic(http.ErrAbortHandler)
}
