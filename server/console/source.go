package console

import (
	"context"
	"maps"
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
	// Behind and NeverVillages are the villages of lowest coverage and
	// those with the most households never inspected, at most
	// behindShown each, in that order (syncproto.LaggingVillages).
	Behind, NeverVillages []survey.AreaCoverage
	// Never lists the never-inspected households of the one village read
	// (readRegion's village), nil for a larger region.
	Never []survey.HouseholdMark
	// RegistryOnly are those of Never only a registry lists (no record
	// of theirs to link to), by id.
	RegistryOnly map[string]bool
	// PerDay counts the inspections (housing and water) by the day they
	// were made, for the last len(PerDay) days, oldest first.
	PerDay []dayCount
	// JudgedAsOf is the earliest day the kept sums read say they are
	// judged as of (syncproto.Cursor.JudgedAsOf: before today while they
	// are judged again under a standard's new edition); "" when the
	// figures were read from the records.
	JudgedAsOf string
}

// judged notes the day a read's figures are judged as of.
func (r *regionSummary) judged(at syncproto.Cursor) {
	if at.JudgedAsOf != "" && (r.JudgedAsOf == "" || at.JudgedAsOf < r.JudgedAsOf) {
		r.JudgedAsOf = at.JudgedAsOf
	}
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
// household instead only for a store keeping none). For a township or a
// village: the counts per village with their roll-ups (CoverageSummaries:
// one row per village), and for a village its never-inspected households
// (one index range of its summaries). For a county or a larger region:
// its areas one level down (one row per township or county) and their
// totals, and the villages behind and with households never inspected
// from two bounded index ranges (readAreas), so that the overview of a
// province costs what its counties do, not its villages. For every
// region, the inspections per day and form of the last perDayDays days
// (one row per village, day and form). Nothing here reads the region's
// records.
func (c *Console) readRegion(ctx context.Context, actor syncproto.Actor, code string) (*regionSummary, error) {
	out := &regionSummary{}
	if len(code) == 12 || len(code) == 9 {
		if err := c.readVillages(ctx, actor, out); err != nil {
			return nil, err
		}
	} else if err := c.readAreas(ctx, actor, code, out); err != nil {
		return nil, err
	}
	if len(code) == 12 {
		never, at, err := c.cfg.Reports.NeverInspected(ctx, actor, code)
		if err != nil {
			return nil, err
		}
		out.Never = never
		out.judged(at)
		if out.RegistryOnly, err = c.registryOnly(ctx, actor, code); err != nil {
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
	days, at, err := c.cfg.Reports.InspectionDays(ctx, actor, out.PerDay[0].Day)
	if err != nil {
		return nil, err
	}
	out.judged(at)
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

// readVillages reads the counts of every village of a township's or a
// village's region with their roll-ups, and the villages behind and with
// households never inspected among them.
func (c *Console) readVillages(ctx context.Context, actor syncproto.Actor, out *regionSummary) error {
	rep, err := c.cfg.Reports.CoverageSummaries(ctx, actor, func(a *survey.AreaCoverage) error {
		out.Villages = append(out.Villages, *a)
		return nil
	})
	if err != nil {
		return err
	}
	out.judged(rep.At)
	out.Townships, out.Counties, out.Totals = rep.Townships, rep.Counties, rep.Totals
	for _, v := range out.Villages {
		if syncproto.VillageCoverage(&v.Counts) < 100 {
			out.Behind = append(out.Behind, v)
		}
		if v.Counts.NeverInspected > 0 {
			out.NeverVillages = append(out.NeverVillages, v)
		}
	}
	syncproto.SortLagging(syncproto.LagBehind, out.Behind)
	syncproto.SortLagging(syncproto.LagNeverInspected, out.NeverVillages)
	out.Behind = out.Behind[:min(behindShown, len(out.Behind))]
	out.NeverVillages = out.NeverVillages[:min(behindShown, len(out.NeverVillages))]
	return nil
}

// readAreas reads a county's or a larger region's figures without its
// villages' counts: its areas one level down from the townships' or
// counties' sums (one row each), the totals added up from them, and the
// villages behind and with households never inspected, behindShown of
// each, from an index range (syncproto.LaggingVillages).
func (c *Console) readAreas(ctx context.Context, actor syncproto.Actor, code string, out *regionSummary) error {
	level, areas := survey.LevelCounty, &out.Counties
	if len(code) == 6 {
		level, areas = survey.LevelTownship, &out.Townships
	}
	at, err := c.cfg.Reports.AreaSummaries(ctx, actor, level, func(a *survey.AreaCoverage) error {
		*areas = append(*areas, *a)
		return nil
	})
	if err != nil {
		return err
	}
	out.judged(at)
	if len(*areas) == 0 {
		return c.readVillages(ctx, actor, out) // nothing to read: the totals' empty shape
	}
	out.Totals = cloneCounts(&(*areas)[0].Counts)
	for i := range (*areas)[1:] {
		out.Totals.AddCounts(&(*areas)[i+1].Counts)
	}
	for _, l := range []struct {
		order string
		list  *[]survey.AreaCoverage
	}{{syncproto.LagBehind, &out.Behind}, {syncproto.LagNeverInspected, &out.NeverVillages}} {
		at, err := c.cfg.Reports.LaggingVillages(ctx, actor, l.order, behindShown, func(a *survey.AreaCoverage) error {
			*l.list = append(*l.list, *a)
			return nil
		})
		if err != nil {
			return err
		}
		out.judged(at)
	}
	return nil
}

// cloneCounts copies counts deeply enough to add others to the copy.
func cloneCounts(c *survey.CoverageCounts) survey.CoverageCounts {
	out := *c
	out.Grades, out.DangerousByRenovation = maps.Clone(c.Grades), maps.Clone(c.DangerousByRenovation)
	out.WaterFailing, out.WaterUnrecorded, out.Status = maps.Clone(c.WaterFailing), maps.Clone(c.WaterUnrecorded), maps.Clone(c.Status)
	return out
}
