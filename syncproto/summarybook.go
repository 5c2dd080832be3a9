package syncproto

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema/survey"
)

// SummaryKeeper is what a store's write path keeps the household
// summaries with (SummaryStore): the summarizer and the day a write
// judges the summaries it changes as of (so that the sums are of one
// judgement; a rejudge moves the day on when a standard's edition takes
// effect, SummaryStore.RejudgeSummaries), and the day the sums as a whole
// are judged as of: AsOf, but while a rejudge is under way the day before
// it (the villages not yet judged again are judged as of that day).
type SummaryKeeper struct {
	Sum        *survey.Summarizer
	AsOf       time.Time
	JudgedAsOf time.Time
}

// SummaryTx is the SQL a SummaryBook needs of a store's write transaction
// to keep the summaries and their sums: one household's summary, one
// area's counters (an area of a level, AreaLevels: a village's row, a
// township's or a county's, each one JSON object of
// survey.HouseholdSummary.Keys summed over its households), and the
// inspections per village, day and form. Every method works inside the transaction the book was made for.
type SummaryTx interface {
	// ForgetSummaries forgets the key the summaries were kept under, so
	// that the next KeepSummaries rebuilds them (a write by a store that
	// keeps none).
	ForgetSummaries(ctx context.Context) error
	// LoadSummary returns the stored summary document of a household,
	// ok false when it has none.
	LoadSummary(ctx context.Context, household string) (doc string, ok bool, err error)
	// SaveSummary stores the summary s (its JSON doc) of s.ID.
	SaveSummary(ctx context.Context, s *survey.HouseholdSummary, doc string) error
	// DeleteSummary removes the household's summary.
	DeleteSummary(ctx context.Context, household string) error
	// HouseholdInspections reads the household id with its inspections,
	// the latest water inspection's fields among them, as the
	// transaction holds them; nil when it is no live household.
	HouseholdInspections(ctx context.Context, forms *survey.Forms, id string) (*survey.HouseholdInspections, error)
	// LiveInspection reports whether id is a live inspection (housing or
	// water) of the household.
	LiveInspection(ctx context.Context, forms *survey.Forms, household, id string) (bool, error)
	// LoadAreaCounts returns the counters document of an area of the
	// level of digits digits (AreaLevels), ok false when it has no row.
	LoadAreaCounts(ctx context.Context, digits int, area string) (doc string, ok bool, err error)
	// SaveAreaCounts writes an area's counters document, doc "" removing
	// its row.
	SaveAreaCounts(ctx context.Context, digits int, area, doc string) error
	// AddVillageDay adds n (negative: removes) to the inspections of a
	// village on a day and form (dayForm "YYYY-MM-DD/entity"), dropping
	// the row at zero.
	AddVillageDay(ctx context.Context, village, dayForm string, n int) error
}

// SummaryBook is the summaries' bookkeeping of one write transaction of a
// store: which households its writes changed (Touch, NoteWrite,
// NoteRescope) or only added inspections to (AppendInspection), and, at
// the end (Keep), their summaries brought up to date and the difference
// added to their areas' sums, through the transaction's SummaryTx. It is
// the one place that logic lives; the stores supply the SQL. The zero
// value is a book of a store that keeps no summaries.
type SummaryBook struct {
	keep     *SummaryKeeper
	touched  map[string]bool
	appended map[string][]survey.InspectionFacts
	// households are the households whose own record a write changed:
	// their villages are marked for the registry-only counts (Keep,
	// RegistryMarkTx).
	households map[string]bool
}

// NewSummaryBook returns the book of a transaction that began while the
// store kept summaries with keep (nil: none; then every record written is
// touched).
func NewSummaryBook(keep *SummaryKeeper) SummaryBook { return SummaryBook{keep: keep} }

// Forms are the forms the transaction keeps summaries by, nil when the
// store keeps none.
func (b *SummaryBook) Forms() *survey.Forms {
	if b.keep == nil {
		return nil
	}
	return b.keep.Sum.Forms()
}

// Touch notes that a write changed the records ids (a household, or the
// parent household of an inspection; "" is skipped), whose summaries are
// made again from their records at the end (Keep).
func (b *SummaryBook) Touch(ids ...string) {
	for _, id := range ids {
		if id == "" {
			continue
		}
		if b.touched == nil {
			b.touched = map[string]bool{}
		}
		b.touched[id] = true
	}
}

// AppendInspection notes a new inspection of the household: unless
// another write touches the household, its summary is brought up to date
// from the inspection and the old summary alone (survey.Summarizer.Append).
func (b *SummaryBook) AppendInspection(household string, in survey.InspectionFacts) {
	if b.touched[household] {
		return
	}
	if b.appended == nil {
		b.appended = map[string][]survey.InspectionFacts{}
	}
	b.appended[household] = append(b.appended[household], in)
}

// Forget is called after a rollback to a savepoint: the households that
// had inspections appended are summarized from what the transaction holds
// at the end instead (the appended ones may be gone).
func (b *SummaryBook) Forget() {
	for id := range b.appended {
		b.Touch(id)
	}
	b.appended = nil
}

// NoteWrite notes what a written record changes of the summaries: a
// household is summarized again; a new live inspection (isNew) is
// appended to its household's summary, with updatedAt (the record's time
// as the store reads it back) and seq, the device of its creating change
// (e) else the record's last; any other write of an inspection summarizes
// its household and the one it left (oldParent) again; a record of
// another form (a person) is in no summary.
func (b *SummaryBook) NoteWrite(rec *StoredRecord, e LogEntry, seq int64, isNew bool, oldParent string, updatedAt time.Time) {
	forms := b.Forms()
	switch {
	case forms == nil:
		b.Touch(rec.ID, rec.Parent, oldParent)
	case rec.Entity == forms.HouseholdEntity():
		b.Touch(rec.ID)
		b.noteHousehold(rec.ID)
	default:
		in, inspection := forms.InspectionOf(rec.ID, rec.Entity, rec.Fields)
		switch {
		case in.Kind == "":
		case inspection && isNew && !rec.Deleted && rec.MergedInto == "" && rec.Parent != "":
			in.UpdatedAt, in.Seq, in.Device = updatedAt, seq, rec.UpdatedDevice
			if e.Op == "create" {
				in.Device = e.DeviceID
			}
			b.AppendInspection(rec.Parent, in)
		default:
			b.Touch(rec.Parent, oldParent)
		}
	}
}

// NoteRescope notes a record moved with its household: a household is
// summarized again, and so is an inspection's (its position in the log
// ranks it), found by parentOf ("" for none).
func (b *SummaryBook) NoteRescope(ctx context.Context, c Placement, parentOf func(ctx context.Context, id string) (string, error)) error {
	forms := b.Forms()
	switch {
	case forms == nil || c.Entity == forms.HouseholdEntity():
		b.Touch(c.ID)
		b.noteHousehold(c.ID)
	case c.Entity == forms.Entity(survey.KindHousing) || c.Entity == forms.Entity(survey.KindWater):
		parent, err := parentOf(ctx, c.ID)
		if err != nil {
			return fmt.Errorf("rescope %s: %w", c.ID, err)
		}
		b.Touch(parent)
	}
	return nil
}

// noteHousehold notes a write of the household's own record.
func (b *SummaryBook) noteHousehold(id string) {
	if b.households == nil {
		b.households = map[string]bool{}
	}
	b.households[id] = true
}

// markRegistryVillages marks, through tx when it is a RegistryMarkTx,
// the villages a written household was in before and is in after (old,
// cur: either nil): a household created, changed, moved, deleted or merged
// may match a registry's row, or stop matching it.
func markRegistryVillages(ctx context.Context, tx SummaryTx, old, cur *survey.HouseholdSummary) error {
	mt, ok := tx.(RegistryMarkTx)
	if !ok {
		return nil
	}
	for _, s := range []*survey.HouseholdSummary{old, cur} {
		if s == nil || (s == cur && old != nil && old.Village == cur.Village) {
			continue
		}
		if err := mt.MarkRegistryVillage(ctx, s.Village); err != nil {
			return fmt.Errorf("registry mark of %s: %w", s.Village, err)
		}
	}
	return nil
}

// Keep brings the summaries of the households the transaction touched or
// appended to up to date, and their areas' sums by the difference, in
// the transaction, before it commits; now is what the store keeps
// summaries with at the end (when it changed since the book was made,
// every household is made from its records). A touched id that is no live
// household (an inspection, a deleted or merged household) has no summary
// after it. A store keeping none forgets the kept ones' key instead. The
// book is empty after it.
func (b *SummaryBook) Keep(ctx context.Context, now *SummaryKeeper, tx SummaryTx) error {
	if now != b.keep {
		b.Forget()
	}
	touched, appended, households := b.touched, b.appended, b.households
	b.touched, b.appended, b.households = nil, nil, nil
	if len(touched) == 0 && len(appended) == 0 {
		return nil
	}
	if now == nil {
		if err := tx.ForgetSummaries(ctx); err != nil {
			return fmt.Errorf("summaries: %w", err)
		}
		return nil
	}
	ids := slices.Collect(maps.Keys(touched))
	for id := range appended {
		if !touched[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var sums AreaSums
	for _, id := range ids {
		var old *survey.HouseholdSummary
		oldDoc, ok, err := tx.LoadSummary(ctx, id)
		if err != nil {
			return fmt.Errorf("summary of %s: %w", id, err)
		}
		if ok {
			old = &survey.HouseholdSummary{}
			if err := json.Unmarshal([]byte(oldDoc), old); err != nil {
				return fmt.Errorf("summary of %s: %w", id, err)
			}
		}
		var cur *survey.HouseholdSummary
		if ins := appended[id]; !touched[id] && old != nil {
			if cur, err = now.append(ctx, tx, old, ins); err != nil {
				return fmt.Errorf("summary of %s: %w", id, err)
			}
		}
		if cur == nil {
			h, err := tx.HouseholdInspections(ctx, now.Sum.Forms(), id)
			if err != nil {
				return fmt.Errorf("summary of %s: %w", id, err)
			}
			if h != nil {
				s := now.Sum.Summarize(h, now.AsOf)
				cur = &s
			}
		}
		if old == nil && cur == nil {
			continue
		}
		if households[id] {
			if err := markRegistryVillages(ctx, tx, old, cur); err != nil {
				return err
			}
		}
		if err := replaceSummary(ctx, tx, &sums, old, oldDoc, cur); err != nil {
			return err
		}
	}
	return sums.Write(ctx, tx)
}

// append adds the inspections ins, in order, to the household's summary
// old; nil when the summary cannot tell what one changes.
func (k *SummaryKeeper) append(ctx context.Context, tx SummaryTx, old *survey.HouseholdSummary, ins []survey.InspectionFacts) (*survey.HouseholdSummary, error) {
	forms := k.Sum.Forms()
	live := func(id string) (bool, error) { return tx.LiveInspection(ctx, forms, old.ID, id) }
	cur := old
	for i := range ins {
		next, ok, err := k.Sum.Append(cur, &ins[i], k.AsOf, live)
		if err != nil || !ok {
			return nil, err
		}
		cur = &next
	}
	return cur, nil
}

// replaceSummary writes cur in old's place (either may be nil: a new
// household, one gone) and adds the difference to sums.
func replaceSummary(ctx context.Context, tx SummaryTx, sums *AreaSums, old *survey.HouseholdSummary, oldDoc string, cur *survey.HouseholdSummary) error {
	if cur == nil {
		sums.Add(old, cur)
		if err := tx.DeleteSummary(ctx, old.ID); err != nil {
			return fmt.Errorf("summary of %s: %w", old.ID, err)
		}
		return nil
	}
	doc, err := json.Marshal(cur)
	if err != nil {
		return err
	}
	if old != nil && string(doc) == oldDoc {
		return nil
	}
	sums.Add(old, cur)
	if err := tx.SaveSummary(ctx, cur, string(doc)); err != nil {
		return fmt.Errorf("summary of %s: %w", cur.ID, err)
	}
	return nil
}

// AreaSums are the changes a transaction makes to the per-village sums,
// added up over its households and written once at its end (a push of
// fifty inspections in one village changes one row, not fifty).
type AreaSums struct {
	counts, days map[[2]string]int // (village, key) → change
}

// Add adds what replacing the summary old by cur (either may be nil)
// changes.
func (v *AreaSums) Add(old, cur *survey.HouseholdSummary) {
	if v.counts == nil {
		v.counts, v.days = map[[2]string]int{}, map[[2]string]int{}
	}
	if old == nil || cur == nil || !old.SameKeys(cur) {
		for _, c := range []struct {
			s    *survey.HouseholdSummary
			sign int
		}{{old, -1}, {cur, 1}} {
			if c.s != nil {
				for k, n := range c.s.Keys() {
					v.counts[[2]string{c.s.Village, k}] += c.sign * n
				}
			}
		}
	}
	survey.AddDayChanges(old, cur, func(village, key string, n int) { v.days[[2]string{village, key}] += n })
}

// Write adds the changes to the sums: a village's changes to its row and
// to its township's and county's (AreaLevels); an area's counters are one
// JSON object, read, changed and written once per transaction; a counter
// that reaches zero is dropped, and an area left without any loses its
// row. The days are a row per village, day and form, removed at zero.
func (v *AreaSums) Write(ctx context.Context, tx SummaryTx) error {
	type area struct {
		digits int
		code   string
	}
	byArea := map[area]map[string]int{}
	for k, n := range v.counts {
		if n == 0 {
			continue
		}
		for _, d := range AreaLevels {
			a := area{d, k[0][:min(d, len(k[0]))]}
			if byArea[a] == nil {
				byArea[a] = map[string]int{}
			}
			byArea[a][k[1]] += n
		}
	}
	order := slices.SortedFunc(maps.Keys(byArea), func(a, b area) int {
		if a.digits != b.digits {
			return b.digits - a.digits
		}
		return strings.Compare(a.code, b.code)
	})
	for _, a := range order {
		if err := addAreaCounts(ctx, tx, a.digits, a.code, byArea[a]); err != nil {
			return fmt.Errorf("counts of %s: %w", a.code, err)
		}
	}
	keys := slices.SortedFunc(maps.Keys(v.days), func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	for _, k := range keys {
		if n := v.days[k]; n != 0 {
			if err := tx.AddVillageDay(ctx, k[0], k[1], n); err != nil {
				return fmt.Errorf("days of %s: %w", k[0], err)
			}
		}
	}
	return nil
}

// addAreaCounts adds delta to an area's counters.
func addAreaCounts(ctx context.Context, tx SummaryTx, digits int, area string, delta map[string]int) error {
	counts := map[string]int{}
	doc, ok, err := tx.LoadAreaCounts(ctx, digits, area)
	if err != nil {
		return err
	}
	if ok {
		if err := json.Unmarshal([]byte(doc), &counts); err != nil {
			return err
		}
	}
	for k, n := range delta {
		if counts[k] += n; counts[k] == 0 {
			delete(counts, k)
		}
	}
	if len(counts) == 0 {
		return tx.SaveAreaCounts(ctx, digits, area, "")
	}
	b, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	return tx.SaveAreaCounts(ctx, digits, area, string(b))
}

// AreaLevels are the levels of area whose counters a SummaryStore keeps,
// by the digits of their codes: villages (12), townships (9) and counties
// (6). Each is the sum of the level below, adjusted in the same
// transaction, so that the counts of a county are one row to read.
var AreaLevels = []int{12, 9, 6}

// AreaRange is the rows of one level whose codes start with Prefix.
type AreaRange struct {
	Digits int
	Prefix string
}

// AreaRanges are the rows a store reads for the counts of the areas of
// digits digits under the actor's scope: every row of that level for all
// regions; per scope prefix, the rows of that level under it, or, for a
// scope narrower than the level (a township's supervisor asking for
// counties), the scope's own rows (its township's), so that an area is
// counted only as far as it lies in the scope. A prefix under another is
// left out (its rows are the other's already).
func AreaRanges(actor Actor, digits int) []AreaRange {
	if actor.AllRegions {
		return []AreaRange{{Digits: digits, Prefix: ""}}
	}
	var out []AreaRange
	for _, p := range actor.Scope {
		if slices.ContainsFunc(actor.Scope, func(q string) bool { return q != p && strings.HasPrefix(p, q) }) ||
			slices.ContainsFunc(out, func(r AreaRange) bool { return r.Prefix == p }) {
			continue
		}
		level := AreaLevels[0]
		for _, d := range AreaLevels {
			if d >= max(digits, len(p)) {
				level = d
			}
		}
		out = append(out, AreaRange{Digits: level, Prefix: p})
	}
	return out
}

// AreaRow is one area's counters as a store keeps them.
type AreaRow struct {
	Code, Counts string
}

// SumAreaRows adds up the rows read for AreaRanges (in any order) per
// area of digits digits, calling emit with each area's sums in code
// order.
func SumAreaRows(digits int, rows []AreaRow, emit func(code string, keys map[string]int) error) error {
	slices.SortFunc(rows, func(a, b AreaRow) int { return strings.Compare(a.Code, b.Code) })
	i := 0
	return SumAreas(digits, func() (string, string, bool, error) {
		if i == len(rows) {
			return "", "", false, nil
		}
		i++
		return rows[i-1].Code, rows[i-1].Counts, true, nil
	}, emit)
}

// SummaryRebuildTx is the SQL a rebuild of every summary needs of a
// store's write transaction (SummaryKeeper.Rebuild).
type SummaryRebuildTx interface {
	// ClearSummaries removes every summary, area counters' row and
	// village day.
	ClearSummaries(ctx context.Context) error
	// SummaryVillages returns the villages with live households, in
	// order.
	SummaryVillages(ctx context.Context, forms *survey.Forms) ([]string, error)
	// VillageHouseholds calls fn with each live household of the village
	// and its inspections, the water inspections' fields among them.
	VillageHouseholds(ctx context.Context, forms *survey.Forms, village string, fn func(*survey.HouseholdInspections) error) error
	// InsertSummary adds the summary s (its JSON doc) of a household that
	// has none.
	InsertSummary(ctx context.Context, s *survey.HouseholdSummary, doc string) error
	// InsertAreaCounts adds the counters' row of an area of the level of
	// digits digits (AreaLevels) that has none.
	InsertAreaCounts(ctx context.Context, digits int, area, doc string) error
	// InsertVillageDay adds the row of a village's inspections on a day
	// and form.
	InsertVillageDay(ctx context.Context, village, dayForm string, n int) error
	// VillageDone is called after each village's rows and after the
	// townships' and counties' (a store may send them together).
	VillageDone(ctx context.Context) error
}

// NewKeeper returns the keeper of summaries judged as of today's day
// (UTC), the day a rebuild judges them as of.
func NewKeeper(sum *survey.Summarizer, today time.Time) *SummaryKeeper {
	day := today.UTC().Truncate(24 * time.Hour)
	return &SummaryKeeper{Sum: sum, AsOf: day, JudgedAsOf: day}
}

// Rebuild replaces every summary and sum by those of the records, judged
// as of k.AsOf, village by village: memory holds one village's households,
// the villages' codes and the townships' and counties' sums (written at
// the end).
func (k *SummaryKeeper) Rebuild(ctx context.Context, tx SummaryRebuildTx) error {
	if err := tx.ClearSummaries(ctx); err != nil {
		return fmt.Errorf("rebuild summaries: %w", err)
	}
	forms := k.Sum.Forms()
	villages, err := tx.SummaryVillages(ctx, forms)
	if err != nil {
		return fmt.Errorf("rebuild summaries: %w", err)
	}
	type area struct {
		digits int
		code   string
	}
	areas := map[area]map[string]int{}
	for _, village := range villages {
		// The village's sums are added up here and written once.
		keys, days := map[string]int{}, map[string]int{}
		err := tx.VillageHouseholds(ctx, forms, village, func(h *survey.HouseholdInspections) error {
			s := k.Sum.Summarize(h, k.AsOf)
			doc, err := json.Marshal(&s)
			if err != nil {
				return err
			}
			if err := tx.InsertSummary(ctx, &s, string(doc)); err != nil {
				return err
			}
			for key, n := range s.Keys() {
				keys[key] += n
			}
			for d, n := range s.DayKeys() {
				days[d] += n
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("rebuild summaries of %s: %w", village, err)
		}
		if len(keys) > 0 {
			b, err := json.Marshal(keys)
			if err != nil {
				return err
			}
			if err := tx.InsertAreaCounts(ctx, AreaLevels[0], village, string(b)); err != nil {
				return fmt.Errorf("rebuild summaries of %s: %w", village, err)
			}
		}
		for _, d := range AreaLevels[1:] {
			a := area{d, village[:min(d, len(village))]}
			if areas[a] == nil {
				areas[a] = map[string]int{}
			}
			for key, n := range keys {
				areas[a][key] += n
			}
		}
		for _, d := range slices.Sorted(maps.Keys(days)) {
			if err := tx.InsertVillageDay(ctx, village, d, days[d]); err != nil {
				return fmt.Errorf("rebuild summaries of %s: %w", village, err)
			}
		}
		if err := tx.VillageDone(ctx); err != nil {
			return fmt.Errorf("rebuild summaries of %s: %w", village, err)
		}
	}
	for a, keys := range areas {
		if len(keys) == 0 {
			continue
		}
		b, err := json.Marshal(keys)
		if err != nil {
			return err
		}
		if err := tx.InsertAreaCounts(ctx, a.digits, a.code, string(b)); err != nil {
			return fmt.Errorf("rebuild summaries of %s: %w", a.code, err)
		}
	}
	if err := tx.VillageDone(ctx); err != nil {
		return fmt.Errorf("rebuild summaries: %w", err)
	}
	return nil
}

// EmitVillages calls emit with the counts of each village row, in order
// (a store's SummaryStore.LaggingVillages).
func (k *SummaryKeeper) EmitVillages(rows []AreaRow, emit func(*survey.AreaCoverage) error) error {
	for _, row := range rows {
		keys := map[string]int{}
		if err := addCounts(row.Counts, keys); err != nil {
			return fmt.Errorf("counts of %s: %w", row.Code, err)
		}
		if err := emit(&survey.AreaCoverage{Code: row.Code, Level: survey.LevelVillage, Counts: k.Sum.CountsOf(keys)}); err != nil {
			return err
		}
	}
	return nil
}
