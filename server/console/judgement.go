package console

import (
	"context"
	"time"

	"github.com/fieldsync/fieldsync/schema/monitor"
	"github.com/fieldsync/fieldsync/schema/verify"
	"github.com/fieldsync/fieldsync/syncproto"
)

// judgeVillage judges the households of one village as of today (China's
// day) in one read of the village's own records (ReportService.Judge for
// the actor narrowed to the village: bounded by the village's size, not
// the region's): each household's verdict, and on that verdict its
// follow-up. It returns the village's verdicts (GET
// /v1/reports/verification for the one village; nil when the served
// forms declare no verification) and its follow-ups (GET /v1/followups
// for it; nil without a monitoring). A verdict depends on the day
// (evidence ages, standards' editions), so it is judged at each read
// rather than kept.
func (c *Console) judgeVillage(ctx context.Context, actor syncproto.Actor, village string) (*villageVerdicts, *villageFollowups, error) {
	v, m := c.cfg.Reports.Verifier(), c.cfg.Reports.Monitor()
	if v == nil && m == nil {
		return nil, nil, nil
	}
	today := c.cfg.Now().In(chinaTime)
	asOf := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	var verdicts *villageVerdicts
	var followups *villageFollowups
	cb := syncproto.Judging{}
	if v != nil {
		verdicts = &villageVerdicts{AsOf: asOf.Format(time.DateOnly)}
		cb.Village = func(a *verify.Area) error {
			if a.Code == village {
				verdicts.Area = *a
			}
			return nil
		}
	}
	if m != nil {
		followups = &villageFollowups{AsOf: asOf.Format(time.DateOnly), triggers: map[string]map[string]string{}}
		if decl := c.cfg.Schema.Monitoring(); decl != nil {
			for _, tr := range decl.Triggers {
				followups.triggers[tr.Name] = tr.Labels
			}
		}
		cb.Listed = func(f *monitor.Followup) error {
			followups.Listed = append(followups.Listed, *f)
			return nil
		}
	}
	actor.Scope, actor.AllRegions = []string{village}, false
	j, err := c.cfg.Reports.Judge(ctx, actor, asOf, cb)
	if err != nil {
		return nil, nil, err
	}
	if verdicts != nil {
		for _, g := range v.Guarantees() {
			verdicts.Guarantees = append(verdicts.Guarantees, guaranteeCount{Name: g.Name, Labels: g.Labels, Blocked: verdicts.Area.BlockedBy[g.Name]})
		}
	}
	if followups != nil {
		followups.Counts = j.Followups.Totals
		for _, st := range m.Statuses() {
			followups.Statuses = append(followups.Statuses, statusCount{Name: st.Name, Labels: st.Labels, Count: j.Followups.Totals.ByStatus[st.Name]})
		}
	}
	return verdicts, followups, nil
}
