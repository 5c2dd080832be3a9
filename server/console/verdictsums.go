package console

import (
	"context"
	"errors"

	"github.com/fieldsync/fieldsync/syncproto"
)

// areaVerdicts are the verdicts of the areas one level down from a region
// above a village (county → townships, township → villages, province →
// counties), read from the verdicts the store keeps, summed per village
// (syncproto.ReportService.VerdictRollup): one row per village, never
// one per household. A village's own page judges its households instead
// (readVerdicts).
type areaVerdicts struct {
	AsOf       string
	Pending    int
	Guarantees []guaranteeCount
	Rows       []areaVerdictRow
}

// areaVerdictRow is one area's verdicts: its households verified, blocked
// by each guarantee (in the verification's order), incomplete, and its
// follow-up visits due; Share is the verified share in percent, which
// colours the row as coverage colours the areas table.
type areaVerdictRow struct {
	Code, Name                    string
	Households, Verified, Blocked int
	Incomplete, Due               int
	BlockedBy                     []int
	Share                         int
}

// readAreaVerdicts reads the verdicts of the actor's areas of a level, in
// code order; nil when the served forms declare no verification.
func (c *Console) readAreaVerdicts(ctx context.Context, actor syncproto.Actor, level string) (*areaVerdicts, error) {
	v := c.cfg.Reports.Verifier()
	if v == nil {
		return nil, nil
	}
	out := &areaVerdicts{}
	for _, g := range v.Guarantees() {
		out.Guarantees = append(out.Guarantees, guaranteeCount{Name: g.Name, Labels: g.Labels})
	}
	read, err := c.cfg.Reports.VerdictRollup(ctx, actor, level, func(a *syncproto.AreaVerdicts) error {
		row := areaVerdictRow{Code: a.Verification.Code, Name: c.nameOr(a.Verification.Code, ""),
			Households: a.Verification.Households, Verified: a.Verification.Verified, Blocked: a.Verification.Blocked,
			Incomplete: a.Verification.Incomplete, Due: a.Followups.Due,
			Share: percentOf(a.Verification.Verified, a.Verification.Households)}
		for i := range out.Guarantees {
			n := a.Verification.BlockedBy[out.Guarantees[i].Name]
			row.BlockedBy = append(row.BlockedBy, n)
			out.Guarantees[i].Blocked += n
		}
		out.Rows = append(out.Rows, row)
		return nil
	})
	var se *syncproto.Error
	if errors.As(err, &se) && se.Code == syncproto.ENotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out.AsOf, out.Pending = read.AsOf, read.Pending
	return out, nil
}
