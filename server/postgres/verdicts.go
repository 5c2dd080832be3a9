package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

var _ syncproto.VerdictStore = (*Store)(nil)

// Settings of the kept verdicts, as in the SQLite store.
const (
	verdictsKeySetting  = "verdicts_key"
	verdictsAsOfSetting = "verdicts_as_of"
)

// markVerdicts marks the household a written record belongs to (the
// record itself when it has no parent) and the one it left, for the
// refresher to judge again: queued with the change set's writes, so that
// a rolled-back change set marks nothing (see the SQLite store).
func (p *pushTx) markVerdicts(id, parent, oldParent string) {
	household := parent
	if household == "" {
		household = id
	}
	for _, h := range []string{household, oldParent} {
		if h == "" || p.marked[h] {
			continue
		}
		p.later(`INSERT INTO verdicts_pending (household_id) VALUES (?) ON CONFLICT DO NOTHING`, h)
		if p.marked == nil {
			p.marked = map[string]bool{}
		}
		p.marked[h] = true
	}
}

// KeepVerdicts makes the store keep verdicts judged by j
// (syncproto.VerdictStore): when they were kept under another key, or
// never, every household is judged as of today, village by village, in
// one write transaction.
func (s *Store) KeepVerdicts(ctx context.Context, j *syncproto.VerdictJudge, today time.Time) error {
	return s.write(ctx, "keep_verdicts", func(ctx context.Context, tx pgx.Tx) error {
		p := &pushTx{tx: tx}
		var key string
		if err := p.queryRow(ctx, `SELECT COALESCE((SELECT convert_from(value, 'UTF8') FROM settings WHERE name = ?), '')`,
			verdictsKeySetting).Scan(&key); err != nil {
			return fmt.Errorf("verdicts: %w", err)
		}
		if key == j.Key() {
			s.verdicts.Store(j)
			return nil
		}
		if _, err := p.exec(ctx, `TRUNCATE household_verdicts, village_verdicts, verdicts_pending`); err != nil {
			return fmt.Errorf("rebuild verdicts: %w", err)
		}
		rows, err := p.query(ctx, `SELECT DISTINCT village FROM records WHERE entity = ? AND NOT deleted ORDER BY village`,
			j.Forms().HouseholdEntity())
		villages, err := collect(rows, err, "rebuild verdicts", func(r pgx.Row) (string, error) {
			var v string
			return v, r.Scan(&v)
		})
		if err != nil {
			return err
		}
		changes := syncproto.VerdictChanges{}
		for _, village := range villages {
			var kept []syncproto.KeptVerdict
			err := loadHouseholds(ctx, tx, `h.village = @village`, pgx.NamedArgs{"village": village}, j.Forms(),
				syncproto.HouseholdQuery{Children: true}, func(h *survey.HouseholdInspections) error {
					kept = append(kept, j.Judge(h, today))
					return nil
				})
			if err != nil {
				return fmt.Errorf("rebuild verdicts of %s: %w", village, err)
			}
			for i := range kept {
				changes.Replace(nil, &kept[i])
				if err := putVerdict(ctx, p, &kept[i]); err != nil {
					return err
				}
			}
		}
		if err := syncproto.WriteVerdictSums(ctx, verdictSumsTx{p}, changes); err != nil {
			return err
		}
		for name, value := range map[string]string{verdictsKeySetting: j.Key(), verdictsAsOfSetting: today.UTC().Format(time.DateOnly)} {
			if _, err := p.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, []byte(value)); err != nil {
				return fmt.Errorf("verdicts: %w", err)
			}
		}
		s.verdicts.Store(j)
		return nil
	})
}

// putVerdict writes a household's kept verdict.
func putVerdict(ctx context.Context, p *pushTx, k *syncproto.KeptVerdict) error {
	doc, err := json.Marshal(k)
	if err != nil {
		return err
	}
	if _, err := p.exec(ctx, `INSERT INTO household_verdicts (household_id, village, next_change, verdict) VALUES (?, ?, ?, ?)
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
	if errors.Is(err, pgx.ErrNoRows) {
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

// pendingQuery counts the households awaiting a judgement as of a day.
const pendingQuery = `SELECT (SELECT COUNT(*) FROM verdicts_pending) +
	(SELECT COUNT(*) FROM household_verdicts WHERE next_change <> '' AND next_change <= ?)`

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
	err := s.write(ctx, "refresh_verdicts", func(ctx context.Context, tx pgx.Tx) error {
		p := &pushTx{tx: tx}
		scan := func(r pgx.Row) (string, error) {
			var id string
			return id, r.Scan(&id)
		}
		rows, err := p.query(ctx, `SELECT household_id FROM verdicts_pending ORDER BY household_id LIMIT ?`, limit)
		ids, err := collect(rows, err, "refresh verdicts", scan)
		if err != nil {
			return err
		}
		if len(ids) < limit {
			rows, err := p.query(ctx, `SELECT household_id FROM household_verdicts WHERE next_change <> '' AND next_change <= ?
				ORDER BY next_change, household_id LIMIT ?`, day, limit-len(ids))
			due, err := collect(rows, err, "refresh verdicts", scan)
			if err != nil {
				return err
			}
			ids = append(ids, due...)
		}
		changes := syncproto.VerdictChanges{}
		for _, id := range ids {
			if err := rejudge(ctx, p, j, id, today, changes); err != nil {
				return err
			}
		}
		if err := syncproto.WriteVerdictSums(ctx, verdictSumsTx{p}, changes); err != nil {
			return err
		}
		if _, err := p.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, verdictsAsOfSetting, []byte(day)); err != nil {
			return fmt.Errorf("verdicts: %w", err)
		}
		return p.queryRow(ctx, pendingQuery, day).Scan(&left)
	})
	return left, err
}

// rejudge judges one household again, writes its verdict (or removes it,
// when it is no live household) and adds the difference to changes.
func rejudge(ctx context.Context, p *pushTx, j *syncproto.VerdictJudge, id string, today time.Time, changes syncproto.VerdictChanges) error {
	var old *syncproto.KeptVerdict
	var doc string
	switch err := p.queryRow(ctx, `SELECT verdict FROM household_verdicts WHERE household_id = ?`, id).Scan(&doc); {
	case err == nil:
		old = &syncproto.KeptVerdict{}
		if err := json.Unmarshal([]byte(doc), old); err != nil {
			return fmt.Errorf("verdict of %s: %w", id, err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("verdict of %s: %w", id, err)
	}
	var cur *syncproto.KeptVerdict
	err := loadHouseholds(ctx, p.tx, `h.id = @household_id`, pgx.NamedArgs{"household_id": id}, j.Forms(),
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
		return putVerdict(ctx, p, cur)
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
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		if read.At.Seq, err = head(ctx, tx); err != nil {
			return fmt.Errorf("area verdicts head: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT convert_from(value, 'UTF8') FROM settings WHERE name = $1), '')`,
			verdictsAsOfSetting).Scan(&read.AsOf); err != nil {
			return fmt.Errorf("area verdicts: %w", err)
		}
		if err := tx.QueryRow(ctx, rebind(pendingQuery), today.UTC().Format(time.DateOnly)).Scan(&read.Pending); err != nil {
			return fmt.Errorf("area verdicts: %w", err)
		}
		where, args := scopeClause("village", actor)
		rows, err := tx.Query(ctx, rebind(`SELECT village, counts FROM village_verdicts WHERE `+where+` ORDER BY village`), args...)
		if err != nil {
			return fmt.Errorf("area verdicts: %w", err)
		}
		defer rows.Close()
		return syncproto.SumAreas(digits, func() (string, string, bool, error) {
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
	})
	return read, err
}
