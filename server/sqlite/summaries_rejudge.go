package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// readKeptSummaries reads the kept summaries' settings.
func readKeptSummaries(ctx context.Context, p *pushTx) (syncproto.KeptSummaries, error) {
	var k syncproto.KeptSummaries
	if err := p.queryRow(ctx, `SELECT COALESCE((SELECT value FROM settings WHERE name = ?), ''),
		COALESCE((SELECT value FROM settings WHERE name = ?), ''), COALESCE((SELECT value FROM settings WHERE name = ?), '')`,
		summariesKeySetting, summariesAsOfSetting, summariesRejudgeSetting).Scan(&k.Key, &k.AsOf, &k.Rejudge); err != nil {
		return k, fmt.Errorf("summaries: %w", err)
	}
	return k, nil
}

// saveSetting stores a setting, value "" removing it.
func saveSetting(ctx context.Context, p *pushTx, name, value string) error {
	if value == "" {
		_, err := p.exec(ctx, `DELETE FROM settings WHERE name = ?`, name)
		return err
	}
	_, err := p.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}

// RejudgeSummaries judges the summaries of up to villages villages again
// as of the day of a standard's edition that took effect since they were
// judged (syncproto.SummaryStore), in one write transaction of the single
// writer: it marks the villages' households as a write does (their
// summaries are made again from their records, and the sums changed by
// the difference, at the transaction's end: SummaryBook.Keep) and stores
// the last village done with them.
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
	var done *syncproto.SummaryKeeper // the keeper once the last batch committed
	err := s.write(ctx, "rejudge_summaries", func(ctx context.Context, stx *superviseTx) error {
		p := &stx.pushTx
		kept, err := readKeptSummaries(ctx, p)
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
			// From here on every write judges as of the new day, this
			// batch's households among them (SummaryBook.Keep reads the
			// keeper at the end of the transaction).
			s.summaries.Store(&syncproto.SummaryKeeper{Sum: cur.Sum, AsOf: plan.Day, JudgedAsOf: cur.JudgedAsOf})
		}
		household := cur.Sum.Forms().HouseholdEntity()
		rows, err := p.query(ctx, `SELECT DISTINCT village FROM records WHERE entity = ? AND deleted = 0 AND village > ?
			ORDER BY village LIMIT ?`, household, plan.After, villages+1)
		list, err := collect(rows, err, "rejudge summaries", func(r rowScanner) (string, error) {
			var v string
			return v, r.Scan(&v)
		})
		if err != nil {
			return err
		}
		batch := list[:min(villages, len(list))]
		for _, v := range batch {
			rows, err := p.query(ctx, `SELECT id FROM records WHERE entity = ? AND village = ? AND deleted = 0
				UNION SELECT household_id FROM household_summaries WHERE village = ?`, household, v, v)
			ids, err := collect(rows, err, "rejudge summaries", func(r rowScanner) (string, error) {
				var id string
				return id, r.Scan(&id)
			})
			if err != nil {
				return err
			}
			stx.book.Touch(ids...)
		}
		if len(list) <= villages {
			day := plan.Day.Format(time.DateOnly)
			if err := saveSetting(ctx, p, summariesAsOfSetting, day); err != nil {
				return fmt.Errorf("rejudge summaries: %w", err)
			}
			if err := saveSetting(ctx, p, summariesRejudgeSetting, ""); err != nil {
				return fmt.Errorf("rejudge summaries: %w", err)
			}
			done = &syncproto.SummaryKeeper{Sum: cur.Sum, AsOf: plan.Day, JudgedAsOf: plan.Day}
			return nil
		}
		last := batch[len(batch)-1]
		if err := saveSetting(ctx, p, summariesRejudgeSetting, syncproto.RejudgeState(plan.Day, last)); err != nil {
			return fmt.Errorf("rejudge summaries: %w", err)
		}
		return p.queryRow(ctx, `SELECT COUNT(DISTINCT village) FROM records WHERE entity = ? AND deleted = 0 AND village > ?`,
			household, last).Scan(&left)
	})
	if err != nil {
		return 0, err
	}
	if done != nil {
		// Only once committed do the reads say the new day: they read
		// the sums committed.
		s.summaries.Store(done)
	}
	return left, nil
}
