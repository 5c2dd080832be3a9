package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

var _ syncproto.RegistrySumStore = (*Store)(nil)

// markAllRegistryVillages marks every village with registry rows and
// forgets the kept registry-only households: what a rebuild of the
// summaries (which clears the sums they were in) does.
func markAllRegistryVillages(ctx context.Context, tx *sql.Tx) error {
	for _, q := range []string{`DELETE FROM registry_only`,
		`INSERT INTO registry_marks (village) SELECT DISTINCT village FROM registry_rows WHERE true ON CONFLICT DO NOTHING`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("registry marks: %w", err)
		}
	}
	return nil
}

// markRegistryVillage marks a village for the registry-only counts.
func markRegistryVillage(ctx context.Context, tx *sql.Tx, village string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO registry_marks (village) VALUES (?) ON CONFLICT DO NOTHING`, village)
	return err
}

// MarkRegistryVillage marks the village when it has registry rows
// (syncproto.RegistryMarkTx): one probe of registry_rows' village index.
func (t summaryTx) MarkRegistryVillage(ctx context.Context, village string) error {
	_, err := t.p.exec(ctx, `INSERT INTO registry_marks (village) SELECT ?1
		WHERE EXISTS (SELECT 1 FROM registry_rows WHERE village = ?1) ON CONFLICT DO NOTHING`, village)
	return err
}

// RefreshRegistrySums reconciles up to limit marked villages in one write
// of the single writer (syncproto.RegistrySumStore); without marks it
// reads one row of the read pool and writes nothing.
func (s *Store) RefreshRegistrySums(ctx context.Context, sch *schema.Schema, limit int) (int, error) {
	if s.summaries.Load() == nil {
		return 0, syncproto.ErrSummariesNotKept
	}
	var any int
	if err := s.reader.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM registry_marks)`).Scan(&any); err != nil {
		return 0, fmt.Errorf("registry marks: %w", err)
	}
	if any == 0 {
		return 0, nil
	}
	var left int
	err := s.write(ctx, "refresh_registry_sums", func(ctx context.Context, stx *superviseTx) error {
		k := s.summaries.Load()
		if k == nil {
			return syncproto.ErrSummariesNotKept
		}
		p := &stx.pushTx
		rows, err := p.query(ctx, `SELECT village FROM registry_marks ORDER BY village LIMIT ?`, limit)
		villages, err := collect(rows, err, "registry marks", func(r rowScanner) (string, error) {
			var v string
			return v, r.Scan(&v)
		})
		if err != nil {
			return err
		}
		tx := registrySumTx{summaryTx{p}}
		for _, v := range villages {
			if err := syncproto.RefreshRegistryVillage(ctx, k, sch, tx, v); err != nil {
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
	rv := &syncproto.RegistryVillage{Village: village}
	if err := loadHouseholds(ctx, t, `h.village = :village`, []any{sql.Named("village", village)}, forms,
		syncproto.HouseholdQuery{}, func(h *survey.HouseholdInspections) error {
			rv.Households = append(rv.Households, h)
			return nil
		}); err != nil {
		return nil, err
	}
	one := syncproto.Actor{Scope: []string{village}}
	if err := registryRows(ctx, t.p.tx, one, func(r *syncproto.RegistryRow) error {
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

func (t registrySumTx) SaveRegistryOnly(ctx context.Context, s *survey.HouseholdSummary, name, doc string) error {
	_, err := t.p.exec(ctx, `INSERT INTO registry_only (village, household_id, head_name, summary) VALUES (?, ?, ?, ?)
		ON CONFLICT (village, household_id) DO UPDATE SET head_name = excluded.head_name, summary = excluded.summary`,
		s.Village, s.ID, name, doc)
	return err
}

func (t registrySumTx) DeleteRegistryOnly(ctx context.Context, village, id string) error {
	_, err := t.p.exec(ctx, `DELETE FROM registry_only WHERE village = ? AND household_id = ?`, village, id)
	return err
}

func (t registrySumTx) UnmarkRegistryVillage(ctx context.Context, village string) error {
	_, err := t.p.exec(ctx, `DELETE FROM registry_marks WHERE village = ?`, village)
	return err
}

// RegistryOnlyHouseholds returns the kept registry-only households of one
// village in the actor's scope, by id (syncproto.RegistrySumStore): one
// range of registry_only's key.
func (s *Store) RegistryOnlyHouseholds(ctx context.Context, actor syncproto.Actor, village string) ([]survey.HouseholdMark, syncproto.Cursor, error) {
	var list []survey.HouseholdMark
	at, err := s.summaryRead(ctx, actor, "registry only", false, func(tx *sql.Tx, _ *syncproto.SummaryKeeper) error {
		where, args := prefixClause("village", actor)
		args = append(args, sql.Named("village", village))
		rows, err := tx.QueryContext(ctx, `SELECT household_id, head_name FROM registry_only
		WHERE village = :village AND `+where+` ORDER BY household_id`, args...)
		list, err = collect(rows, err, "registry only", func(r rowScanner) (survey.HouseholdMark, error) {
			var m survey.HouseholdMark
			return m, r.Scan(&m.ID, &m.HeadName)
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

// RegistryOnlyInScope calls emit with every kept registry-only household
// of the actor's scope, by village and id (syncproto.RegistrySumStore).
func (s *Store) RegistryOnlyInScope(ctx context.Context, actor syncproto.Actor, emit func(syncproto.RegistryOnly) error) (syncproto.Cursor, error) {
	return s.summaryRead(ctx, actor, "registry only", false, func(tx *sql.Tx, _ *syncproto.SummaryKeeper) error {
		where, args := prefixClause("village", actor)
		rows, err := tx.QueryContext(ctx, `SELECT village, household_id, head_name FROM registry_only
		WHERE `+where+` ORDER BY village, household_id`, args...)
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
		if err := rows.Err(); err != nil {
			return fmt.Errorf("registry only: %w", err)
		}
		return nil
	})
}
