package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

var _ syncproto.SummaryStore = (*Store)(nil)

// Settings of the kept summaries: the summarizer's key they were made
// with and the day they were judged as of.
const (
	summariesKeySetting     = "summaries_key"
	summariesAsOfSetting    = "summaries_as_of"
	summariesRejudgeSetting = "summaries_rejudge"
)

// keepSummaries brings the summaries of the households the transaction
// touched up to date, and their areas' sums by the difference, in the
// transaction, before it commits (syncproto.SummaryBook.Keep: the logic;
// summaryTx below: its SQL).
func (s *Store) keepSummaries(ctx context.Context, p *pushTx) error {
	return p.book.Keep(ctx, s.summaries.Load(), summaryTx{p})
}

// parentOf returns the parent of a record ("" for none).
func (p *pushTx) parentOf(ctx context.Context, id string) (string, error) {
	var parent sql.NullString
	err := p.queryRow(ctx, `SELECT parent_id FROM records WHERE id = ?`, id).Scan(&parent)
	return parent.String, err
}

// summaryTx is the SQL of the summaries' bookkeeping
// (syncproto.SummaryTx) on a push transaction, through its prepared
// statements.
type summaryTx struct{ p *pushTx }

var _ syncproto.SummaryTx = summaryTx{}

func (t summaryTx) ForgetSummaries(ctx context.Context) error {
	_, err := t.p.exec(ctx, `DELETE FROM settings WHERE name = ?`, summariesKeySetting)
	return err
}

func (t summaryTx) LoadSummary(ctx context.Context, household string) (string, bool, error) {
	return t.loadDoc(ctx, `SELECT summary FROM household_summaries WHERE household_id = ?`, household)
}

func (t summaryTx) loadDoc(ctx context.Context, query string, args ...any) (string, bool, error) {
	var doc string
	err := t.p.queryRow(ctx, query, args...).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return doc, err == nil, err
}

func (t summaryTx) SaveSummary(ctx context.Context, s *survey.HouseholdSummary, doc string) error {
	_, err := t.p.exec(ctx, `INSERT INTO household_summaries (household_id, village, never_inspected, with_water, last_inspected, summary)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (household_id) DO UPDATE SET village = excluded.village,
		never_inspected = excluded.never_inspected, with_water = excluded.with_water,
		last_inspected = excluded.last_inspected, summary = excluded.summary`,
		s.ID, s.Village, s.NeverInspected(), s.WithWater, s.LastInspected, doc)
	return err
}

func (t summaryTx) DeleteSummary(ctx context.Context, household string) error {
	_, err := t.p.exec(ctx, `DELETE FROM household_summaries WHERE household_id = ?`, household)
	return err
}

func (t summaryTx) LiveInspection(ctx context.Context, forms *survey.Forms, household, id string) (bool, error) {
	var n int
	err := t.p.queryRow(ctx, `SELECT COUNT(*) FROM records WHERE id = ? AND parent_id = ? AND deleted = 0
		AND entity IN (?, ?)`, id, household, forms.Entity(survey.KindHousing), forms.Entity(survey.KindWater)).Scan(&n)
	return n > 0, err
}

// HouseholdInspections reads the household without the water fields but
// the latest water inspection's: only that one is judged (a household
// visited often has many).
func (t summaryTx) HouseholdInspections(ctx context.Context, forms *survey.Forms, id string) (*survey.HouseholdInspections, error) {
	var out *survey.HouseholdInspections
	err := loadHouseholds(ctx, t, `h.id = :household_id`, []any{sql.Named("household_id", id)}, forms, syncproto.HouseholdQuery{},
		func(h *survey.HouseholdInspections) error {
			if w := h.LatestWater(); w != nil {
				var doc string
				if err := t.p.queryRow(ctx, `SELECT fields FROM records WHERE id = ?`, w.ID).Scan(&doc); err != nil {
					return err
				}
				if err := json.Unmarshal([]byte(doc), &w.Fields); err != nil {
					return err
				}
			}
			out = h
			return nil
		})
	return out, err
}

// QueryContext and QueryRowContext run the loader's queries through the
// transaction's prepared statements.
func (t summaryTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.p.query(ctx, query, args...)
}

func (t summaryTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.p.queryRow(ctx, query, args...)
}

func (t summaryTx) LoadAreaCounts(ctx context.Context, digits int, area string) (string, bool, error) {
	if digits == 12 {
		return t.loadDoc(ctx, `SELECT counts FROM village_counts WHERE village = ?`, area)
	}
	return t.loadDoc(ctx, `SELECT counts FROM area_counts WHERE digits = ? AND area = ?`, digits, area)
}

func (t summaryTx) SaveAreaCounts(ctx context.Context, digits int, area, doc string) error {
	var err error
	switch {
	case digits == 12 && doc == "":
		_, err = t.p.exec(ctx, `DELETE FROM village_counts WHERE village = ?`, area)
	case digits == 12:
		_, err = t.p.exec(ctx, `INSERT INTO village_counts (village, counts) VALUES (?, ?)
			ON CONFLICT (village) DO UPDATE SET counts = excluded.counts`, area, doc)
	case doc == "":
		_, err = t.p.exec(ctx, `DELETE FROM area_counts WHERE digits = ? AND area = ?`, digits, area)
	default:
		_, err = t.p.exec(ctx, `INSERT INTO area_counts (digits, area, counts) VALUES (?, ?, ?)
			ON CONFLICT (digits, area) DO UPDATE SET counts = excluded.counts`, digits, area, doc)
	}
	return err
}

func (t summaryTx) AddVillageDay(ctx context.Context, village, dayForm string, n int) error {
	if _, err := t.p.exec(ctx, `INSERT INTO village_days (village, day_form, n) VALUES (?, ?, ?)
		ON CONFLICT (village, day_form) DO UPDATE SET n = n + excluded.n`, village, dayForm, n); err != nil {
		return err
	}
	if n < 0 {
		if _, err := t.p.exec(ctx, `DELETE FROM village_days WHERE village = ? AND day_form = ? AND n = 0`, village, dayForm); err != nil {
			return err
		}
	}
	return nil
}

// KeepSummaries makes the write path keep summaries made by sum, after
// rebuilding them when they were kept under another key or never kept
// (syncproto.SummaryStore); summaries a standard's edition has since
// changed are kept on, their rejudge left to RejudgeSummaries. The
// rebuild is one write transaction: it reads the households village by
// village (memory holds one village and the villages' codes) and writes
// every summary and sum afresh (syncproto.SummaryKeeper.Rebuild).
func (s *Store) KeepSummaries(ctx context.Context, sum *survey.Summarizer, today time.Time) error {
	return s.write(ctx, "keep_summaries", func(ctx context.Context, stx *superviseTx) error {
		tx := stx.tx
		kept, err := readKeptSummaries(ctx, &stx.pushTx)
		if err != nil {
			return err
		}
		if k := syncproto.KeptKeeper(sum, kept); k != nil {
			s.summaries.Store(k)
			return nil
		}
		k := syncproto.NewKeeper(sum, today)
		rtx, err := newRebuildTx(ctx, tx)
		if err != nil {
			return err
		}
		defer rtx.close()
		if err := k.Rebuild(ctx, rtx); err != nil {
			return err
		}
		for name, value := range map[string]string{summariesKeySetting: sum.Key(), summariesAsOfSetting: k.AsOf.Format(time.DateOnly),
			summariesRejudgeSetting: ""} {
			if err := saveSetting(ctx, &stx.pushTx, name, value); err != nil {
				return fmt.Errorf("summaries: %w", err)
			}
		}
		// Installed inside the transaction: no push can come between the
		// rebuild and the first write that keeps them (the writer is one).
		// A failed commit leaves summaries that the next KeepSummaries
		// rebuilds (the stored key is then the old one).
		s.summaries.Store(k)
		return nil
	})
}

// rebuildTx is the SQL of a rebuild (syncproto.SummaryRebuildTx): its
// inserts prepared once.
type rebuildTx struct {
	tx                                *sql.Tx
	insert, addCount, addArea, addDay *sql.Stmt
}

func newRebuildTx(ctx context.Context, tx *sql.Tx) (*rebuildTx, error) {
	r := &rebuildTx{tx: tx}
	for _, st := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&r.insert, `INSERT INTO household_summaries (household_id, village, never_inspected,
			with_water, last_inspected, summary) VALUES (?, ?, ?, ?, ?, ?)`},
		{&r.addCount, `INSERT INTO village_counts (village, counts) VALUES (?, ?)`},
		{&r.addArea, `INSERT INTO area_counts (digits, area, counts) VALUES (?, ?, ?)`},
		{&r.addDay, `INSERT INTO village_days (village, day_form, n) VALUES (?, ?, ?)`},
	} {
		var err error
		if *st.stmt, err = tx.PrepareContext(ctx, st.query); err != nil {
			r.close()
			return nil, fmt.Errorf("rebuild summaries: %w", err)
		}
	}
	return r, nil
}

func (r *rebuildTx) close() {
	for _, st := range []*sql.Stmt{r.insert, r.addCount, r.addArea, r.addDay} {
		if st != nil {
			st.Close()
		}
	}
}

func (r *rebuildTx) ClearSummaries(ctx context.Context) error {
	for _, t := range []string{"household_summaries", "village_counts", "area_counts", "village_days"} {
		if _, err := r.tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
			return err
		}
	}
	return markAllRegistryVillages(ctx, r.tx)
}

func (r *rebuildTx) SummaryVillages(ctx context.Context, forms *survey.Forms) ([]string, error) {
	rows, err := r.tx.QueryContext(ctx, `SELECT DISTINCT village FROM records WHERE entity = ? AND deleted = 0 ORDER BY village`,
		forms.HouseholdEntity())
	return collect(rows, err, "rebuild summaries", func(r rowScanner) (string, error) {
		var v string
		return v, r.Scan(&v)
	})
}

func (r *rebuildTx) VillageHouseholds(ctx context.Context, forms *survey.Forms, village string, fn func(*survey.HouseholdInspections) error) error {
	return loadHouseholds(ctx, r.tx, `h.village = :village`, []any{sql.Named("village", village)}, forms,
		syncproto.HouseholdQuery{WaterFields: true}, fn)
}

func (r *rebuildTx) InsertSummary(ctx context.Context, s *survey.HouseholdSummary, doc string) error {
	_, err := r.insert.ExecContext(ctx, s.ID, s.Village, s.NeverInspected(), s.WithWater, s.LastInspected, doc)
	return err
}

func (r *rebuildTx) InsertAreaCounts(ctx context.Context, digits int, area, doc string) error {
	if digits == 12 {
		_, err := r.addCount.ExecContext(ctx, area, doc)
		return err
	}
	_, err := r.addArea.ExecContext(ctx, digits, area, doc)
	return err
}

func (r *rebuildTx) InsertVillageDay(ctx context.Context, village, dayForm string, n int) error {
	_, err := r.addDay.ExecContext(ctx, village, dayForm, n)
	return err
}

func (r *rebuildTx) VillageDone(context.Context) error { return nil }

// AreaSummaries reads the coverage counts of the actor's areas of a level
// from the kept sums (syncproto.SummaryStore): the rows of that level
// under the scope (village_counts, or area_counts for townships and
// counties: one row per county), or the scope's own rows where it is
// narrower than the level (syncproto.AreaRanges), in one read
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
	at.JudgedAsOf = k.ReportDay(today)
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return at, fmt.Errorf("begin area summaries: %w", err)
	}
	defer tx.Rollback()
	if at.Seq, err = head(ctx, tx); err != nil {
		return at, fmt.Errorf("area summaries head: %w", err)
	}
	var list []syncproto.AreaRow
	for _, r := range syncproto.AreaRanges(actor, digits) {
		under := syncproto.Actor{Scope: []string{r.Prefix}, AllRegions: r.Prefix == ""}
		where, args := prefixClause("village", under)
		query := `SELECT village, counts FROM village_counts WHERE ` + where
		if r.Digits != 12 {
			where, args = prefixClause("area", under)
			query = `SELECT area, counts FROM area_counts WHERE digits = :digits AND ` + where
			args = append(args, sql.Named("digits", r.Digits))
		}
		rows, err := tx.QueryContext(ctx, query, args...)
		got, err := collect(rows, err, "area summaries", func(r rowScanner) (syncproto.AreaRow, error) {
			var a syncproto.AreaRow
			return a, r.Scan(&a.Code, &a.Counts)
		})
		if err != nil {
			return at, err
		}
		list = append(list, got...)
	}
	err = syncproto.SumAreaRows(digits, list, func(code string, keys map[string]int) error {
		return emit(&survey.AreaCoverage{Code: code, Level: level, Counts: k.Sum.CountsOf(keys)})
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
	var list []survey.HouseholdMark
	at, err := s.summaryRead(ctx, actor, "never inspected", true, func(tx *sql.Tx, k *syncproto.SummaryKeeper) error {
		forms := k.Sum.Forms()
		where, args := prefixClause("s.village", actor)
		args = append(args, sql.Named("village", village), sql.Named("head_name_path", jsonPath(forms.HeadName)),
			sql.Named("registration_no_path", jsonPath(forms.RegistrationNo)))
		rows, err := tx.QueryContext(ctx, `SELECT s.household_id, COALESCE(json_extract(h.fields, :head_name_path), ''),
		COALESCE(json_extract(h.fields, :registration_no_path), '')
		FROM household_summaries s JOIN records h ON h.id = s.household_id
		WHERE s.never_inspected AND s.village = :village AND `+where+` ORDER BY s.household_id`, args...)
		list, err = collect(rows, err, "never inspected", func(r rowScanner) (survey.HouseholdMark, error) {
			var m survey.HouseholdMark
			return m, r.Scan(&m.ID, &m.HeadName, &m.RegistrationNo)
		})
		return err
	})
	if errors.Is(err, syncproto.ErrSummariesNotKept) {
		return nil, at, err
	}
	if list == nil {
		list = []survey.HouseholdMark{}
	}
	return list, at, err
}

// summaryRead runs read in one read transaction of the kept summaries,
// after the head of the change log it reflects (and, when judged, the day
// the sums are judged as of) is put in the cursor it returns; it returns
// ErrSummariesNotKept before KeepSummaries. op names the read in errors.
func (s *Store) summaryRead(ctx context.Context, actor syncproto.Actor, op string, judged bool, read func(tx *sql.Tx, k *syncproto.SummaryKeeper) error) (syncproto.Cursor, error) {
	at := syncproto.Cursor{Scope: actor.ScopeKey()}
	k := s.summaries.Load()
	if k == nil {
		return at, syncproto.ErrSummariesNotKept
	}
	if judged {
		at.JudgedAsOf = k.ReportDay(s.now())
	}
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return at, fmt.Errorf("begin %s: %w", op, err)
	}
	defer tx.Rollback()
	if at.Seq, err = head(ctx, tx); err != nil {
		return at, fmt.Errorf("%s head: %w", op, err)
	}
	return at, read(tx, k)
}

// InspectionDays sums the per-village inspections per day of the actor's
// scope from since on (syncproto.SummaryStore).
func (s *Store) InspectionDays(ctx context.Context, actor syncproto.Actor, since string) ([]syncproto.DayCount, syncproto.Cursor, error) {
	var list []syncproto.DayCount
	at, err := s.summaryRead(ctx, actor, "inspection days", true, func(tx *sql.Tx, _ *syncproto.SummaryKeeper) error {
		where, args := prefixClause("village", actor)
		rows, err := tx.QueryContext(ctx, `SELECT day_form, SUM(n) FROM village_days WHERE day_form >= :since AND `+where+`
		GROUP BY day_form ORDER BY day_form`, append(args, sql.Named("since", since))...)
		list, err = collect(rows, err, "inspection days", func(r rowScanner) (syncproto.DayCount, error) {
			var d syncproto.DayCount
			var key string
			err := r.Scan(&key, &d.Inspections)
			d.Day, d.Entity = survey.SplitDayKey(key)
			return d, err
		})
		return err
	})
	if errors.Is(err, syncproto.ErrSummariesNotKept) {
		return nil, at, err
	}
	if list == nil {
		list = []syncproto.DayCount{}
	}
	return list, at, err
}

// LaggingVillages reads at most n villages of the actor's scope in the
// order (syncproto.SummaryStore), in one read transaction: for all regions
// a range of village_counts' partial index on the coverage or the
// never-inspected households its rows carry (migration 00023), for a
// scope its villages' rows (the planner's choice: a county's 200 rows
// sorted cost less than the index's 10,000 entries filtered).
func (s *Store) LaggingVillages(ctx context.Context, actor syncproto.Actor, order string, n int, emit func(*survey.AreaCoverage) error) (syncproto.Cursor, error) {
	at := syncproto.Cursor{Scope: actor.ScopeKey()}
	var query string
	switch order {
	case syncproto.LagBehind:
		query = `SELECT village, counts FROM village_counts WHERE coverage < 100 AND %s
			ORDER BY coverage, village LIMIT :n`
	case syncproto.LagNeverInspected:
		query = `SELECT village, counts FROM village_counts WHERE never_inspected > 0 AND %s
			ORDER BY never_inspected DESC, village LIMIT :n`
	default:
		return at, syncproto.Errorf(syncproto.EInvalid, "no order %q of villages", order)
	}
	k := s.summaries.Load()
	if k == nil {
		return at, syncproto.ErrSummariesNotKept
	}
	at.JudgedAsOf = k.ReportDay(s.now())
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return at, fmt.Errorf("begin lagging villages: %w", err)
	}
	defer tx.Rollback()
	if at.Seq, err = head(ctx, tx); err != nil {
		return at, fmt.Errorf("lagging villages head: %w", err)
	}
	where, args := prefixClause("village", actor)
	rows, err := tx.QueryContext(ctx, fmt.Sprintf(query, where), append(args, sql.Named("n", n))...)
	list, err := collect(rows, err, "lagging villages", func(r rowScanner) (syncproto.AreaRow, error) {
		var a syncproto.AreaRow
		return a, r.Scan(&a.Code, &a.Counts)
	})
	if err != nil {
		return at, err
	}
	return at, k.EmitVillages(list, emit)
}
