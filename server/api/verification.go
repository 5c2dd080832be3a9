package api

import (
	"bytes"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema/verify"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/syncproto"
)

// handleVerification is GET /v1/reports/verification?region=: every
// household of the region (the caller's scope when absent) judged by the
// served forms' verification (verification.json) as of as_of (today by
// default), from one read transaction, in village order. The body is
//
//	{"region", "region_name", "as_of", "guarantees": [{"name", "labels"}],
//	 "households": [Verdict...], "villages": [Area...], "townships",
//	 "counties", "totals", "cursor", "generated_at"}
//
// format=ndjson streams the same as lines, each village's roll-up after
// its last household (the server holds one village at a time; the JSON's
// villages wait for the end); csv and xlsx are tables
// (export.VerificationTables). A version without a verification is 404.
func (s *Server) handleVerification(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "region", "format", "lang", "as_of", "rollup"); err != nil {
		return err
	}
	actor, region, err := s.regionScope(c)
	if err != nil {
		return err
	}
	f, errs := verificationFormat(c)
	// rollup=only answers the roll-ups alone (JSON or NDJSON): no
	// household entries and no village's list of households not verified.
	// As of today they are read from the store's kept verdicts; as of an
	// earlier day every household is still judged, only the encoding and
	// the transfer of the households saved.
	rollupOnly := false
	switch strings.TrimSpace(c.QueryParam("rollup")) {
	case "":
	case "only":
		rollupOnly = true
		if f.format == export.FormatCSV || f.format == export.FormatXLSX {
			errs = append(errs, syncproto.FieldError{Path: "query.rollup", Message: "is for format json or ndjson: a table lists the households"})
		}
	default:
		errs = append(errs, syncproto.FieldError{Path: "query.rollup", Message: "must be only"})
	}
	now := s.now()
	asOf := now.UTC().Truncate(24 * time.Hour)
	if raw := strings.TrimSpace(c.QueryParam("as_of")); raw != "" {
		d, err := time.Parse(time.DateOnly, raw)
		switch {
		case err != nil:
			errs = append(errs, syncproto.FieldError{Path: "query.as_of", Message: "must be a date (YYYY-MM-DD)"})
		case d.After(asOf.AddDate(0, 0, 1)):
			errs = append(errs, syncproto.FieldError{Path: "query.as_of", Message: "must not be after today"})
		default:
			asOf = d
		}
	}
	if len(errs) > 0 {
		return invalidReport(errs)
	}
	v := s.reports.Verifier()
	if v == nil {
		return &syncproto.Error{Code: syncproto.ENotFound, Title: "No verification",
			Message: "the served forms' version declares no verification (verification.json)"}
	}
	if rollupOnly && asOf.Equal(now.UTC().Truncate(24*time.Hour)) {
		// Today's roll-ups are the kept verdicts' sums (verification_kept.go).
		return s.keptVerification(c, f, v, actor, region, asOf, now)
	}
	names := regionNames(s.divisions)
	ctx := c.Request().Context()
	switch f.format {
	case export.FormatCSV, export.FormatXLSX:
		return s.verificationTable(c, f, v, actor, region, asOf)
	case export.FormatNDJSON:
		out := s.newNDJSONStream(c)
		sum, err := s.reports.Verification(ctx, actor, asOf, func(vd *verify.Verdict) error {
			if rollupOnly {
				return nil
			}
			vd.VillageName = names.of(vd.Village)
			return out.line("household", vd)
		}, func(a *verify.Area) error {
			a.Name = names.of(a.Code)
			if rollupOnly {
				a.NeverVerified = nil
			}
			return out.line("area", a)
		})
		if err != nil {
			return out.fail(err)
		}
		for _, areas := range [][]verify.Area{sum.Townships, sum.Counties} {
			for i := range areas {
				areas[i].Name = names.of(areas[i].Code)
				if err := out.line("area", &areas[i]); err != nil {
					return out.fail(err)
				}
			}
		}
		sum.Totals.Name = names.of(region)
		if err := out.line("end", verificationEnd{Region: region, AsOf: asOf.Format(time.DateOnly), Totals: sum.Totals,
			Cursor: s.cursors.Encode(sum.At), GeneratedAt: syncproto.FormatTime(now)}); err != nil {
			return out.fail(err)
		}
		return out.end()
	}
	out := s.newJSONStream(c, verificationHead{Region: region, RegionName: names.of(region), AsOf: asOf.Format(time.DateOnly),
		Guarantees: guaranteesOf(v)}, "households")
	var villages []verify.Area
	sum, err := s.reports.Verification(ctx, actor, asOf, func(vd *verify.Verdict) error {
		if rollupOnly {
			return nil
		}
		vd.VillageName = names.of(vd.Village)
		return out.item(vd)
	}, func(a *verify.Area) error {
		a.Name = names.of(a.Code)
		if rollupOnly {
			a.NeverVerified = nil
		}
		villages = append(villages, *a)
		return nil
	})
	if err != nil {
		return out.fail(err)
	}
	for _, areas := range [][]verify.Area{sum.Townships, sum.Counties} {
		for i := range areas {
			areas[i].Name = names.of(areas[i].Code)
		}
	}
	if villages == nil {
		villages = []verify.Area{}
	}
	return out.finish(verificationTail{Villages: villages, Townships: nonNil(sum.Townships), Counties: nonNil(sum.Counties),
		Totals: sum.Totals, Cursor: s.cursors.Encode(sum.At), GeneratedAt: syncproto.FormatTime(now)})
}

func nonNil(a []verify.Area) []verify.Area {
	if a == nil {
		return []verify.Area{}
	}
	return a
}

// verificationFormat is parseReportFormat with ndjson besides.
func verificationFormat(c echo.Context) (reportFormat, []syncproto.FieldError) {
	if strings.TrimSpace(c.QueryParam("format")) != export.FormatNDJSON {
		f, errs := parseReportFormat(c)
		for i := range errs {
			if errs[i].Path == "query.format" {
				errs[i].Message = "must be one of json, ndjson, csv, xlsx"
			}
		}
		return f, errs
	}
	f := reportFormat{format: export.FormatNDJSON}
	var errs []syncproto.FieldError
	lang, fe := export.TableLang(c.QueryParam("lang"), c.Request().Header.Get("Accept-Language"))
	if fe != nil {
		fe.Path = "query." + fe.Path
		errs = append(errs, *fe)
	}
	f.lang = lang
	return f, errs
}

// guaranteeHead names a guarantee and its labels in a report's head.
type guaranteeHead struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

func guaranteesOf(v *verify.Verifier) []guaranteeHead {
	var out []guaranteeHead
	for _, g := range v.Guarantees() {
		out = append(out, guaranteeHead{Name: g.Name, Labels: g.Labels})
	}
	return out
}

type verificationHead struct {
	Region     string          `json:"region"`
	RegionName string          `json:"region_name"`
	AsOf       string          `json:"as_of"`
	Guarantees []guaranteeHead `json:"guarantees"`
}

type verificationTail struct {
	Villages    []verify.Area `json:"villages"`
	Townships   []verify.Area `json:"townships"`
	Counties    []verify.Area `json:"counties"`
	Totals      verify.Area   `json:"totals"`
	Cursor      string        `json:"cursor"`
	GeneratedAt string        `json:"generated_at"`
}

type verificationEnd struct {
	Region      string      `json:"region"`
	AsOf        string      `json:"as_of"`
	Totals      verify.Area `json:"totals"`
	Cursor      string      `json:"cursor"`
	GeneratedAt string      `json:"generated_at"`
}

// ndjsonStream writes one JSON object a line, each with its "kind" first,
// flushed now and then, through the reports' reportBody (which renews the
// write deadline while the client reads); as jsonStream, nothing reaches
// the client before the first 64 KiB or the end, and a failure after it
// cuts the connection. end sends the rest.
type ndjsonStream struct {
	s     *Server
	c     echo.Context
	body  *reportBody
	lines int
}

func (s *Server) newNDJSONStream(c echo.Context) *ndjsonStream {
	return &ndjsonStream{s: s, c: c, body: s.newReportBody(c, func(h http.Header) {
		h.Set(echo.HeaderContentType, "application/x-ndjson")
	})}
}

func (n *ndjsonStream) line(kind string, v any) error {
	b := marshalNoEscape(v)
	var line bytes.Buffer
	line.WriteString(`{"kind":"` + kind + `"`)
	if len(b) > 2 {
		line.WriteByte(',')
		line.Write(b[1:])
	} else {
		line.WriteByte('}')
	}
	line.WriteByte('\n')
	if _, err := n.body.Write(line.Bytes()); err != nil {
		return err
	}
	n.lines++
	if n.lines%snapshotFlushEvery == 0 {
		return n.body.flush()
	}
	return nil
}

// end sends what is left of the stream.
func (n *ndjsonStream) end() error {
	if err := n.body.end(); err != nil {
		return n.fail(err)
	}
	return nil
}

func (n *ndjsonStream) fail(err error) error {
	j := &jsonStream{s: n.s, c: n.c, body: n.body, started: true, items: n.lines}
	return j.fail(err)
}

// verificationTable answers the verification as CSV (the households) or
// XLSX (the households and the areas, each a sheet).
func (s *Server) verificationTable(c echo.Context, f reportFormat, v *verify.Verifier, actor syncproto.Actor, region string, asOf time.Time) error {
	l := s.reportLabels(f.lang)
	tb := export.NewVerificationTables(l, s.divisions, v)
	out, err := s.newReportOutput(c, f, l, tb.Tables, export.VerificationHouseholds, "fieldsync-verification-"+export.RegionFileName(actor, region))
	defer out.close()
	if err != nil {
		return err
	}
	var areas [][]any
	sum, err := s.reports.Verification(c.Request().Context(), actor, asOf, func(vd *verify.Verdict) error {
		return out.row(export.VerificationHouseholds, tb.Household(vd)...)
	}, func(a *verify.Area) error {
		areas = append(areas, tb.Area(a))
		return nil
	})
	if err != nil {
		return out.fail(err)
	}
	for _, list := range [][]verify.Area{sum.Townships, sum.Counties, {sum.Totals}} {
		for i := range list {
			areas = append(areas, tb.Area(&list[i]))
		}
	}
	for _, r := range areas {
		if err := out.row(export.VerificationAreas, r...); err != nil {
			return out.fail(err)
		}
	}
	return out.finish()
}
