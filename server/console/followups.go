package console

import (
	"context"
	"time"

	"github.com/fieldsync/fieldsync/schema/monitor"
	"github.com/fieldsync/fieldsync/syncproto"
)

// villageFollowups is a village's follow-ups (GET /v1/followups for the
// one village): the monitored households by status and the households on
// the follow-up list with why and when their visit is due.
type villageFollowups struct {
	AsOf     string
	Counts   monitor.Counts
	Statuses []statusCount
	Listed   []monitor.Followup
	triggers map[string]map[string]string
}

// TriggerLabel is a trigger (a reason) by its label in lang, else its name.
func (f *villageFollowups) TriggerLabel(name, lang string) string {
	if l := f.triggers[name][lang]; l != "" {
		return l
	}
	return name
}

// statusCount is one monitoring status with its labels and households.
type statusCount struct {
	Name   string
	Labels map[string]string
	Count  int
}

// Label is the status's label in lang, else its name.
func (s statusCount) Label(lang string) string {
	if l := s.Labels[lang]; l != "" {
		return l
	}
	return s.Name
}

// StatusLabel is a status by its label in lang.
func (f *villageFollowups) StatusLabel(name, lang string) string {
	for _, s := range f.Statuses {
		if s.Name == name {
			return s.Label(lang)
		}
	}
	return name
}

// readFollowups follows up the households of one village as of today
// (China's day), through ReportService.Followups for the actor narrowed
// to the village: bounded by the village's size. It returns nil when the
// served forms declare no monitoring.
func (c *Console) readFollowups(ctx context.Context, actor syncproto.Actor, village string) (*villageFollowups, error) {
	m := c.cfg.Reports.Monitor()
	if m == nil {
		return nil, nil
	}
	today := c.cfg.Now().In(chinaTime)
	asOf := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	out := &villageFollowups{AsOf: asOf.Format(time.DateOnly), triggers: map[string]map[string]string{}}
	if decl := c.cfg.Schema.Monitoring(); decl != nil {
		for _, tr := range decl.Triggers {
			out.triggers[tr.Name] = tr.Labels
		}
	}
	actor.Scope, actor.AllRegions = []string{village}, false
	sum, err := c.cfg.Reports.Followups(ctx, actor, asOf, func(f *monitor.Followup) error {
		out.Listed = append(out.Listed, *f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.Counts = sum.Totals
	for _, st := range m.Statuses() {
		out.Statuses = append(out.Statuses, statusCount{Name: st.Name, Labels: st.Labels, Count: sum.Totals.ByStatus[st.Name]})
	}
	return out, nil
}
