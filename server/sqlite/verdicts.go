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

var _ syncproto.VerdictStore = (*Store)(nil)

// Settings of the kept verdicts: the judge's key and the day of the
// latest judgement.
const (
	verdictsKeySetting  = "verdicts_key"
	verdictsAsOfSetting = "verdicts_as_of"
)

// markVerdicts marks the household a written record belongs to (the
// record itself when it has no parent) and the one it left, for the
// refresher to judge again: in the write's transaction, so that a
// rolled-back change set marks nothing. Every write marks, whether or not
// this store keeps verdicts now: verdicts kept by an earlier run stay
// right. (A move writes the household, a merge the survivor, the
// tombstone and each child repointed: each marks itself; the children
// rescoped with a household need no mark of their own.)
func (p *pushTx) markVerdicts(ctx context.Context, id, parent, oldParent string) error {
	household := parent
	if household == "" {
		household = id
	}
	for _, h := range []string{household, oldParent} {
		if h == "" || p.marked[h] {
			continue
		}
		if _, err := p.exec(ctx, `INSERT INTO verdicts_pending (household_id) VALUES (?) ON CONFLICT DO NOTHING`, h); err != nil {
			return fmt.Errorf("mark verdict: %w", err)
		}
		if p.marked == nil {
			p.marked = map[string]bool{}
		}
		p.marked[h] = true
	}
	return nil
}

// KeepVerdicts makes the store keep verdicts judged by j
// (syncproto.VerdictStore): when they were kept under another key, or
// never, every household is judged as of today, village by village, in
// one write transaction.
func (s *Store) KeepVerdicts(ctx context.Context, j *syncproto.VerdictJudge, today time.Time) error {
	return s.write(ctx, "keep_verdicts", func(ctx context.Context, stx *superviseTx) error {
		tx := stx.tx
		var key string
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT value FROM settings WHERE name = ?), '')`,
			verdictsKeySetting).Scan(&key); err != nil {
			return fmt.Errorf("verdicts: %w", err)
		}
		if key == j.Key() {
			s.verdicts.Store(j)
			return nil
		}
		for _, t := range []string{"household_verdicts", "village_verdicts", "verdicts_pending"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
				return fmt.Errorf("rebuild verdicts: %w", err)
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT village FROM records WHERE entity = ? AND deleted = 0 ORDER BY village`,
			j.Forms().HouseholdEntity())
		villages, err := collect(rows, err, "rebuild verdicts", func(r rowScanner) (string, error) {
			var v string
			return v, r.Scan(&v)
		})
		if err != nil {
			return err
		}
		changes := syncproto.VerdictChanges{}
		for _, village := range villages {
			err := loadHouseholds(ctx, tx, `h.village = :village`, []any{sql.Named("village", village)}, j.Forms(),
				syncproto.HouseholdQuery{Children: true}, func(h *survey.HouseholdInspections) error {
					k := j.Judge(h, today)
					changes.Replace(nil, &k)
					return putVerdict(ctx, stx.exec, &k)
				})
			if err != nil {
				return fmt.Errorf("rebuild verdicts of %s: %w", village, err)
			}
		}
		if err := syncproto.WriteVerdictSums(ctx, verdictSumsTx{&stx.pushTx}, changes); err != nil {
			return err
		}
		for name, value := range map[string]string{verdictsKeySetting: j.Key(), verdictsAsOfSetting: today.UTC().Format(time.DateOnly)} {
			if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
				return fmt.Errorf("verdicts: %w", err)
			}
		}
		s.verdicts.Store(j)
		return nil
	})
}

// execer is the Exec of a transaction or of a push's prepared statements.
type execer func(ctx context.Context, query string, args ...any) (sql.Result, error)

// putVerdict writes a household's kept verdict.
func putVerdict(ctx context.Context, exec execer, k *syncproto.KeptVerdict) error {
	doc, err := json.Marshal(k)
	if err != nil {
		return err
	}
	if _, err := exec(ctx, `INSERT INTO household_verdicts (household_id, village, next_change, verdict) VALUES (?, ?, ?, ?)
		ON CONFLICT (household_id) DO UPDATE SET village = excluded.village, next_change = excluded.next_change,
		verdict = excluded.verdict`, k.Household, k.Village, k.NextChange, string(doc)); err != nil {
		return fmt.Errorf("verdict of %s: %w", k.Household, err)
	}
	return nil
}

// verdictSumsTx is the push transaction's SQL for the villages' verdict
// sums (syncproto.WriteVerdictSums).
type verdictSumsTx struct{ p *pushTx }

func (t verdictSumsTx) LoadVillageVerdicts(ctx context.Context, village string) (string, bool, error) {
	var doc string
	err := t.p.queryRow(ctx, `SELECT counts FROM village_verdicts WHERE village = ?`, village).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return doc, err == nil, err
}

func (t verdictSumsTx) SaveVillageVerdicts(ctx context.Context, village, doc string) error {
	_, err := t.p.exec(ctx, `INSERT INTO village_verdicts (village, counts) VALUES (?, ?)
		ON CONFLICT (village) DO UPDATE SET counts = excluded.counts`, village, doc)
	return err
}

func (t verdictSumsTx) DeleteVillageVerdicts(ctx context.Context, village string) error {
	_, err := t.p.exec(ctx, `DELETE FROM village_verdicts WHERE village = ?`, village)
	return err
}

// RefreshVerdicts judges again, as of today, up to limit households a
// write marked or whose next change day has come, in one write
// transaction (syncproto.VerdictStore).
func (s *Store) RefreshVerdicts(ctx context.Context, today time.Time, limit int) (int, error) {
	j := s.verdicts.Load()
	if j == nil {
		return 0, syncproto.ErrVerdictsNotKept
	}
	day := today.UTC().Format(time.DateOnly)
	var left int
	err := s.write(ctx, "refresh_verdicts", func(ctx context.Context, stx *superviseTx) error {
		p := &stx.pushTx
		rows, err := p.query(ctx, `SELECT household_id FROM verdicts_pending ORDER BY household_id LIMIT ?`, limit)
		ids, err := collect(rows, err, "refresh verdicts", func(r rowScanner) (string, error) {
			var id string
			return id, r.Scan(&id)
		})
		if err != nil {
			return err
		}
		if len(ids) < limit {
			rows, err := p.query(ctx, `SELECT household_id FROM household_verdicts WHERE next_change != '' AND next_change <= ?
				ORDER BY next_change, household_id LIMIT ?`, day, limit-len(ids))
			due, err := collect(rows, err, "refresh verdicts", func(r rowScanner) (string, error) {
				var id string
				return id, r.Scan(&id)
			})
			if err != nil {
				return err
			}
			ids = append(ids, due...)
		}
		changes := syncproto.VerdictChanges{}
		for _, id := range ids {
			if err := s.rejudge(ctx, p, j, id, today, changes); err != nil {
				return err
			}
		}
		if err := syncproto.WriteVerdictSums(ctx, verdictSumsTx{p}, changes); err != nil {
			return err
		}
		if _, err := p.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, verdictsAsOfSetting, day); err != nil {
			return fmt.Errorf("verdicts: %w", err)
		}
		return p.queryRow(ctx, pendingQuery, day).Scan(&left)
	})
	return left, err
}

// pendingQuery counts the households awaiting a judgement as of a day.
const pendingQuery = `SELECT (SELECT COUNT(*) FROM verdicts_pending) +
	(SELECT COUNT(*) FROM household_verdicts WHERE next_change != '' AND next_change <= ?)`

// rejudge judges one household again, writes its verdict (or removes it,
// when it is no live household) and adds the difference to changes.
func (s *Store) rejudge(ctx context.Context, p *pushTx, j *syncproto.VerdictJudge, id string, today time.Time, changes syncproto.VerdictChanges) error {
	var old *syncproto.KeptVerdict
	var doc string
	switch err := p.queryRow(ctx, `SELECT verdict FROM household_verdicts WHERE household_id = ?`, id).Scan(&doc); {
	case err == nil:
		old = &syncproto.KeptVerdict{}
		if err := json.Unmarshal([]byte(doc), old); err != nil {
			return fmt.Errorf("verdict of %s: %w", id, err)
		}
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("verdict of %s: %w", id, err)
	}
	var cur *syncproto.KeptVerdict
	err := loadHouseholds(ctx, summaryTx{p}, `h.id = :household_id`, []any{sql.Named("household_id", id)}, j.Forms(),
		syncproto.HouseholdQuery{Children: true}, func(h *survey.HouseholdInspections) error {
			k := j.Judge(h, today)
			cur = &k
			return nil
		})
	if err != nil {
		return fmt.Errorf("verdict of %s: %w", id, err)
	}
	if _, err := p.exec(ctx, `DELETE FROM verdicts_pending WHERE household_id = ?`, id); err != nil {
		return fmt.Errorf("verdict of %s: %w", id, err)
	}
	changes.Replace(old, cur)
	switch {
	case cur != nil:
		return putVerdict(ctx, p.exec, cur)
	case old != nil:
		if _, err := p.exec(ctx, `DELETE FROM household_verdicts WHERE household_id = ?`, id); err != nil {
			return fmt.Errorf("verdict of %s: %w", id, err)
		}
	}
	return nil
}

// AreaVerdicts reads the kept verdicts' sums of the actor's areas of a
// level (syncproto.VerdictStore): the village_verdicts rows under the
// scope, in one read transaction.
func (s *Store) AreaVerdicts(ctx context.Context, actor syncproto.Actor, level string, today time.Time, emit func(*syncproto.AreaVerdicts) error) (syncproto.VerdictsRead, error) {
	read := syncproto.VerdictsRead{At: syncproto.Cursor{Scope: actor.ScopeKey()}}
	digits := survey.LevelDigits(level)
	if digits == 0 {
		return read, syncproto.Errorf(syncproto.EInvalid, "no level %q of areas", level)
	}
	j := s.verdicts.Load()
	if j == nil {
		return read, syncproto.ErrVerdictsNotKept
	}
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return read, fmt.Errorf("begin area verdicts: %w", err)
	}
	defer tx.Rollback()
	if read.At.Seq, err = head(ctx, tx); err != nil {
		return read, fmt.Errorf("area verdicts head: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT value FROM settings WHERE name = ?), '')`, verdictsAsOfSetting).
		Scan(&read.AsOf); err != nil {
		return read, fmt.Errorf("area verdicts: %w", err)
	}
	if err := tx.QueryRowContext(ctx, pendingQuery, today.UTC().Format(time.DateOnly)).Scan(&read.Pending); err != nil {
		return read, fmt.Errorf("area verdicts: %w", err)
	}
	where, args := prefixClause("village", actor)
	rows, err := tx.QueryContext(ctx, `SELECT village, counts FROM village_verdicts WHERE `+where+` ORDER BY village`, args...)
	if err != nil {
		return read, fmt.Errorf("area verdicts: %w", err)
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
		a := j.AreaOf(level, code, keys)
		return emit(&a)
	})
	if err != nil {
		return read, err
	}
	return read, nil
}
