package api

import (
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema/verify"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/syncproto"
)

// keptVerificationHead is the head of rollup=only as of today: the
// verification's head, the day the kept verdicts were last judged as of
// (kept_as_of) and how many households await a new judgement (pending;
// zero when the roll-ups are exactly today's judgement).
type keptVerificationHead struct {
	verificationHead
	KeptAsOf string `json:"kept_as_of"`
	Pending  int    `json:"pending"`
}

// keptVerificationEnd is the NDJSON end line of rollup=only as of today.
type keptVerificationEnd struct {
	verificationEnd
	KeptAsOf string `json:"kept_as_of"`
	Pending  int    `json:"pending"`
}

// keptVerification answers GET /v1/reports/verification?rollup=only for
// today from the store's kept verdicts (syncproto.ReportService.
// KeptVerification): one row per village read, never one per household,
// in the shape of the live roll-up (no household, no village's list),
// with kept_as_of and pending besides.
func (s *Server) keptVerification(c echo.Context, f reportFormat, v *verify.Verifier, actor syncproto.Actor, region string, asOf, now time.Time) error {
	names := regionNames(s.divisions)
	ctx := c.Request().Context()
	if f.format == export.FormatNDJSON {
		out := s.newNDJSONStream(c)
		sum, read, err := s.reports.KeptVerification(ctx, actor, func(a *verify.Area) error {
			a.Name = names.of(a.Code)
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
		if err := out.line("end", keptVerificationEnd{verificationEnd: verificationEnd{Region: region, AsOf: asOf.Format(time.DateOnly),
			Totals: sum.Totals, Cursor: s.cursors.Encode(sum.At), GeneratedAt: syncproto.FormatTime(now)},
			KeptAsOf: read.AsOf, Pending: read.Pending}); err != nil {
			return out.fail(err)
		}
		return out.end()
	}
	var villages []verify.Area
	sum, read, err := s.reports.KeptVerification(ctx, actor, func(a *verify.Area) error {
		a.Name = names.of(a.Code)
		villages = append(villages, *a)
		return nil
	})
	if err != nil {
		return err
	}
	for _, areas := range [][]verify.Area{sum.Townships, sum.Counties} {
		for i := range areas {
			areas[i].Name = names.of(areas[i].Code)
		}
	}
	if villages == nil {
		villages = []verify.Area{}
	}
	out := s.newJSONStream(c, keptVerificationHead{verificationHead: verificationHead{Region: region, RegionName: names.of(region),
		AsOf: asOf.Format(time.DateOnly), Guarantees: guaranteesOf(v)}, KeptAsOf: read.AsOf, Pending: read.Pending}, "households")
	return out.finish(verificationTail{Villages: villages, Townships: nonNil(sum.Townships), Counties: nonNil(sum.Counties),
		Totals: sum.Totals, Cursor: s.cursors.Encode(sum.At), GeneratedAt: syncproto.FormatTime(now)})
}
