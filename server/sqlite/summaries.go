package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

var _ syncproto.SummaryStore = (*Store)(nil)

// Settings of the kept summaries: the summarizer's key they were made
// with and the day they were judged as of.
const (
	summariesKeySetting  = "summaries_key"
	summariesAsOfSetting = "summaries_as_of"
)

// summaryKeeper is what the write path keeps summaries with: the
// summarizer and the day every kept summary is judged as of (a push judges
// as of that day too, so that the sums are of one judgement; the reads
// rebuild them when a standard's edition takes effect since).
type summaryKeeper struct {
	sum  *survey.Summarizer
	asOf time.Time
}

// summaryForms are the forms the transaction keeps summaries by, nil
// when the store keeps none.
func (p *pushTx) summaryForms() *survey.Forms {
	if p.keep == nil {
		return nil
	}
	return p.keep.sum.Forms()
}

// touch notes that a write changed the record id (a household, or the
// parent household of an inspection), whose summary is brought up to
// date before the transaction commits (keepSummaries).
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

// txQueryer runs the loader's queries through the transaction's prepared
// statements.
type txQueryer struct{ p *pushTx }

func (q txQueryer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return q.p.query(ctx, query, args...)
}

func (q txQueryer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return q.p.queryRow(ctx, query, args...)
}

// appendInspection notes a new inspection of the household: unless
// another write touches the household, its summary is brought up to date
// from the inspection and the old summary alone (keepSummaries).
func (p *pushTx) appendInspection(household string, in survey.InspectionFacts) {
	if p.touched[household] {
		return
	}
	if p.appended == nil {
		p.appended = map[string][]survey.InspectionFacts{}
	}
	p.appended[household] = append(p.appended[household], in)
}

// keepSummaries brings the summaries of the households the transaction
// touched up to date, and their villages' sums by the difference, in the
// transaction, before it commits. A touched id that is no live household
// (an inspection, a deleted or merged household) has no summary after it.
// A household that only had inspections appended gets them added to its
// summary (survey.Summarizer.Append) without reading its other
// inspections, unless the summary cannot tell what they change.
func (s *Store) keepSummaries(ctx context.Context, p *pushTx) error {
	k := s.summaries.Load()
	touched, appended := p.touched, p.appended
	p.touched, p.appended = nil, nil
	if len(touched) == 0 && len(appended) == 0 {
		return nil
	}
	if k != p.keep {
		// The keeper changed since the transaction began: make every
		// household it wrote from the records.
		for id := range appended {
			p.touch(id)
		}
		touched, appended = p.touched, nil
		p.touched = nil
	}
	if k == nil {
		// A write by a store not keeping summaries (fieldsync seed, an
		// import, a test) leaves any kept ones behind: forgetting their
		// key makes the next KeepSummaries rebuild them.
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
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("summary of %s: %w", id, err)
		}
		var cur *survey.HouseholdSummary
		if ins := appended[id]; !touched[id] && old != nil {
			if cur, err = appendSummary(ctx, p, k, old, ins); err != nil {
				return fmt.Errorf("summary of %s: %w", id, err)
			}
		}
		if cur == nil {
			if cur, err = summarizeHousehold(ctx, p, k, id); err != nil {
				return fmt.Errorf("summary of %s: %w", id, err)
			}
		}
		if old == nil && cur == nil {
			continue
		}
		if err := replaceSummary(ctx, p.exec, &sums, old, oldDoc, cur); err != nil {
			return err
		}
	}
	return sums.write(ctx, p.exec, p.queryRow)
}

// appendSummary adds the inspections ins, in order, to the household's
// summary old; nil when the summary cannot tell what one changes.
func appendSummary(ctx context.Context, p *pushTx, k *summaryKeeper, old *survey.HouseholdSummary, ins []survey.InspectionFacts) (*survey.HouseholdSummary, error) {
	forms := k.sum.Forms()
	live := func(id string) (bool, error) {
		var n int
		err := p.queryRow(ctx, `SELECT COUNT(*) FROM records WHERE id = ? AND parent_id = ? AND deleted = 0
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
func summarizeHousehold(ctx context.Context, p *pushTx, k *summaryKeeper, id string) (*survey.HouseholdSummary, error) {
	var cur *survey.HouseholdSummary
	// Read without the water fields: only the latest water inspection is
	// judged, so only its fields are read (a household visited often has
	// many).
	err := loadHouseholds(ctx, txQueryer{p}, `h.id = :household_id`, []any{sql.Named("household_id", id)}, k.sum.Forms(), syncproto.HouseholdQuery{},
		func(h *survey.HouseholdInspections) error {
			if w := h.LatestWater(); w != nil {
				var doc string
				if err := p.queryRow(ctx, `SELECT fields FROM records WHERE id = ?`, w.ID).Scan(&doc); err != nil {
					return err
				}
				if err := json.Unmarshal([]byte(doc), &w.Fields); err != nil {
					return err
				}
			}
			sum := k.sum.Summarize(h, k.asOf)
			cur = &sum
			return nil
		})
	return cur, err
}

type execer func(ctx context.Context, query string, args ...any) (sql.Result, error)

// villageSums are the changes a transaction makes to the per-village
// sums, added up over its households and written once at its end (a push
// of fifty inspections in one village changes one row, not fifty).
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
func (v *villageSums) write(ctx context.Context, exec execer, queryRow func(ctx context.Context, query string, args ...any) *sql.Row) error {
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
		err := queryRow(ctx, `SELECT counts FROM village_counts WHERE village = ?`, village).Scan(&doc)
		switch {
		case err == nil:
			if err := json.Unmarshal([]byte(doc), &counts); err != nil {
				return fmt.Errorf("village_counts of %s: %w", village, err)
			}
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("village_counts of %s: %w", village, err)
		}
		for k, n := range byVillage[village] {
			if counts[k] += n; counts[k] == 0 {
				delete(counts, k)
			}
		}
		if len(counts) == 0 {
			if _, err := exec(ctx, `DELETE FROM village_counts WHERE village = ?`, village); err != nil {
				return fmt.Errorf("village_counts of %s: %w", village, err)
			}
			continue
		}
		b, err := json.Marshal(counts)
		if err != nil {
			return err
		}
		if _, err := exec(ctx, `INSERT INTO village_counts (village, counts) VALUES (?, ?)
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
		if _, err := exec(ctx, `INSERT INTO village_days (village, day_form, n) VALUES (?, ?, ?)
			ON CONFLICT (village, day_form) DO UPDATE SET n = n + excluded.n`, k[0], k[1], n); err != nil {
			return fmt.Errorf("village_days: %w", err)
		}
		if n < 0 {
			if _, err := exec(ctx, `DELETE FROM village_days WHERE village = ? AND day_form = ? AND n = 0`, k[0], k[1]); err != nil {
				return fmt.Errorf("village_days: %w", err)
			}
		}
	}
	return nil
}

// replaceSummary writes cur in old's place (either may be nil: a new
// household, one gone) and adds the difference to sums.
func replaceSummary(ctx context.Context, exec execer, sums *villageSums, old *survey.HouseholdSummary, oldDoc string, cur *survey.HouseholdSummary) error {
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
		if _, err := exec(ctx, `DELETE FROM household_summaries WHERE household_id = ?`, old.ID); err != nil {
			return fmt.Errorf("summary of %s: %w", old.ID, err)
		}
		return nil
	}
	_, err := exec(ctx, `INSERT INTO household_summaries (household_id, village, never_inspected, with_water, last_inspected, summary)
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
// (syncproto.SummaryStore). The rebuild is one write transaction: it reads
// the households village by village (memory holds one village and the
// villages' codes) and writes every summary and sum afresh.
func (s *Store) KeepSummaries(ctx context.Context, sum *survey.Summarizer, today time.Time) error {
	return s.write(ctx, "keep_summaries", func(ctx context.Context, stx *superviseTx) error {
		tx := stx.tx
		var key, asOf string
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT value FROM settings WHERE name = ?), ''),
			COALESCE((SELECT value FROM settings WHERE name = ?), '')`, summariesKeySetting, summariesAsOfSetting).
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
			if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
				return fmt.Errorf("summaries: %w", err)
			}
		}
		// Installed inside the transaction: no push can come between the
		// rebuild and the first write that keeps them (the writer is one).
		// A failed commit leaves summaries that the next KeepSummaries
		// rebuilds (the stored key is then the old one).
		s.summaries.Store(&summaryKeeper{sum: sum, asOf: day})
		return nil
	})
}

// rebuildSummaries replaces every summary and per-village sum by those of
// the records, judged as of asOf, village by village.
func rebuildSummaries(ctx context.Context, tx *sql.Tx, sum *survey.Summarizer, asOf time.Time) error {
	for _, t := range []string{"household_summaries", "village_counts", "village_days"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
			return fmt.Errorf("rebuild summaries: %w", err)
		}
	}
	forms := sum.Forms()
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT village FROM records WHERE entity = ? AND deleted = 0 ORDER BY village`,
		forms.HouseholdEntity())
	villages, err := collect(rows, err, "rebuild summaries", func(r rowScanner) (string, error) {
		var v string
		return v, r.Scan(&v)
	})
	if err != nil {
		return err
	}
	insert, err := tx.PrepareContext(ctx, `INSERT INTO household_summaries (household_id, village, never_inspected,
		with_water, last_inspected, summary) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("rebuild summaries: %w", err)
	}
	defer insert.Close()
	addCount, err := tx.PrepareContext(ctx, `INSERT INTO village_counts (village, counts) VALUES (?, ?)`)
	if err != nil {
		return fmt.Errorf("rebuild summaries: %w", err)
	}
	defer addCount.Close()
	addDay, err := tx.PrepareContext(ctx, `INSERT INTO village_days (village, day_form, n) VALUES (?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("rebuild summaries: %w", err)
	}
	defer addDay.Close()
	for _, village := range villages {
		// The village's sums are added up here and written once.
		keys, days := map[string]int{}, map[string]int{}
		err := loadHouseholds(ctx, tx, `h.village = :village`, []any{sql.Named("village", village)}, forms, syncproto.HouseholdQuery{WaterFields: true},
			func(h *survey.HouseholdInspections) error {
				s := sum.Summarize(h, asOf)
				doc, err := json.Marshal(&s)
				if err != nil {
					return err
				}
				if _, err := insert.ExecContext(ctx, s.ID, s.Village, s.NeverInspected(), s.WithWater, s.LastInspected, string(doc)); err != nil {
					return err
				}
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
			if _, err := addCount.ExecContext(ctx, village, string(b)); err != nil {
				return fmt.Errorf("rebuild summaries of %s: %w", village, err)
			}
		}
		for k, n := range days {
			if _, err := addDay.ExecContext(ctx, village, k, n); err != nil {
				return fmt.Errorf("rebuild summaries of %s: %w", village, err)
			}
		}
	}
	return nil
}

// AreaSummaries reads the coverage counts of the actor's areas of a level
// from the per-village sums (syncproto.SummaryStore): one grouped read of
// the village_counts rows under the scope, in one read transaction.
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
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return at, fmt.Errorf("begin area summaries: %w", err)
	}
	defer tx.Rollback()
	if at.Seq, err = head(ctx, tx); err != nil {
		return at, fmt.Errorf("area summaries head: %w", err)
	}
	where, args := prefixClause("village", actor)
	rows, err := tx.QueryContext(ctx, `SELECT village, counts FROM village_counts WHERE `+where+` ORDER BY village`, args...)
	if err != nil {
		return at, fmt.Errorf("area summaries: %w", err)
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
		return at, fmt.Errorf("area summaries: %w", err)
	}
	return at, nil
}

// NeverInspectedHouseholds reads one village's blind spots from the
// summaries' partial index (syncproto.SummaryStore), with the marks the
// coverage report names them by.
func (s *Store) NeverInspectedHouseholds(ctx context.Context, actor syncproto.Actor, village string) ([]survey.HouseholdMark, syncproto.Cursor, error) {
	at := syncproto.Cursor{Scope: actor.ScopeKey()}
	k := s.summaries.Load()
	if k == nil {
		return nil, at, syncproto.ErrSummariesNotKept
	}
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, at, fmt.Errorf("begin never inspected: %w", err)
	}
	defer tx.Rollback()
	if at.Seq, err = head(ctx, tx); err != nil {
		return nil, at, fmt.Errorf("never inspected head: %w", err)
	}
	forms := k.sum.Forms()
	where, args := prefixClause("s.village", actor)
	args = append(args, sql.Named("village", village), sql.Named("head_name_path", jsonPath(forms.HeadName)),
		sql.Named("registration_no_path", jsonPath(forms.RegistrationNo)))
	rows, err := tx.QueryContext(ctx, `SELECT s.household_id, COALESCE(json_extract(h.fields, :head_name_path), ''),
		COALESCE(json_extract(h.fields, :registration_no_path), '')
		FROM household_summaries s JOIN records h ON h.id = s.household_id
		WHERE s.never_inspected AND s.village = :village AND `+where+` ORDER BY s.household_id`, args...)
	list, err := collect(rows, err, "never inspected", func(r rowScanner) (survey.HouseholdMark, error) {
		var m survey.HouseholdMark
		return m, r.Scan(&m.ID, &m.HeadName, &m.RegistrationNo)
	})
	if list == nil {
		list = []survey.HouseholdMark{}
	}
	return list, at, err
}

// InspectionDays sums the per-village inspections per day of the actor's
// scope from since on (syncproto.SummaryStore).
func (s *Store) InspectionDays(ctx context.Context, actor syncproto.Actor, since string) ([]syncproto.DayCount, syncproto.Cursor, error) {
	at := syncproto.Cursor{Scope: actor.ScopeKey()}
	if s.summaries.Load() == nil {
		return nil, at, syncproto.ErrSummariesNotKept
	}
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, at, fmt.Errorf("begin inspection days: %w", err)
	}
	defer tx.Rollback()
	if at.Seq, err = head(ctx, tx); err != nil {
		return nil, at, fmt.Errorf("inspection days head: %w", err)
	}
	where, args := prefixClause("village", actor)
	rows, err := tx.QueryContext(ctx, `SELECT day_form, SUM(n) FROM village_days WHERE day_form >= :since AND `+where+`
		GROUP BY day_form ORDER BY day_form`, append(args, sql.Named("since", since))...)
	list, err := collect(rows, err, "inspection days", func(r rowScanner) (syncproto.DayCount, error) {
		var d syncproto.DayCount
		var key string
		err := r.Scan(&key, &d.Inspections)
		d.Day, d.Entity = survey.SplitDayKey(key)
		return d, err
	})
	if list == nil {
		list = []syncproto.DayCount{}
	}
	return list, at, err
}
