package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The household summaries and per-village sums (syncproto.SummaryStore),
// kept as the SQLite store keeps them (its summaries.go says how; the
// queries mirror its own). Several instances on one database each keep
// them in their own writes: every instance of a deployment must keep them
// (serve does), or a write by one that does not forgets their key and the
// next start rebuilds them.

var _ syncproto.SummaryStore = (*Store)(nil)

// Settings of the kept summaries: the summarizer's key they were made
// with and the day they were judged as of.
const (
	summariesKeySetting  = "summaries_key"
	summariesAsOfSetting = "summaries_as_of"
)

// summaryKeeper is what the write path keeps summaries with: the
// summarizer and the day every kept summary is judged as of.
type summaryKeeper struct {
	sum  *survey.Summarizer
	asOf time.Time
}

// summaryForms are the forms the transaction keeps summaries by, nil when
// the store keeps none.
func (p *pushTx) summaryForms() *survey.Forms {
	if p.keep == nil {
		return nil
	}
	return p.keep.sum.Forms()
}

// touch notes households whose summaries are made again from their
// records before the transaction commits.
func (p *pushTx) touch(ids ...string) {
	for _, id := range ids {
		if id == "" {
			continue
		}
		if p.touched == nil {
			p.touched = map[string]bool{}
		}
		p.touched[id] = true
	}
}

// appendInspection notes a new inspection of the household: unless another
// write touches the household, its summary is brought up to date from the
// inspection and the old summary alone.
func (p *pushTx) appendInspection(household string, in survey.InspectionFacts) {
	if p.touched[household] {
		return
	}
	if p.appended == nil {
		p.appended = map[string][]survey.InspectionFacts{}
	}
	p.appended[household] = append(p.appended[household], in)
}

// noteWrite notes what a written record changes of the summaries: a
// household is summarized again, a new inspection appended to its
// household's summary, any other write of an inspection summarizes its
// household (and the one it left) again; a record of another form (a
// person) is in no summary.
func (p *pushTx) noteWrite(rec *syncproto.StoredRecord, e syncproto.LogEntry, seq int64, isNew bool, oldParent string) {
	forms := p.summaryForms()
	switch {
	case forms == nil:
		p.touch(rec.ID, rec.Parent, oldParent)
	case rec.Entity == forms.HouseholdEntity():
		p.touch(rec.ID)
	default:
		in, inspection := forms.InspectionOf(rec.ID, rec.Entity, rec.Fields)
		switch {
		case in.Kind == "":
		case inspection && isNew && !rec.Deleted && rec.MergedInto == "" && rec.Parent != "":
			// The device the reports name is the creating change's
			// (householdsQuery), else the record's last.
			in.UpdatedAt, in.Seq, in.Device = parseTime(formatTime(rec.UpdatedAt)), seq, rec.UpdatedDevice
			if e.Op == "create" {
				in.Device = e.DeviceID
			}
			p.appendInspection(rec.Parent, in)
		default:
			p.touch(rec.Parent, oldParent)
		}
	}
}

// noteRescope notes a record moved with its household: a household is
// summarized again, and so is an inspection's (its position in the log
// ranks it).
func (p *pushTx) noteRescope(ctx context.Context, c syncproto.Placement) error {
	forms := p.summaryForms()
	switch {
	case forms == nil || c.Entity == forms.HouseholdEntity():
		p.touch(c.ID)
	case c.Entity == forms.Entity(survey.KindHousing) || c.Entity == forms.Entity(survey.KindWater):
		var parent *string
		if err := p.queryRow(ctx, `SELECT parent_id FROM records WHERE id = ?`, c.ID).Scan(&parent); err != nil {
			return fmt.Errorf("rescope %s: %w", c.ID, err)
		}
		if parent != nil {
			p.touch(*parent)
		}
	}
	return nil
}

// keepSummaries brings the summaries of the households the transaction
// touched or appended to up to date, and their villages' sums by the
// difference, before it commits.
func (s *Store) keepSummaries(ctx context.Context, p *pushTx) error {
	k := s.summaries.Load()
	if k != p.keep {
		for id := range p.appended {
			p.touch(id)
		}
		p.appended = nil
	}
	touched, appended := p.touched, p.appended
	p.touched, p.appended = nil, nil
	if len(touched) == 0 && len(appended) == 0 {
		return nil
	}
	if k == nil {
		// A write by a store not keeping summaries leaves any kept ones
		// behind: forgetting their key makes the next KeepSummaries
		// rebuild them.
		if _, err := p.exec(ctx, `DELETE FROM settings WHERE name = ?`, summariesKeySetting); err != nil {
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
	var sums villageSums
	for _, id := range ids {
		var old *survey.HouseholdSummary
		var oldDoc string
		err := p.queryRow(ctx, `SELECT summary FROM household_summaries WHERE household_id = ?`, id).Scan(&oldDoc)
		switch {
		case err == nil:
			old = &survey.HouseholdSummary{}
			if err := json.Unmarshal([]byte(oldDoc), old); err != nil {
				return fmt.Errorf("summary of %s: %w", id, err)
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("summary of %s: %w", id, err)
		}
		var cur *survey.HouseholdSummary
		if ins := appended[id]; !touched[id] && old != nil {
			if cur, err = appendSummary(ctx, p, k, old, ins); err != nil {
				return fmt.Errorf("summary of %s: %w", id, err)
			}
		}
		if cur == nil {
			if cur, err = summarizeHousehold(ctx, p.tx, k, id); err != nil {
				return fmt.Errorf("summary of %s: %w", id, err)
			}
		}
		if old == nil && cur == nil {
			continue
		}
		if err := replaceSummary(ctx, p, &sums, old, oldDoc, cur); err != nil {
			return err
		}
	}
	return sums.write(ctx, p)
}

// appendSummary adds the inspections ins, in order, to the household's
// summary old; nil when the summary cannot tell what one changes.
func appendSummary(ctx context.Context, p *pushTx, k *summaryKeeper, old *survey.HouseholdSummary, ins []survey.InspectionFacts) (*survey.HouseholdSummary, error) {
	forms := k.sum.Forms()
	live := func(id string) (bool, error) {
		var n int
		err := p.queryRow(ctx, `SELECT COUNT(*) FROM records WHERE id = ? AND parent_id = ? AND NOT deleted
			AND entity IN (?, ?)`, id, old.ID, forms.Entity(survey.KindHousing), forms.Entity(survey.KindWater)).Scan(&n)
		return n > 0, err
	}
	cur := old
	for i := range ins {
		next, ok, err := k.sum.Append(cur, &ins[i], k.asOf, live)
		if err != nil || !ok {
			return nil, err
		}
		cur = &next
	}
	return cur, nil
}

// summarizeHousehold summarizes the household id from its inspections as
// the transaction holds them; nil when it is no live household.
func summarizeHousehold(ctx context.Context, tx pgx.Tx, k *summaryKeeper, id string) (*survey.HouseholdSummary, error) {
	var cur *survey.HouseholdSummary
	err := loadHouseholds(ctx, tx, `h.id = @household_id`, pgx.NamedArgs{"household_id": id}, k.sum.Forms(),
		syncproto.HouseholdQuery{WaterFields: true}, func(h *survey.HouseholdInspections) error {
			sum := k.sum.Summarize(h, k.asOf)
			cur = &sum
			return nil
		})
	return cur, err
}

// villageSums are the changes a transaction makes to the per-village sums,
// added up over its households and written once at its end.
type villageSums struct {
	counts, days map[[2]string]int // (village, key) → change
}

// add adds what replacing the summary old by cur (either may be nil)
// changes.
func (v *villageSums) add(old, cur *survey.HouseholdSummary) {
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

// write adds the changes to the sums: a village's counters are one JSON
// object, read, changed and written once; a counter that reaches zero is
// dropped, and a village left without any loses its row. The days are a
// row per village, day and form, removed at zero.
func (v *villageSums) write(ctx context.Context, p *pushTx) error {
	byVillage := map[string]map[string]int{}
	for k, n := range v.counts {
		if n != 0 {
			if byVillage[k[0]] == nil {
				byVillage[k[0]] = map[string]int{}
			}
			byVillage[k[0]][k[1]] += n
		}
	}
	for _, village := range slices.Sorted(maps.Keys(byVillage)) {
		var doc string
		counts := map[string]int{}
		err := p.queryRow(ctx, `SELECT counts FROM village_counts WHERE village = ?`, village).Scan(&doc)
		switch {
		case err == nil:
			if err := json.Unmarshal([]byte(doc), &counts); err != nil {
				return fmt.Errorf("village_counts of %s: %w", village, err)
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("village_counts of %s: %w", village, err)
		}
		for k, n := range byVillage[village] {
			if counts[k] += n; counts[k] == 0 {
				delete(counts, k)
			}
		}
		if len(counts) == 0 {
			if _, err := p.exec(ctx, `DELETE FROM village_counts WHERE village = ?`, village); err != nil {
				return fmt.Errorf("village_counts of %s: %w", village, err)
			}
			continue
		}
		b, err := json.Marshal(counts)
		if err != nil {
			return err
		}
		if _, err := p.exec(ctx, `INSERT INTO village_counts (village, counts) VALUES (?, ?)
			ON CONFLICT (village) DO UPDATE SET counts = excluded.counts`, village, string(b)); err != nil {
			return fmt.Errorf("village_counts of %s: %w", village, err)
		}
	}
	keys := slices.SortedFunc(maps.Keys(v.days), func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	for _, k := range keys {
		n := v.days[k]
		if n == 0 {
			continue
		}
		if _, err := p.exec(ctx, `INSERT INTO village_days (village, day_form, n) VALUES (?, ?, ?)
			ON CONFLICT (village, day_form) DO UPDATE SET n = village_days.n + excluded.n`, k[0], k[1], n); err != nil {
			return fmt.Errorf("village_days: %w", err)
		}
		if n < 0 {
			if _, err := p.exec(ctx, `DELETE FROM village_days WHERE village = ? AND day_form = ? AND n = 0`, k[0], k[1]); err != nil {
				return fmt.Errorf("village_days: %w", err)
			}
		}
	}
	return nil
}

// replaceSummary writes cur in old's place (either may be nil: a new
// household, one gone) and adds the difference to sums.
func replaceSummary(ctx context.Context, p *pushTx, sums *villageSums, old *survey.HouseholdSummary, oldDoc string, cur *survey.HouseholdSummary) error {
	var doc []byte
	if cur != nil {
		var err error
		if doc, err = json.Marshal(cur); err != nil {
			return err
		}
		if old != nil && string(doc) == oldDoc {
			return nil
		}
	}
	sums.add(old, cur)
	if cur == nil {
		if _, err := p.exec(ctx, `DELETE FROM household_summaries WHERE household_id = ?`, old.ID); err != nil {
			return fmt.Errorf("summary of %s: %w", old.ID, err)
		}
		return nil
	}
	_, err := p.exec(ctx, `INSERT INTO household_summaries (household_id, village, never_inspected, with_water, last_inspected, summary)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (household_id) DO UPDATE SET village = excluded.village,
		never_inspected = excluded.never_inspected, with_water = excluded.with_water,
		last_inspected = excluded.last_inspected, summary = excluded.summary`,
		cur.ID, cur.Village, cur.NeverInspected(), cur.WithWater, cur.LastInspected, string(doc))
	if err != nil {
		return fmt.Errorf("summary of %s: %w", cur.ID, err)
	}
	return nil
}

// KeepSummaries makes the write path keep summaries made by sum, after
// rebuilding them when they were kept under another key, judged as of a
// day a standard's edition has since changed, or never kept
// (syncproto.SummaryStore). The rebuild is one write transaction holding
// the write lock, village by village.
func (s *Store) KeepSummaries(ctx context.Context, sum *survey.Summarizer, today time.Time) error {
	return s.write(ctx, "keep_summaries", func(ctx context.Context, tx pgx.Tx) error {
		var key, asOf string
		if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT convert_from(value, 'UTF8') FROM settings WHERE name = $1), ''),
			COALESCE((SELECT convert_from(value, 'UTF8') FROM settings WHERE name = $2), '')`, summariesKeySetting, summariesAsOfSetting).
			Scan(&key, &asOf); err != nil {
			return fmt.Errorf("summaries: %w", err)
		}
		judged, err := time.Parse(time.DateOnly, asOf)
		if key == sum.Key() && err == nil && !sum.Rejudge(judged, today) {
			s.summaries.Store(&summaryKeeper{sum: sum, asOf: judged})
			return nil
		}
		day := today.UTC().Truncate(24 * time.Hour)
		if err := rebuildSummaries(ctx, tx, sum, day); err != nil {
			return err
		}
		for name, value := range map[string]string{summariesKeySetting: sum.Key(), summariesAsOfSetting: day.Format(time.DateOnly)} {
			if _, err := tx.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, []byte(value)); err != nil {
				return fmt.Errorf("summaries: %w", err)
			}
		}
		// Installed inside the transaction, under the write lock: no write
		// of this instance comes between the rebuild and the first write
		// that keeps them. A failed commit leaves the old key stored, so
		// the next KeepSummaries rebuilds them.
		s.summaries.Store(&summaryKeeper{sum: sum, asOf: day})
		return nil
	})
}

// rebuildSummaries replaces every summary and per-village sum by those of
// the records, judged as of asOf, village by village.
func rebuildSummaries(ctx context.Context, tx pgx.Tx, sum *survey.Summarizer, asOf time.Time) error {
	if _, err := tx.Exec(ctx, `TRUNCATE household_summaries, village_counts, village_days`); err != nil {
		return fmt.Errorf("rebuild summaries: %w", err)
	}
	forms := sum.Forms()
	rows, err := tx.Query(ctx, `SELECT DISTINCT village FROM records WHERE entity = $1 AND NOT deleted ORDER BY village`,
		forms.HouseholdEntity())
	villages, err := collect(rows, err, "rebuild summaries", func(r pgx.Row) (string, error) {
		var v string
		return v, r.Scan(&v)
	})
	if err != nil {
		return err
	}
	for _, village := range villages {
		keys, days := map[string]int{}, map[string]int{}
		batch := &pgx.Batch{}
		err := loadHouseholds(ctx, tx, `h.village = @village`, pgx.NamedArgs{"village": village}, forms, syncproto.HouseholdQuery{WaterFields: true},
			func(h *survey.HouseholdInspections) error {
				s := sum.Summarize(h, asOf)
				doc, err := json.Marshal(&s)
				if err != nil {
					return err
				}
				batch.Queue(`INSERT INTO household_summaries (household_id, village, never_inspected, with_water, last_inspected, summary)
					VALUES ($1, $2, $3, $4, $5, $6)`, s.ID, s.Village, s.NeverInspected(), s.WithWater, s.LastInspected, string(doc))
				for k, n := range s.Keys() {
					keys[k] += n
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
			batch.Queue(`INSERT INTO village_counts (village, counts) VALUES ($1, $2)`, village, string(b))
		}
		for k, n := range days {
			batch.Queue(`INSERT INTO village_days (village, day_form, n) VALUES ($1, $2, $3)`, village, k, n)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("rebuild summaries of %s: %w", village, err)
		}
	}
	return nil
}

// AreaSummaries reads the coverage counts of the actor's areas of a level
// from the per-village sums (syncproto.SummaryStore), in one read
// transaction.
func (s *Store) AreaSummaries(ctx context.Context, actor syncproto.Actor, level string, today time.Time, emit func(*survey.AreaCoverage) error) (syncproto.Cursor, error) {
	at := syncproto.Cursor{Scope: actor.ScopeKey()}
	digits := survey.LevelDigits(level)
	if digits == 0 {
		return at, syncproto.Errorf(syncproto.EInvalid, "no level %q of areas", level)
	}
	k := s.summaries.Load()
	if k == nil {
		return at, syncproto.ErrSummariesNotKept
	}
	if k.sum.Rejudge(k.asOf, today) {
		if err := s.KeepSummaries(ctx, k.sum, today); err != nil {
			return at, err
		}
		k = s.summaries.Load()
	}
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		if at.Seq, err = head(ctx, tx); err != nil {
			return fmt.Errorf("area summaries head: %w", err)
		}
		where, args := scopeClause("village", actor)
		rows, err := tx.Query(ctx, rebind(`SELECT village, counts FROM village_counts WHERE `+where+` ORDER BY village`), args...)
		if err != nil {
			return fmt.Errorf("area summaries: %w", err)
		}
		defer rows.Close()
		err = syncproto.SumAreas(digits, func() (string, string, bool, error) {
			if !rows.Next() {
				return "", "", false, rows.Err()
			}
			var village, doc string
			err := rows.Scan(&village, &doc)
			return village, doc, true, err
		}, func(code string, keys map[string]int) error {
			return emit(&survey.AreaCoverage{Code: code, Level: level, Counts: k.sum.CountsOf(keys)})
		})
		if err != nil {
			return fmt.Errorf("area summaries: %w", err)
		}
		return nil
	})
	return at, err
}

// NeverInspectedHouseholds reads one village's blind spots from the
// summaries' partial index (syncproto.SummaryStore).
func (s *Store) NeverInspectedHouseholds(ctx context.Context, actor syncproto.Actor, village string) ([]survey.HouseholdMark, syncproto.Cursor, error) {
	at := syncproto.Cursor{Scope: actor.ScopeKey()}
	k := s.summaries.Load()
	if k == nil {
		return nil, at, syncproto.ErrSummariesNotKept
	}
	var list []survey.HouseholdMark
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		if at.Seq, err = head(ctx, tx); err != nil {
			return fmt.Errorf("never inspected head: %w", err)
		}
		forms := k.sum.Forms()
		where, args := scopeClause("s.village", actor)
		rows, err := tx.Query(ctx, rebind(`SELECT s.household_id,
			COALESCE((CASE WHEN strpos(h.fields, E'\\u0000') = 0 THEN h.fields::jsonb END) ->> ?, ''),
			COALESCE((CASE WHEN strpos(h.fields, E'\\u0000') = 0 THEN h.fields::jsonb END) ->> ?, '')
			FROM household_summaries s JOIN records h ON h.id = s.household_id
			WHERE s.never_inspected AND s.village = ? AND `+where+` ORDER BY s.household_id`),
			append([]any{jsonKey(forms.HeadName), jsonKey(forms.RegistrationNo), village}, args...)...)
		list, err = collect(rows, err, "never inspected", func(r pgx.Row) (survey.HouseholdMark, error) {
			var m survey.HouseholdMark
			return m, r.Scan(&m.ID, &m.HeadName, &m.RegistrationNo)
		})
		return err
	})
	if list == nil {
		list = []survey.HouseholdMark{}
	}
	return list, at, err
}

// InspectionDays sums the per-village inspections per day and form of the
// actor's scope from since on (syncproto.SummaryStore).
func (s *Store) InspectionDays(ctx context.Context, actor syncproto.Actor, since string) ([]syncproto.DayCount, syncproto.Cursor, error) {
	at := syncproto.Cursor{Scope: actor.ScopeKey()}
	if s.summaries.Load() == nil {
		return nil, at, syncproto.ErrSummariesNotKept
	}
	var list []syncproto.DayCount
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		if at.Seq, err = head(ctx, tx); err != nil {
			return fmt.Errorf("inspection days head: %w", err)
		}
		where, args := scopeClause("village", actor)
		rows, err := tx.Query(ctx, rebind(`SELECT day_form, SUM(n)::bigint FROM village_days WHERE day_form >= ? AND `+where+`
			GROUP BY day_form ORDER BY day_form`), append([]any{since}, args...)...)
		list, err = collect(rows, err, "inspection days", func(r pgx.Row) (syncproto.DayCount, error) {
			var d syncproto.DayCount
			var key string
			var n int64
			err := r.Scan(&key, &n)
			d.Day, d.Entity = survey.SplitDayKey(key)
			d.Inspections = int(n)
			return d, err
		})
		return err
	})
	if list == nil {
		list = []syncproto.DayCount{}
	}
	return list, at, err
}
