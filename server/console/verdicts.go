package console

import (
	"context"
	"strings"

	"github.com/fieldsync/fieldsync/schema/verify"
	"github.com/fieldsync/fieldsync/syncproto"
)

// villageVerdicts is a village's verdicts (GET /v1/reports/verification
// for the one village): how many households are verified, blocked by each
// guarantee, incomplete, and the households not verified with why.
type villageVerdicts struct {
	AsOf       string
	Area       verify.Area
	Guarantees []guaranteeCount
}

// guaranteeCount is one guarantee with its labels and the households it
// blocks.
type guaranteeCount struct {
	Name    string
	Labels  map[string]string
	Blocked int
}

// label is the guarantee's label in lang, else its name.
func (g guaranteeCount) Label(lang string) string {
	if l := g.Labels[lang]; l != "" {
		return l
	}
	return g.Name
}

// readVerdicts judges the households of one village as of today, from the
// village's own records (the verification report for the actor narrowed
// to the village: bounded by the village's size, not the region's). It
// returns nil when the served forms declare no verification. A verdict
// depends on the day (evidence ages, standards' editions), so it is
// judged at each read rather than kept.
func (c *Console) readVerdicts(ctx context.Context, actor syncproto.Actor, village string) (*villageVerdicts, error) {
	v := c.cfg.Reports.Verifier()
	if v == nil {
		return nil, nil
	}
	today := c.cfg.Now().In(chinaTime)
	out := &villageVerdicts{AsOf: today.Format("2006-01-02")}
	actor.Scope, actor.AllRegions = []string{village}, false
	_, err := c.cfg.Reports.Verification(ctx, actor, today,
		func(*verify.Verdict) error { return nil },
		func(a *verify.Area) error {
			if a.Code == village {
				out.Area = *a
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	for _, g := range v.Guarantees() {
		out.Guarantees = append(out.Guarantees, guaranteeCount{Name: g.Name, Labels: g.Labels, Blocked: out.Area.BlockedBy[g.Name]})
	}
	return out, nil
}

// Labels are the guarantees named, by their labels in lang, joined.
func (v *villageVerdicts) Labels(names []string, lang string) string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		label := n
		for _, g := range v.Guarantees {
			if g.Name == n {
				label = g.Label(lang)
			}
		}
		out = append(out, label)
	}
	sep := ", "
	if lang != "en" {
		sep = "、"
	}
	return strings.Join(out, sep)
}
