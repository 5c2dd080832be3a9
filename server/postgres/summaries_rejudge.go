package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/syncproto"
)

// summariesRejudgeSetting holds the rejudge under way
// (syncproto.KeptSummaries.Rejudge).
const summariesRejudgeSetting = "summaries_rejudge"

// readKeptSummaries reads the kept summaries' settings.
func readKeptSummaries(ctx context.Context, tx pgx.Tx) (syncproto.KeptSummaries, error) {
	var k syncproto.KeptSummaries
	if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT convert_from(value, 'UTF8') FROM settings WHERE name = $1), ''),
		COALESCE((SELECT convert_from(value, 'UTF8') FROM settings WHERE name = $2), ''),
		COALESCE((SELECT convert_from(value, 'UTF8') FROM settings WHERE name = $3), '')`,
		summariesKeySetting, summariesAsOfSetting, summariesRejudgeSetting).Scan(&k.Key, &k.AsOf, &k.Rejudge); err != nil {
		return k, fmt.Errorf("summaries: %w", err)
	}
	return k, nil
}

// saveSummarySetting stores a setting, value "" removing it.
func saveSummarySetting(ctx context.Context, tx pgx.Tx, name, value string) error {
	var err error
	if value == "" {
		_, err = tx.Exec(ctx, `DELETE FROM settings WHERE name = $1`, name)
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, []byte(value))
	}
	if err != nil {
		return fmt.Errorf("summaries: %w", err)
	}
	return nil
}

// RejudgeSummaries judges the summaries of up to villages villages again
// as of the day of a standard's edition that took effect since they were
// judged (syncproto.SummaryStore), in one write transaction holding the
// write lock, as the SQLite store does (its summaries_rejudge.go). Every
// instance of a deployment runs it (serve's background job): each
// switches its own writes to the new day at its first call once the day
// came, and the batches of all of them go on from the progress stored.
func (s *Store) RejudgeSummaries(ctx context.Context, today time.Time, villages int) (int, error) {
	k := s.summaries.Load()
	if k == nil {
		return 0, syncproto.ErrSummariesNotKept
	}
	if !k.RejudgeDue(today) {
		return 0, nil
	}
	villages = max(villages, 1)
	left := 0
	var final *syncproto.SummaryKeeper // the keeper once the last batch committed
	err := s.write(ctx, "rejudge_summaries", func(ctx context.Context, tx pgx.Tx) error {
		kept, err := readKeptSummaries(ctx, tx)
		if err != nil {
			return err
		}
		cur := s.summaries.Load()
		plan := syncproto.PlanRejudge(cur.Sum, kept, today)
		if kept.Key != cur.Sum.Key() {
			return nil // kept by other forms: the next start rebuilds them
		}
		if !plan.Due {
			// Judged again already (on PostgreSQL, by another instance):
			// this store's writes and reads take the stored day on.
			s.summaries.Store(syncproto.KeptKeeper(cur.Sum, kept))
			return nil
		}
		if !cur.AsOf.Equal(plan.Day) {
			// From here on this instance's writes judge as of the new day,
			// this batch's households among them.
			s.summaries.Store(&syncproto.SummaryKeeper{Sum: cur.Sum, AsOf: plan.Day, JudgedAsOf: cur.JudgedAsOf})
		}
		p := &pushTx{tx: tx, book: syncproto.NewSummaryBook(cur)}
		household := cur.Sum.Forms().HouseholdEntity()
		rows, err := tx.Query(ctx, `SELECT DISTINCT village FROM records WHERE entity = $1 AND NOT deleted AND village > $2
			ORDER BY village LIMIT $3`, household, plan.After, villages+1)
		list, err := collect(rows, err, "rejudge summaries", func(r pgx.Row) (string, error) {
			var v string
			return v, r.Scan(&v)
		})
		if err != nil {
			return err
		}
		batch := list[:min(villages, len(list))]
		for _, v := range batch {
			rows, err := tx.Query(ctx, `SELECT id FROM records WHERE entity = $1 AND village = $2 AND NOT deleted
				UNION SELECT household_id FROM household_summaries WHERE village = $2`, household, v)
			ids, err := collect(rows, err, "rejudge summaries", func(r pgx.Row) (string, error) {
				var id string
				return id, r.Scan(&id)
			})
			if err != nil {
				return err
			}
			p.book.Touch(ids...)
		}
		done := len(list) <= villages
		if done {
			if err := saveSummarySetting(ctx, tx, summariesAsOfSetting, plan.Day.Format(time.DateOnly)); err != nil {
				return err
			}
			if err := saveSummarySetting(ctx, tx, summariesRejudgeSetting, ""); err != nil {
				return err
			}
		} else {
			last := batch[len(batch)-1]
			if err := saveSummarySetting(ctx, tx, summariesRejudgeSetting, syncproto.RejudgeState(plan.Day, last)); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `SELECT COUNT(DISTINCT village) FROM records WHERE entity = $1 AND NOT deleted AND village > $2`,
				household, last).Scan(&left); err != nil {
				return fmt.Errorf("rejudge summaries: %w", err)
			}
		}
		if done {
			final = &syncproto.SummaryKeeper{Sum: cur.Sum, AsOf: plan.Day, JudgedAsOf: plan.Day}
		}
		return s.keepSummaries(ctx, p)
	})
	if err != nil {
		return 0, err
	}
	if final != nil {
		// Only once committed do the reads say the new day: they read
		// the sums committed.
		s.summaries.Store(final)
	}
	return left, nil
}
