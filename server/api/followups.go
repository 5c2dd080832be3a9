package api

import (
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema/monitor"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/syncproto"
)

// handleFollowups is GET /v1/followups?region=: the households of the
// region (the caller's scope when absent) that belong on the follow-up
// list as of as_of (today by default) — monitored and in a status other
// than stable, or due for their visit — each with its monitoring status,
// the triggers that hold with their evidence, its last visit and its due
// date, from one read transaction, in village order. The body is
//
//	{"region", "region_name", "as_of", "statuses": [{"name", "labels", "follow_up_days"}],
//	 "households": [Followup...], "villages": [Counts...], "totals": Counts,
//	 "cursor", "generated_at"}
//
// format=ndjson streams the same as lines (kind household, village, end);
// csv and xlsx are the households' table (export.FollowupTables).
// A version without a monitoring is 404.
func (s *Server) handleFollowups(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "region", "format", "lang", "as_of"); err != nil {
		return err
	}
	actor, region, err := s.regionScope(c)
	if err != nil {
		return err
	}
	f, errs := verificationFormat(c)
	now := s.now()
	asOf, fe := reportAsOf(c.QueryParam("as_of"), now)
	if fe != nil {
		errs = append(errs, *fe)
	}
	if len(errs) > 0 {
		return invalidReport(errs)
	}
	m := s.reports.Monitor()
	if m == nil {
		return &syncproto.Error{Code: syncproto.ENotFound, Title: "No monitoring",
			Message: "the served forms' version declares no monitoring (monitoring.json)"}
	}
	names := regionNames(s.divisions)
	ctx := c.Request().Context()
	switch f.format {
	case export.FormatCSV, export.FormatXLSX:
		return s.followupsTable(c, f, actor, region, asOf)
	case export.FormatNDJSON:
		out := s.newNDJSONStream(c)
		sum, err := s.reports.Followups(ctx, actor, asOf, func(fu *monitor.Followup) error {
			fu.VillageName = names.of(fu.Village)
			return out.line("household", fu)
		})
		if err != nil {
			return out.fail(err)
		}
		for i := range sum.Villages {
			sum.Villages[i].Name = names.of(sum.Villages[i].Code)
			if err := out.line("village", &sum.Villages[i]); err != nil {
				return out.fail(err)
			}
		}
		sum.Totals.Name = names.of(region)
		if err := out.line("end", followupsEnd{Region: region, AsOf: asOf.Format(time.DateOnly), Totals: sum.Totals,
			Cursor: s.cursors.Encode(sum.At), GeneratedAt: syncproto.FormatTime(now)}); err != nil {
			return out.fail(err)
		}
		return out.end()
	}
	var statuses []followupStatus
	for _, st := range m.Statuses() {
		statuses = append(statuses, followupStatus{Name: st.Name, Labels: st.Labels, FollowUpDays: st.FollowUpDays})
	}
	out := s.newJSONStream(c, followupsHead{Region: region, RegionName: names.of(region), AsOf: asOf.Format(time.DateOnly),
		Statuses: statuses}, "households")
	sum, err := s.reports.Followups(ctx, actor, asOf, func(fu *monitor.Followup) error {
		fu.VillageName = names.of(fu.Village)
		return out.item(fu)
	})
	if err != nil {
		return out.fail(err)
	}
	for i := range sum.Villages {
		sum.Villages[i].Name = names.of(sum.Villages[i].Code)
	}
	if sum.Villages == nil {
		sum.Villages = []monitor.Counts{}
	}
	sum.Totals.Name = names.of(region)
	return out.finish(followupsTail{Villages: sum.Villages, Totals: sum.Totals, Cursor: s.cursors.Encode(sum.At),
		GeneratedAt: syncproto.FormatTime(now)})
}

// followupsTable answers the follow-up list as CSV or XLSX: one row per
// listed household (export.FollowupTables).
func (s *Server) followupsTable(c echo.Context, f reportFormat, actor syncproto.Actor, region string, asOf time.Time) error {
	l := s.reportLabels(f.lang)
	tb := export.NewFollowupTables(l, s.divisions, s.schema)
	out, err := s.newReportOutput(c, f, l, tb.Tables, 0, "fieldsync-followups-"+export.RegionFileName(actor, region))
	defer out.close()
	if err != nil {
		return err
	}
	if _, err := s.reports.Followups(c.Request().Context(), actor, asOf, func(fu *monitor.Followup) error {
		return out.row(0, tb.Household(fu)...)
	}); err != nil {
		return out.fail(err)
	}
	return out.finish()
}

// reportAsOf reads a report's as_of: a date not after today, today when
// empty.
func reportAsOf(raw string, now time.Time) (time.Time, *syncproto.FieldError) {
	today := now.UTC().Truncate(24 * time.Hour)
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return today, nil
	}
	d, err := time.Parse(time.DateOnly, raw)
	switch {
	case err != nil:
		return today, &syncproto.FieldError{Path: "query.as_of", Message: "must be a date (YYYY-MM-DD)"}
	case d.After(today.AddDate(0, 0, 1)):
		return today, &syncproto.FieldError{Path: "query.as_of", Message: "must not be after today"}
	}
	return d, nil
}

type followupStatus struct {
	Name         string            `json:"name"`
	Labels       map[string]string `json:"labels"`
	FollowUpDays int               `json:"follow_up_days"`
}

type followupsHead struct {
	Region     string           `json:"region"`
	RegionName string           `json:"region_name"`
	AsOf       string           `json:"as_of"`
	Statuses   []followupStatus `json:"statuses"`
}

type followupsTail struct {
	Villages    []monitor.Counts `json:"villages"`
	Totals      monitor.Counts   `json:"totals"`
	Cursor      string           `json:"cursor"`
	GeneratedAt string           `json:"generated_at"`
}

type followupsEnd struct {
	Region      string         `json:"region"`
	AsOf        string         `json:"as_of"`
	Totals      monitor.Counts `json:"totals"`
	Cursor      string         `json:"cursor"`
	GeneratedAt string         `json:"generated_at"`
}
