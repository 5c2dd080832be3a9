package console

import (
	"context"
	"time"

	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// regionSummary is what the overview shows of a region: the counts of
// each village and their roll-ups, the never-inspected households of a
// village by name, and the inspections made per day.
type regionSummary struct {
	Villages  []survey.AreaCoverage
	Townships []survey.AreaCoverage
	Counties  []survey.AreaCoverage
	Totals    survey.CoverageCounts
	// Never lists the never-inspected households of the one village read
	// (readRegion's village), nil for a larger region.
	Never []survey.HouseholdMark
	// PerDay counts the inspections (housing and water) by the day they
	// were made, for the last len(PerDay) days, oldest first.
	PerDay []dayCount
}

// dayCount is the inspections of one day.
type dayCount struct {
	Day            string
	Housing, Water int
}

// perDayDays is how many days the overview's inspections-per-day cover.
const perDayDays = 14

// chinaTime is the survey's calendar: a day is a day in China.
var chinaTime = time.FixedZone("CST", 8*3600)

// readRegion is the one place the console reads a region's figures, all
// from the aggregates the store keeps in each write
// (syncproto.SummaryStore, through the ReportService, which reads every
// household instead only for a store keeping none): the counts per
// village with their roll-ups (CoverageSummaries: one row per village and
// counter), the never-inspected households of village when it is not ""
// (one index range of the village's summaries), and the inspections per
// day and form of the last perDayDays days (one row per village, day and
// form). Nothing here reads the region's records, so the overview of a
// province costs what its villages do, not its households.
func (c *Console) readRegion(ctx context.Context, actor syncproto.Actor, village string) (*regionSummary, error) {
	out := &regionSummary{}
	rep, err := c.cfg.Reports.CoverageSummaries(ctx, actor, func(a *survey.AreaCoverage) error {
		out.Villages = append(out.Villages, *a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.Townships, out.Counties, out.Totals = rep.Townships, rep.Counties, rep.Totals
	if village != "" {
		if out.Never, _, err = c.cfg.Reports.NeverInspected(ctx, actor, village); err != nil {
			return nil, err
		}
	}

	today := c.cfg.Now().In(chinaTime)
	index := map[string]int{}
	for i := perDayDays - 1; i >= 0; i-- {
		d := today.AddDate(0, 0, -i).Format(time.DateOnly)
		index[d] = len(out.PerDay)
		out.PerDay = append(out.PerDay, dayCount{Day: d})
	}
	days, _, err := c.cfg.Reports.InspectionDays(ctx, actor, out.PerDay[0].Day)
	if err != nil {
		return nil, err
	}
	forms := survey.FormsOf(c.cfg.Schema)
	for _, d := range days {
		i, ok := index[d.Day]
		if !ok {
			continue
		}
		switch d.Entity {
		case forms.Entity(survey.KindHousing):
			out.PerDay[i].Housing += d.Inspections
		case forms.Entity(survey.KindWater):
			out.PerDay[i].Water += d.Inspections
		}
	}
	return out, nil
}
