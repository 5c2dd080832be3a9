package api

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/syncproto"
)

// SummaryVillages is the one value of the coverage report's summary
// parameter: the counts of each village, without the lists.
const SummaryVillages = "villages"

// handleCoverageSummary is GET /v1/reports/coverage?summary=villages: the
// coverage counts of every village of the region (the caller's scope when
// absent), then the roll-ups per township and county and the totals, as
// the full report has them, without the lists of households (blind spots,
// relapse watch, duplicate visits) and of standards. The body is
//
//	{"region", "region_name", "summary": "villages",
//	 "villages": [{"code", "name", "township", "county", "counts"}...],
//	 "townships": [...], "counties": [...], "totals": {...},
//	 "cursor", "generated_at", "judged_as_of"}
//
// It is read from the store's per-village sums (syncproto.SummaryStore),
// so that its cost follows the number of villages, not of households. The
// answer of the report without summary is unchanged (v1).
func (s *Server) handleCoverageSummary(c echo.Context) error {
	var errs []syncproto.FieldError
	if v := strings.TrimSpace(c.QueryParam("summary")); v != SummaryVillages {
		errs = append(errs, syncproto.FieldError{Path: "query.summary", Message: "must be villages"})
	}
	if f := strings.TrimSpace(c.QueryParam("format")); f != "" && f != export.FormatJSON {
		errs = append(errs, syncproto.FieldError{Path: "query.format", Message: "must be json with summary"})
	}
	if c.QueryParams().Has("table") {
		errs = append(errs, syncproto.FieldError{Path: "query.table", Message: "is for format csv"})
	}
	if len(errs) > 0 {
		return invalidReport(errs)
	}
	actor, region, err := s.regionScope(c)
	if err != nil {
		return err
	}
	names := regionNames(s.divisions)
	out := s.newJSONStream(c, summaryHead{Region: region, RegionName: names.of(region), Summary: SummaryVillages}, "villages")
	sum, err := s.reports.CoverageSummaries(c.Request().Context(), actor, func(a *survey.AreaCoverage) error {
		return out.item(villageSummary{Code: a.Code, Name: names.of(a.Code), Township: prefixOf(a.Code, 9),
			County: prefixOf(a.Code, 6), Counts: a.Counts})
	})
	if err != nil {
		return out.fail(err)
	}
	for _, areas := range [][]survey.AreaCoverage{sum.Townships, sum.Counties} {
		for i := range areas {
			areas[i].Name = names.of(areas[i].Code)
		}
	}
	return out.finish(coverageSummaryTail{coverageTail: coverageTail{Townships: sum.Townships, Counties: sum.Counties, Totals: sum.Totals,
		Cursor: s.cursors.Encode(sum.At), GeneratedAt: syncproto.FormatTime(s.now())}, JudgedAsOf: sum.At.JudgedAsOf})
}

// coverageSummaryTail ends the coverage summary: the full report's tail
// and the day the kept sums are judged as of (syncproto.Cursor.JudgedAsOf;
// absent when the counts were read from the records).
type coverageSummaryTail struct {
	coverageTail
	JudgedAsOf string `json:"judged_as_of,omitempty"`
}

type summaryHead struct {
	Region     string `json:"region"`
	RegionName string `json:"region_name"`
	Summary    string `json:"summary"`
}

// villageSummary is one village of the coverage summary.
type villageSummary struct {
	Code     string                `json:"code"`
	Name     string                `json:"name"`
	Township string                `json:"township"`
	County   string                `json:"county"`
	Counts   survey.CoverageCounts `json:"counts"`
}

func prefixOf(code string, n int) string {
	if len(code) < n {
		return code
	}
	return code[:n]
}
