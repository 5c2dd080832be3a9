package postgres

import (
	"context"
	"errors"
	"fmt"
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

// keepSummaries brings the summaries of the households the transaction
// touched or appended to up to date, and their areas' sums by the
// difference, before it commits (syncproto.SummaryBook.Keep; summaryTx
// below: its SQL).
func (s *Store) keepSummaries(ctx context.Context, p *pushTx) error {
	if err := p.book.Keep(ctx, s.summaries.Load(), summaryTx{p}); err != nil {
		return err
	}
	// A village's registry mark may be the last write queued.
	return p.flush(ctx)
}

// parentOf returns the parent of a record ("" for none).
func (p *pushTx) parentOf(ctx context.Context, id string) (string, error) {
	var parent *string
	if err := p.queryRow(ctx, `SELECT parent_id FROM records WHERE id = ?`, id).Scan(&parent); err != nil || parent == nil {
		return "", err
	}
	return *parent, nil
}

// summaryTx is the SQL of the summaries' bookkeeping
// (syncproto.SummaryTx) on a push transaction.
type summaryTx struct{ p *pushTx }

var _ syncproto.SummaryTx = summaryTx{}

func (t summaryTx) ForgetSummaries(ctx context.Context) error {
	_, err := t.p.exec(ctx, `DELETE FROM settings WHERE name = ?`, summariesKeySetting)
	return err
}

func (t summaryTx) loadDoc(ctx context.Context, query string, args ...any) (string, bool, error) {
	var doc string
	err := t.p.queryRow(ctx, query, args...).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return doc, err == nil, err
}

func (t summaryTx) LoadSummary(ctx context.Context, household string) (string, bool, error) {
	return t.loadDoc(ctx, `SELECT summary FROM household_summaries WHERE household_id = ?`, household)
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
	err := t.p.queryRow(ctx, `SELECT COUNT(*) FROM records WHERE id = ? AND parent_id = ? AND NOT deleted
		AND entity IN (?, ?)`, id, household, forms.Entity(survey.KindHousing), forms.Entity(survey.KindWater)).Scan(&n)
	return n > 0, err
}

func (t summaryTx) HouseholdInspections(ctx context.Context, forms *survey.Forms, id string) (*survey.HouseholdInspections, error) {
	if err := t.p.flush(ctx); err != nil {
		return nil, err
	}
	var out *survey.HouseholdInspections
	err := loadHouseholds(ctx, t.p.tx, `h.id = @household_id`, pgx.NamedArgs{"household_id": id}, forms,
		syncproto.HouseholdQuery{WaterFields: true}, func(h *survey.HouseholdInspections) error {
			out = h
			return nil
		})
	return out, err
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
		ON CONFLICT (village, day_form) DO UPDATE SET n = village_days.n + excluded.n`, village, dayForm, n); err != nil {
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
// changed are kept on, their rejudge left to RejudgeSummaries. The rebuild is one write transaction holding
// the write lock, village by village (syncproto.SummaryKeeper.Rebuild).
func (s *Store) KeepSummaries(ctx context.Context, sum *survey.Summarizer, today time.Time) error {
	return s.write(ctx, "keep_summaries", func(ctx context.Context, tx pgx.Tx) error {
		kept, err := readKeptSummaries(ctx, tx)
		if err != nil {
			return err
		}
		if k := syncproto.KeptKeeper(sum, kept); k != nil {
			s.summaries.Store(k)
			return nil
		}
		k := syncproto.NewKeeper(sum, today)
		if err := k.Rebuild(ctx, &rebuildTx{tx: tx, batch: &pgx.Batch{}}); err != nil {
			return err
		}
		for name, value := range map[string]string{summariesKeySetting: sum.Key(), summariesAsOfSetting: k.AsOf.Format(time.DateOnly),
			summariesRejudgeSetting: ""} {
			if err := saveSummarySetting(ctx, tx, name, value); err != nil {
				return err
			}
		}
		// Installed inside the transaction, under the write lock: no write
		// of this instance comes between the rebuild and the first write
		// that keeps them. A failed commit leaves the old key stored, so
		// the next KeepSummaries rebuilds them.
		s.summaries.Store(k)
		return nil
	})
}

// rebuildTx is the SQL of a rebuild (syncproto.SummaryRebuildTx): a
// village's rows are sent in one batch.
type rebuildTx struct {
	tx    pgx.Tx
	batch *pgx.Batch
}

func (r *rebuildTx) ClearSummaries(ctx context.Context) error {
	if _, err := r.tx.Exec(ctx, `TRUNCATE household_summaries, village_counts, area_counts, village_days`); err != nil {
		return err
	}
	return markAllRegistryVillages(ctx, r.tx)
}

func (r *rebuildTx) SummaryVillages(ctx context.Context, forms *survey.Forms) ([]string, error) {
	rows, err := r.tx.Query(ctx, `SELECT DISTINCT village FROM records WHERE entity = $1 AND NOT deleted ORDER BY village`,
		forms.HouseholdEntity())
	return collect(rows, err, "rebuild summaries", func(r pgx.Row) (string, error) {
		var v string
		return v, r.Scan(&v)
	})
}

func (r *rebuildTx) VillageHouseholds(ctx context.Context, forms *survey.Forms, village string, fn func(*survey.HouseholdInspections) error) error {
	return loadHouseholds(ctx, r.tx, `h.village = @village`, pgx.NamedArgs{"village": village}, forms,
		syncproto.HouseholdQuery{WaterFields: true}, fn)
}

func (r *rebuildTx) InsertSummary(_ context.Context, s *survey.HouseholdSummary, doc string) error {
	r.batch.Queue(`INSERT INTO household_summaries (household_id, village, never_inspected, with_water, last_inspected, summary)
		VALUES ($1, $2, $3, $4, $5, $6)`, s.ID, s.Village, s.NeverInspected(), s.WithWater, s.LastInspected, doc)
	return nil
}

func (r *rebuildTx) InsertAreaCounts(_ context.Context, digits int, area, doc string) error {
	if digits == 12 {
		r.batch.Queue(`INSERT INTO village_counts (village, counts) VALUES ($1, $2)`, area, doc)
	} else {
		r.batch.Queue(`INSERT INTO area_counts (digits, area, counts) VALUES ($1, $2, $3)`, digits, area, doc)
	}
	return nil
}

func (r *rebuildTx) InsertVillageDay(_ context.Context, village, dayForm string, n int) error {
	r.batch.Queue(`INSERT INTO village_days (village, day_form, n) VALUES ($1, $2, $3)`, village, dayForm, n)
	return nil
}

func (r *rebuildTx) VillageDone(ctx context.Context) error {
	b := r.batch
	r.batch = &pgx.Batch{}
	return r.tx.SendBatch(ctx, b).Close()
}

// AreaSummaries reads the coverage counts of the actor's areas of a level
// from the kept sums (syncproto.SummaryStore): the rows of that level
// under the scope, or the scope's own where it is narrower
// (syncproto.AreaRanges), in one read transaction.
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
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		if at.Seq, err = head(ctx, tx); err != nil {
			return fmt.Errorf("area summaries head: %w", err)
		}
		var list []syncproto.AreaRow
		for _, r := range syncproto.AreaRanges(actor, digits) {
			under := syncproto.Actor{Scope: []string{r.Prefix}, AllRegions: r.Prefix == ""}
			where, args := scopeClause("village", under)
			query := `SELECT village, counts FROM village_counts WHERE ` + where
			if r.Digits != 12 {
				where, args = scopeClause("area", under)
				query = `SELECT area, counts FROM area_counts WHERE digits = ? AND ` + where
				args = append([]any{r.Digits}, args...)
			}
			rows, err := tx.Query(ctx, rebind(query), args...)
			got, err := collect(rows, err, "area summaries", func(r pgx.Row) (syncproto.AreaRow, error) {
				var a syncproto.AreaRow
				return a, r.Scan(&a.Code, &a.Counts)
			})
			if err != nil {
				return err
			}
			list = append(list, got...)
		}
		err = syncproto.SumAreaRows(digits, list, func(code string, keys map[string]int) error {
			return emit(&survey.AreaCoverage{Code: code, Level: level, Counts: k.Sum.CountsOf(keys)})
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
	at.JudgedAsOf = k.ReportDay(s.now())
	var list []survey.HouseholdMark
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		if at.Seq, err = head(ctx, tx); err != nil {
			return fmt.Errorf("never inspected head: %w", err)
		}
		forms := k.Sum.Forms()
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
	k := s.summaries.Load()
	if k == nil {
		return nil, at, syncproto.ErrSummariesNotKept
	}
	at.JudgedAsOf = k.ReportDay(s.now())
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

// LaggingVillages reads at most n villages of the actor's scope in the
// order (syncproto.SummaryStore): a range of village_counts' partial index
// on the coverage or the never-inspected households its rows carry
// (migration 00008), in one read transaction.
func (s *Store) LaggingVillages(ctx context.Context, actor syncproto.Actor, order string, n int, emit func(*survey.AreaCoverage) error) (syncproto.Cursor, error) {
	at := syncproto.Cursor{Scope: actor.ScopeKey()}
	var query string
	switch order {
	case syncproto.LagBehind:
		query = `SELECT village, counts FROM village_counts WHERE coverage < 100 AND %s ORDER BY coverage, village LIMIT ?`
	case syncproto.LagNeverInspected:
		query = `SELECT village, counts FROM village_counts WHERE never_inspected > 0 AND %s
			ORDER BY never_inspected DESC, village LIMIT ?`
	default:
		return at, syncproto.Errorf(syncproto.EInvalid, "no order %q of villages", order)
	}
	k := s.summaries.Load()
	if k == nil {
		return at, syncproto.ErrSummariesNotKept
	}
	at.JudgedAsOf = k.ReportDay(s.now())
	var list []syncproto.AreaRow
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		if at.Seq, err = head(ctx, tx); err != nil {
			return fmt.Errorf("lagging villages head: %w", err)
		}
		where, args := scopeClause("village", actor)
		rows, err := tx.Query(ctx, rebind(fmt.Sprintf(query, where)), append(args, n)...)
		list, err = collect(rows, err, "lagging villages", func(r pgx.Row) (syncproto.AreaRow, error) {
			var a syncproto.AreaRow
			return a, r.Scan(&a.Code, &a.Counts)
		})
		return err
	})
	if err != nil {
		return at, err
	}
	return at, k.EmitVillages(list, emit)
}
