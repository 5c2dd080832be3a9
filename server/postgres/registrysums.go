package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The households only a registry lists in the kept sums
// (syncproto.RegistrySumStore), kept as the SQLite store keeps them (its
// registrysums.go; the queries mirror its own).

var _ syncproto.RegistrySumStore = (*Store)(nil)

// markAllRegistryVillages marks every village with registry rows and
// forgets the kept registry-only households: what a rebuild of the
// summaries (which clears the sums they were in) does.
func markAllRegistryVillages(ctx context.Context, tx pgx.Tx) error {
	for _, q := range []string{`TRUNCATE registry_only`,
		`INSERT INTO registry_marks (village) SELECT DISTINCT village FROM registry_rows ON CONFLICT DO NOTHING`} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("registry marks: %w", err)
		}
	}
	return nil
}

// MarkRegistryVillage marks the village when it has registry rows
// (syncproto.RegistryMarkTx): queued with the transaction's other writes,
// no round trip of its own.
func (t summaryTx) MarkRegistryVillage(_ context.Context, village string) error {
	t.p.later(`INSERT INTO registry_marks (village) SELECT ?
		WHERE EXISTS (SELECT 1 FROM registry_rows WHERE village = ?) ON CONFLICT DO NOTHING`, village, village)
	return nil
}

// RefreshRegistrySums reconciles up to limit marked villages in one write
// under the write lock (syncproto.RegistrySumStore); without marks it
// reads one row of the pool and writes nothing.
func (s *Store) RefreshRegistrySums(ctx context.Context, sch *schema.Schema, limit int) (int, error) {
	if s.summaries.Load() == nil {
		return 0, syncproto.ErrSummariesNotKept
	}
	var marked bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM registry_marks)`).Scan(&marked); err != nil {
		return 0, fmt.Errorf("registry marks: %w", err)
	}
	if !marked {
		return 0, nil
	}
	var left int
	err := s.write(ctx, "refresh_registry_sums", func(ctx context.Context, tx pgx.Tx) error {
		k := s.summaries.Load()
		if k == nil {
			return syncproto.ErrSummariesNotKept
		}
		p := &pushTx{tx: tx}
		rows, err := p.query(ctx, `SELECT village FROM registry_marks ORDER BY village LIMIT ?`, limit)
		villages, err := collect(rows, err, "registry marks", func(r pgx.Row) (string, error) {
			var v string
			return v, r.Scan(&v)
		})
		if err != nil {
			return err
		}
		rtx := registrySumTx{summaryTx{p}}
		for _, v := range villages {
			if err := syncproto.RefreshRegistryVillage(ctx, k, sch, rtx, v); err != nil {
				return err
			}
		}
		return p.queryRow(ctx, `SELECT COUNT(*) FROM registry_marks`).Scan(&left)
	})
	return left, err
}

// registrySumTx is the SQL of a refresh of the registry-only households
// (syncproto.RegistrySumTx) on a write transaction.
type registrySumTx struct{ summaryTx }

func (t registrySumTx) RegistryVillage(ctx context.Context, forms *survey.Forms, village string) (*syncproto.RegistryVillage, error) {
	if err := t.p.flush(ctx); err != nil {
		return nil, err
	}
	rv := &syncproto.RegistryVillage{Village: village}
	if err := loadHouseholds(ctx, t.p.tx, `h.village = @village`, pgx.NamedArgs{"village": village}, forms,
		syncproto.HouseholdQuery{}, func(h *survey.HouseholdInspections) error {
			rv.Households = append(rv.Households, h)
			return nil
		}); err != nil {
		return nil, err
	}
	if err := registryRows(ctx, t.p.tx, syncproto.Actor{Scope: []string{village}}, func(r *syncproto.RegistryRow) error {
		if r.Village == village {
			rv.Rows = append(rv.Rows, r)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return rv, nil
}

func (t registrySumTx) RegistryOnly(ctx context.Context, village string) (map[string]string, error) {
	rows, err := t.p.query(ctx, `SELECT household_id, summary FROM registry_only WHERE village = ?`, village)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, doc string
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, err
		}
		out[id] = doc
	}
	return out, rows.Err()
}

func (t registrySumTx) SaveRegistryOnly(_ context.Context, s *survey.HouseholdSummary, name, doc string) error {
	t.p.later(`INSERT INTO registry_only (village, household_id, head_name, summary) VALUES (?, ?, ?, ?)
		ON CONFLICT (village, household_id) DO UPDATE SET head_name = excluded.head_name, summary = excluded.summary`,
		s.Village, s.ID, name, doc)
	return nil
}

func (t registrySumTx) DeleteRegistryOnly(_ context.Context, village, id string) error {
	t.p.later(`DELETE FROM registry_only WHERE village = ? AND household_id = ?`, village, id)
	return nil
}

func (t registrySumTx) UnmarkRegistryVillage(_ context.Context, village string) error {
	t.p.later(`DELETE FROM registry_marks WHERE village = ?`, village)
	return nil
}

// RegistryOnlyHouseholds returns the kept registry-only households of one
// village in the actor's scope, by id (syncproto.RegistrySumStore).
func (s *Store) RegistryOnlyHouseholds(ctx context.Context, actor syncproto.Actor, village string) ([]survey.HouseholdMark, syncproto.Cursor, error) {
	at := syncproto.Cursor{Scope: actor.ScopeKey()}
	if s.summaries.Load() == nil {
		return nil, at, syncproto.ErrSummariesNotKept
	}
	var list []survey.HouseholdMark
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		if at.Seq, err = head(ctx, tx); err != nil {
			return fmt.Errorf("registry only head: %w", err)
		}
		where, args := scopeClause("village", actor)
		rows, err := tx.Query(ctx, rebind(`SELECT household_id, head_name FROM registry_only
			WHERE village = ? AND `+where+` ORDER BY household_id`), append([]any{village}, args...)...)
		list, err = collect(rows, err, "registry only", func(r pgx.Row) (survey.HouseholdMark, error) {
			var m survey.HouseholdMark
			return m, r.Scan(&m.ID, &m.HeadName)
		})
		return err
	})
	if list == nil {
		list = []survey.HouseholdMark{}
	}
	return list, at, err
}

// RegistryOnlyInScope calls emit with every kept registry-only household
// of the actor's scope, by village and id (syncproto.RegistrySumStore).
func (s *Store) RegistryOnlyInScope(ctx context.Context, actor syncproto.Actor, emit func(syncproto.RegistryOnly) error) (syncproto.Cursor, error) {
	at := syncproto.Cursor{Scope: actor.ScopeKey()}
	if s.summaries.Load() == nil {
		return at, syncproto.ErrSummariesNotKept
	}
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		if at.Seq, err = head(ctx, tx); err != nil {
			return fmt.Errorf("registry only head: %w", err)
		}
		where, args := scopeClause("village", actor)
		rows, err := tx.Query(ctx, rebind(`SELECT village, household_id, head_name FROM registry_only
			WHERE `+where+` ORDER BY village, household_id`), args...)
		if err != nil {
			return fmt.Errorf("registry only: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r syncproto.RegistryOnly
			if err := rows.Scan(&r.Village, &r.ID, &r.HeadName); err != nil {
				return fmt.Errorf("registry only: %w", err)
			}
			if err := emit(r); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	return at, err
}
