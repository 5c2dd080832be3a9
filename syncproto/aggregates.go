package syncproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema/survey"
)

// SummaryStore is the part of a store that keeps the coverage aggregates
// the supervisors' overview reads: a summary per household
// (survey.HouseholdSummary, made by a survey.Summarizer: the coverage
// report's own judgement) written in the transaction of every write that
// changes the household or its inspections (a push, a move, a delete, a
// merge, a resolved conflict, an outbox replay), and per village the sums
// of the summaries' counters and the inspections per day, adjusted by the
// difference between a household's old and new summary. Its reads take
// one row per village (or per township or county), never one per record.
type SummaryStore interface {
	// KeepSummaries makes the store keep summaries made by sum from now
	// on, in one durable write of its write path. Summaries kept under
	// another sum.Key (another publication of the forms or standards), or
	// never kept, are first rebuilt from the records, judged as of today.
	// Summaries judged as of a day before a standard's edition that took
	// effect by today (sum.Rejudge) are kept on as they are, their reads
	// saying their day: RejudgeSummaries judges them again.
	KeepSummaries(ctx context.Context, sum *survey.Summarizer, today time.Time) error
	// RejudgeSummaries judges the kept summaries again as of today's day
	// when a standard's edition took effect since the day they are judged
	// as of (survey.Summarizer.Rejudge), a batch of at most villages
	// villages (in code order) per call, each batch one write transaction
	// of the store's write path, and returns how many villages are left
	// (0: done, or nothing due; then it writes nothing). From the first
	// batch on, writes judge as of the new day; the last moves the day
	// the reads say (Cursor.JudgedAsOf) on. A batch writes only the
	// summaries that changed and stores how far it got with them, so a
	// rejudge stopped in the middle resumes after its last committed
	// village (KeepSummaries on a restart keeps that state); judging a
	// village again is idempotent. It returns ErrSummariesNotKept before
	// KeepSummaries.
	RejudgeSummaries(ctx context.Context, today time.Time, villages int) (left int, err error)
	// AreaSummaries calls emit with the coverage counts of every area of
	// the level (survey.LevelVillage, LevelTownship, LevelCounty) of the
	// actor's scope that has households, in ascending code order, read
	// from the per-village sums in one read transaction, and returns the
	// head of the change log they reflect, under the actor's scope. The
	// counts are those the coverage report computes by reading every
	// household (syncproto.ReportService.Coverage) as of the day the
	// returned cursor's JudgedAsOf says: today's, or, while a standard's
	// edition that took effect since is being judged in
	// (RejudgeSummaries), the earlier day of the sums (a read never
	// rebuilds them). It returns ErrSummariesNotKept
	// before KeepSummaries; an error from emit stops it and is returned.
	AreaSummaries(ctx context.Context, actor Actor, level string, today time.Time, emit func(*survey.AreaCoverage) error) (Cursor, error)
	// NeverInspectedHouseholds returns the households of one village with
	// no inspection of either kind, by id, as the summaries hold them
	// (one index range, not the village's records), and the head of the
	// change log: none when the village is outside the actor's scope. The
	// cursor's JudgedAsOf is the sums' day (AreaSummaries). It returns
	// ErrSummariesNotKept before KeepSummaries.
	NeverInspectedHouseholds(ctx context.Context, actor Actor, village string) ([]survey.HouseholdMark, Cursor, error)
	// InspectionDays returns the number of accepted inspections of the
	// actor's scope per inspected_on day and form, for the days from since
	// ("YYYY-MM-DD", "" for all) on, in day order (then by form), read from the
	// per-village sums, and the head of the change log, its JudgedAsOf
	// the sums' day (AreaSummaries). It returns ErrSummariesNotKept
	// before KeepSummaries.
	InspectionDays(ctx context.Context, actor Actor, since string) ([]DayCount, Cursor, error)
	// LaggingVillages calls emit with at most n villages of the actor's
	// scope from the per-village sums, by one of two orders (LagBehind,
	// LagNeverInspected), reading no more village rows than it emits (an
	// index range), and returns the head of the change log, its
	// JudgedAsOf the sums' day (AreaSummaries). It returns
	// ErrSummariesNotKept before KeepSummaries; an error from emit stops
	// it and is returned; another order is EInvalid.
	LaggingVillages(ctx context.Context, actor Actor, order string, n int, emit func(*survey.AreaCoverage) error) (Cursor, error)
}

// The orders of SummaryStore.LaggingVillages, each breaking ties by
// village code.
const (
	// LagBehind is the villages whose coverage (VillageCoverage: the
	// lower of the shares of households with a housing and with a water
	// inspection, in whole percent rounded half up) is below 100, lowest
	// first.
	LagBehind = "behind"
	// LagNeverInspected is the villages with households never inspected,
	// most first.
	LagNeverInspected = "never_inspected"
)

// VillageCoverage is the coverage LagBehind orders villages by: the lower
// of the shares of households with a housing and with a water
// inspection, in whole percent rounded half up (0 for no households).
func VillageCoverage(c *survey.CoverageCounts) int {
	if c.Households == 0 {
		return 0
	}
	share := func(n int) int { return (n*100 + c.Households/2) / c.Households }
	return min(share(c.WithHousing), share(c.WithWater))
}

// LaggingVillages calls emit with at most n villages of the actor's scope
// in the order (LagBehind, LagNeverInspected): from the store's sums when
// it keeps them (SummaryStore.LaggingVillages), else from every
// village's counts (CoverageSummaries) sorted here. It returns the point
// of the change log they reflect.
func (r *ReportService) LaggingVillages(ctx context.Context, actor Actor, order string, n int, emit func(*survey.AreaCoverage) error) (Cursor, error) {
	if order != LagBehind && order != LagNeverInspected {
		return Cursor{}, Errorf(EInvalid, "no order %q of villages", order)
	}
	if ss, ok := r.store.(SummaryStore); ok {
		if err := r.refreshRegistrySums(ctx); err != nil {
			return Cursor{}, err
		}
		at, err := ss.LaggingVillages(ctx, actor, order, n, emit)
		if !errors.Is(err, ErrSummariesNotKept) {
			return at, err
		}
	}
	var list []survey.AreaCoverage
	rep, err := r.CoverageSummaries(ctx, actor, func(a *survey.AreaCoverage) error {
		if lagging(order, &a.Counts) {
			list = append(list, *a)
		}
		return nil
	})
	if err != nil {
		return Cursor{}, err
	}
	SortLagging(order, list)
	for i := range list[:min(n, len(list))] {
		if err := emit(&list[i]); err != nil {
			return rep.At, err
		}
	}
	return rep.At, nil
}

// lagging reports whether a village's counts put it in the order's list.
func lagging(order string, c *survey.CoverageCounts) bool {
	if order == LagBehind {
		return VillageCoverage(c) < 100
	}
	return c.NeverInspected > 0
}

// SortLagging sorts villages (in code order) by the order of
// LaggingVillages, ties kept in code order.
func SortLagging(order string, list []survey.AreaCoverage) {
	slices.SortStableFunc(list, func(a, b survey.AreaCoverage) int {
		if order == LagBehind {
			return VillageCoverage(&a.Counts) - VillageCoverage(&b.Counts)
		}
		return b.Counts.NeverInspected - a.Counts.NeverInspected
	})
}

// DayCount is the number of inspections of one form made on one day.
type DayCount struct {
	Day         string `json:"day"`
	Entity      string `json:"entity"`
	Inspections int    `json:"inspections"`
}

// ErrSummariesNotKept is the answer of a SummaryStore's reads before it was
// told to keep summaries (KeepSummaries): a reader falls back to reading
// every household (ReportService.Coverage).
var ErrSummariesNotKept = errors.New("the store keeps no household summaries")

// CoverageSummaries calls emit with the coverage counts of every village
// of the actor's scope that has households, in ascending code order, and
// returns the roll-ups per township and county and the totals: the counts
// of Coverage without its lists. A store that keeps summaries
// (SummaryStore) serves them from its per-village sums, whatever the
// region's size; another, or one not keeping them, from the households
// read one by one (Coverage). Both answer the same counts.
func (r *ReportService) CoverageSummaries(ctx context.Context, actor Actor, emit func(*survey.AreaCoverage) error) (*CoverageReport, error) {
	roll := r.summarizer.NewRollup()
	add := func(a *survey.AreaCoverage) error {
		roll.Add(a.Code, &a.Counts)
		return emit(a)
	}
	if ss, ok := r.store.(SummaryStore); ok {
		if err := r.refreshRegistrySums(ctx); err != nil {
			return nil, err
		}
		at, err := ss.AreaSummaries(ctx, actor, survey.LevelVillage, r.now(), add)
		if err == nil {
			return &CoverageReport{CoverageSummary: *roll.Finish(), At: at}, nil
		}
		if !errors.Is(err, ErrSummariesNotKept) {
			return nil, err
		}
	}
	rep, err := r.Coverage(ctx, actor, func(v *survey.VillageCoverage) error {
		return emit(&survey.AreaCoverage{Code: v.Code, Level: survey.LevelVillage, Counts: v.Counts})
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// NeverInspected returns the never-inspected households of one village of
// the actor's scope, by id, from the store's summaries when it keeps them
// (with the households only a registry lists, RegistrySumStore),
// else from the village's coverage, and the point of the change log the
// list reflects.
func (r *ReportService) NeverInspected(ctx context.Context, actor Actor, village string) ([]survey.HouseholdMark, Cursor, error) {
	if ss, ok := r.store.(SummaryStore); ok {
		if err := r.refreshRegistrySums(ctx); err != nil {
			return nil, Cursor{}, err
		}
		list, at, err := ss.NeverInspectedHouseholds(ctx, actor, village)
		if err == nil {
			list, err = r.withRegistryOnly(ctx, actor, village, list)
		}
		if !errors.Is(err, ErrSummariesNotKept) {
			return list, at, err
		}
	}
	list := []survey.HouseholdMark{}
	if !actor.InScope(village) {
		return list, Cursor{Scope: actor.ScopeKey()}, nil
	}
	actor.Scope, actor.AllRegions = []string{village}, false
	rep, err := r.Coverage(ctx, actor, func(v *survey.VillageCoverage) error {
		if v.Code == village {
			list = v.NeverInspected
		}
		return nil
	})
	if err != nil {
		return nil, Cursor{}, err
	}
	return list, rep.At, nil
}

// AreaSummaries calls emit with the coverage counts of every area of the
// level (survey.LevelVillage, LevelTownship, LevelCounty) of the actor's
// scope that has households, in code order: from the store's sums when it
// keeps them (SummaryStore), else from the coverage report read from every
// household. It returns the point of the change log they reflect; a level
// of no other name is EInvalid.
func (r *ReportService) AreaSummaries(ctx context.Context, actor Actor, level string, emit func(*survey.AreaCoverage) error) (Cursor, error) {
	if survey.LevelDigits(level) == 0 {
		return Cursor{}, Errorf(EInvalid, "no level %q of areas", level)
	}
	if ss, ok := r.store.(SummaryStore); ok {
		if err := r.refreshRegistrySums(ctx); err != nil {
			return Cursor{}, err
		}
		at, err := ss.AreaSummaries(ctx, actor, level, r.now(), emit)
		if !errors.Is(err, ErrSummariesNotKept) {
			return at, err
		}
	}
	rep, err := r.CoverageSummaries(ctx, actor, func(a *survey.AreaCoverage) error {
		if level == survey.LevelVillage {
			return emit(a)
		}
		return nil
	})
	if err != nil || level == survey.LevelVillage {
		return rep.atOrZero(), err
	}
	areas := rep.Townships
	if level == survey.LevelCounty {
		areas = rep.Counties
	}
	for i := range areas {
		if err := emit(&areas[i]); err != nil {
			return rep.At, err
		}
	}
	return rep.At, nil
}

func (r *CoverageReport) atOrZero() Cursor {
	if r == nil {
		return Cursor{}
	}
	return r.At
}

// InspectionDays returns the inspections of the actor's scope per day and
// form from since on (SummaryStore.InspectionDays): from the store's
// per-village sums when it keeps them, else counted from every
// household's inspections (the households' stream).
func (r *ReportService) InspectionDays(ctx context.Context, actor Actor, since string) ([]DayCount, Cursor, error) {
	if ss, ok := r.store.(SummaryStore); ok {
		list, at, err := ss.InspectionDays(ctx, actor, since)
		if !errors.Is(err, ErrSummariesNotKept) {
			return list, at, err
		}
	}
	type key struct{ day, entity string }
	counts := map[key]int{}
	at, err := r.store.HouseholdInspections(ctx, actor, HouseholdQuery{Forms: r.summarizer.Forms()}, func(h *survey.HouseholdInspections) error {
		for _, in := range h.Inspections {
			if in.InspectedOn != "" && in.InspectedOn >= since {
				counts[key{in.InspectedOn, in.Entity}]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, Cursor{}, err
	}
	list := make([]DayCount, 0, len(counts))
	for k, n := range counts {
		list = append(list, DayCount{Day: k.day, Entity: k.entity, Inspections: n})
	}
	slices.SortFunc(list, func(a, b DayCount) int {
		if c := strings.Compare(a.Day, b.Day); c != 0 {
			return c
		}
		return strings.Compare(a.Entity, b.Entity)
	})
	return list, at, nil
}

// SumAreas adds up villages' counters as a SummaryStore keeps them (each
// village's sums of survey.HouseholdSummary.Keys as one JSON object, from
// next in village order) per area of digits digits, calling emit with each
// area's sums in order: the one reading of the per-village sums both
// stores share.
func SumAreas(digits int, next func() (village, doc string, ok bool, err error), emit func(code string, keys map[string]int) error) error {
	var code string
	var keys map[string]int
	for {
		village, doc, ok, err := next()
		if err != nil {
			return err
		}
		area := village[:min(digits, len(village))]
		if keys != nil && (!ok || area != code) {
			if err := emit(code, keys); err != nil {
				return err
			}
			keys = nil
		}
		if !ok {
			return nil
		}
		if keys == nil {
			code, keys = area, map[string]int{}
		}
		if err := addCounts(doc, keys); err != nil {
			return fmt.Errorf("counts of %s: %w", village, err)
		}
	}
}

// addCounts adds a village's counters, a flat JSON object of integers as
// the stores write it ({"households":17,"grades/A":9}), to keys. It reads
// that shape itself, the province's overview decoding ten thousand of
// them a view (encoding/json was a third of its time), and leaves any
// other text (an escape in a key) to encoding/json.
func addCounts(doc string, keys map[string]int) error {
	if strings.ContainsRune(doc, '\\') {
		var counts map[string]int
		if err := json.Unmarshal([]byte(doc), &counts); err != nil {
			return err
		}
		for k, n := range counts {
			keys[k] += n
		}
		return nil
	}
	bad := fmt.Errorf("not a flat object of integers: %.40q", doc)
	i := 0
	skip := func() {
		for i < len(doc) && (doc[i] == ' ' || doc[i] == '\n' || doc[i] == '\t' || doc[i] == '\r') {
			i++
		}
	}
	skip()
	if i >= len(doc) || doc[i] != '{' {
		return bad
	}
	i++
	skip()
	if i < len(doc) && doc[i] == '}' {
		return nil
	}
	for {
		skip()
		if i >= len(doc) || doc[i] != '"' {
			return bad
		}
		end := strings.IndexByte(doc[i+1:], '"')
		if end < 0 {
			return bad
		}
		key := doc[i+1 : i+1+end]
		i += end + 2
		skip()
		if i >= len(doc) || doc[i] != ':' {
			return bad
		}
		i++
		skip()
		start := i
		if i < len(doc) && doc[i] == '-' {
			i++
		}
		for i < len(doc) && doc[i] >= '0' && doc[i] <= '9' {
			i++
		}
		n, err := strconv.Atoi(doc[start:i])
		if err != nil {
			return bad
		}
		keys[key] += n
		skip()
		if i >= len(doc) {
			return bad
		}
		switch doc[i] {
		case ',':
			i++
		case '}':
			return nil
		default:
			return bad
		}
	}
}
