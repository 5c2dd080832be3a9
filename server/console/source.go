package console

import (
	"context"
	"time"

	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// regionSummary is what the overview shows of a region: the coverage of
// each village and its roll-ups, and the inspections made per day.
type regionSummary struct {
	Villages  []*survey.VillageCoverage
	Townships []survey.AreaCoverage
	Counties  []survey.AreaCoverage
	Totals    survey.CoverageCounts
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

// readRegion is the one place the console reads a region's figures: the
// coverage report through the ReportService (the same as GET
// /v1/reports/coverage), and the inspections per day from the household
// stream of the same store contract. It reads every household of the
// region, as the report does; when the store keeps per-village
// aggregates (ReportStore.VillageSummaries), this function is what
// switches to them.
func (c *Console) readRegion(ctx context.Context, actor syncproto.Actor) (*regionSummary, error) {
	out := &regionSummary{}
	rep, err := c.cfg.Reports.Coverage(ctx, actor, func(v *survey.VillageCoverage) error {
		out.Villages = append(out.Villages, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.Townships, out.Counties, out.Totals = rep.Townships, rep.Counties, rep.Totals

	today := c.cfg.Now().In(chinaTime)
	index := map[string]int{}
	for i := perDayDays - 1; i >= 0; i-- {
		d := today.AddDate(0, 0, -i).Format(time.DateOnly)
		index[d] = len(out.PerDay)
		out.PerDay = append(out.PerDay, dayCount{Day: d})
	}
	_, err = c.cfg.Store.HouseholdInspections(ctx, actor, syncproto.HouseholdQuery{Forms: survey.FormsOf(c.cfg.Schema)},
		func(h *survey.HouseholdInspections) error {
			for _, in := range h.Inspections {
				i, ok := index[in.InspectedOn]
				if !ok {
					continue
				}
				if in.Kind == survey.KindHousing {
					out.PerDay[i].Housing++
				} else {
					out.PerDay[i].Water++
				}
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}
