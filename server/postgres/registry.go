package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

var _ syncproto.RegistryStore = (*Store)(nil)

// queryer is what reads the imports: the pool or a transaction.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const importColumns = `source, version, sha256, file_name, imported_by, imported_at, rows, added, changed, removed, unchanged`

func registryImports(ctx context.Context, q queryer, where string, args ...any) ([]syncproto.RegistryImport, error) {
	rows, err := q.Query(ctx, `SELECT `+importColumns+` FROM registry_imports `+where, args...)
	return collect(rows, err, "registry imports", func(r pgx.Row) (syncproto.RegistryImport, error) {
		var imp syncproto.RegistryImport
		var version, n, added, changed, removed, unchanged int32
		var at string
		if err := r.Scan(&imp.Source, &version, &imp.SHA256, &imp.FileName, &imp.ImportedBy, &at, &n, &added, &changed, &removed, &unchanged); err != nil {
			return imp, err
		}
		imp.Version, imp.Rows, imp.Added, imp.Changed, imp.Removed, imp.Unchanged = int(version), int(n), int(added), int(changed), int(removed), int(unchanged)
		imp.ImportedAt = parseTime(at)
		return imp, nil
	})
}

// LatestImport returns the source's latest import, or nil
// (syncproto.RegistryStore).
func (s *Store) LatestImport(ctx context.Context, source string) (*syncproto.RegistryImport, error) {
	imps, err := registryImports(ctx, s.pool, `WHERE source = $1 ORDER BY version DESC LIMIT 1`, source)
	if err != nil || len(imps) == 0 {
		return nil, err
	}
	return &imps[0], nil
}

// RegistryImports lists a source's imports (every source's when source
// is empty), oldest first (syncproto.RegistryStore).
func (s *Store) RegistryImports(ctx context.Context, source string) ([]syncproto.RegistryImport, error) {
	if source == "" {
		return registryImports(ctx, s.pool, `ORDER BY imported_at, source, version`)
	}
	return registryImports(ctx, s.pool, `WHERE source = $1 ORDER BY version`, source)
}

// ImportRegistry writes one import in one transaction under the write lock
// (syncproto.RegistryStore), each row as rows reads it.
func (s *Store) ImportRegistry(ctx context.Context, imp syncproto.RegistryImport, rows func(put func(*syncproto.RegistryRow) error) error) (*syncproto.RegistryImport, error) {
	var out *syncproto.RegistryImport
	err := s.write(ctx, "registry_import", func(ctx context.Context, tx pgx.Tx) error {
		latest, err := registryImports(ctx, tx, `WHERE source = $1 ORDER BY version DESC LIMIT 1`, imp.Source)
		if err != nil {
			return err
		}
		if len(latest) > 0 && latest[0].SHA256 == imp.SHA256 {
			out = &latest[0]
			out.Same = true
			return nil
		}
		imp.Version = 1
		if len(latest) > 0 {
			imp.Version = latest[0].Version + 1
		}
		imp.Rows, imp.Added, imp.Changed, imp.Removed, imp.Unchanged = 0, 0, 0, 0, 0
		// The villages whose rows the import adds, changes or moves are
		// marked for the registry-only counts (registrysums.go).
		marks := map[string]bool{}
		put := func(r *syncproto.RegistryRow) error {
			b, err := json.Marshal(r.Fields)
			if err != nil {
				return err
			}
			fields := string(b)
			imp.Rows++
			var old, oldVillage string
			var oldSeen, oldLine int32
			switch err := tx.QueryRow(ctx, `SELECT fields, seen, line, village FROM registry_rows WHERE source = $1 AND key = $2`, imp.Source, r.Key).Scan(&old, &oldSeen, &oldLine, &oldVillage); {
			case errors.Is(err, pgx.ErrNoRows):
				imp.Added++
				marks[r.Village] = true
				if _, err := tx.Exec(ctx, `INSERT INTO registry_diffs (source, version, key, op, after) VALUES ($1, $2, $3, $4, $5)`,
					imp.Source, imp.Version, r.Key, syncproto.RowAdded, fields); err != nil {
					return fmt.Errorf("registry import: %w", err)
				}
			case err != nil:
				return fmt.Errorf("registry import: %w", err)
			case int(oldSeen) == imp.Version:
				return &syncproto.RowError{Line: r.Line, Message: fmt.Sprintf("its key is the key of line %d too", oldLine)}
			case old == fields:
				imp.Unchanged++
				_, err := tx.Exec(ctx, `UPDATE registry_rows SET seen = $1, line = $2 WHERE source = $3 AND key = $4`, imp.Version, r.Line, imp.Source, r.Key)
				return err
			default:
				imp.Changed++
				marks[r.Village], marks[oldVillage] = true, true
				if _, err := tx.Exec(ctx, `INSERT INTO registry_diffs (source, version, key, op, before, after) VALUES ($1, $2, $3, $4, $5, $6)`,
					imp.Source, imp.Version, r.Key, syncproto.RowChanged, old, fields); err != nil {
					return fmt.Errorf("registry import: %w", err)
				}
			}
			_, err = tx.Exec(ctx, `INSERT INTO registry_rows (source, key, village, line, fields, version, seen) VALUES ($1, $2, $3, $4, $5, $6, $6)
				ON CONFLICT (source, key) DO UPDATE SET village = excluded.village, line = excluded.line, fields = excluded.fields,
				version = excluded.version, seen = excluded.seen`, imp.Source, r.Key, r.Village, r.Line, fields, imp.Version)
			return err
		}
		if err := rows(put); err != nil {
			return err
		}
		where, args := scopeClause("village", syncproto.Actor{Scope: imp.Scope, AllRegions: len(imp.Scope) == 0})
		tag, err := tx.Exec(ctx, rebind(`INSERT INTO registry_diffs (source, version, key, op, before)
			SELECT source, ?, key, ?, fields FROM registry_rows WHERE source = ? AND seen < ? AND `+where),
			append([]any{imp.Version, syncproto.RowRemoved, imp.Source, imp.Version}, args...)...)
		if err != nil {
			return fmt.Errorf("registry import: %w", err)
		}
		imp.Removed = int(tag.RowsAffected())
		if _, err := tx.Exec(ctx, rebind(`INSERT INTO registry_marks (village) SELECT DISTINCT village FROM registry_rows
			WHERE source = ? AND seen < ? AND `+where+` ON CONFLICT DO NOTHING`), append([]any{imp.Source, imp.Version}, args...)...); err != nil {
			return fmt.Errorf("registry import: %w", err)
		}
		for v := range marks {
			if _, err := tx.Exec(ctx, `INSERT INTO registry_marks (village) VALUES ($1) ON CONFLICT DO NOTHING`, v); err != nil {
				return fmt.Errorf("registry import: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, rebind(`DELETE FROM registry_rows WHERE source = ? AND seen < ? AND `+where), append([]any{imp.Source, imp.Version}, args...)...); err != nil {
			return fmt.Errorf("registry import: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO registry_imports (`+importColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			imp.Source, imp.Version, imp.SHA256, imp.FileName, imp.ImportedBy, formatTime(imp.ImportedAt),
			imp.Rows, imp.Added, imp.Changed, imp.Removed, imp.Unchanged); err != nil {
			return fmt.Errorf("registry import: %w", err)
		}
		out = &imp
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RegistryDiff lists what version of the source added, changed and
// removed, by key (syncproto.RegistryStore).
func (s *Store) RegistryDiff(ctx context.Context, source string, version int) ([]syncproto.RegistryRowChange, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM registry_imports WHERE source = $1 AND version = $2`, source, version).Scan(&n); err != nil {
		return nil, writeError(fmt.Errorf("registry diff: %w", err))
	}
	if n == 0 {
		return nil, syncproto.Errorf(syncproto.ENotFound, "source %s has no import %d", source, version)
	}
	rows, err := s.pool.Query(ctx, `SELECT key, op, COALESCE(before, ''), COALESCE(after, '') FROM registry_diffs
		WHERE source = $1 AND version = $2 ORDER BY key`, source, version)
	return collect(rows, err, "registry diff", func(r pgx.Row) (syncproto.RegistryRowChange, error) {
		var c syncproto.RegistryRowChange
		var before, after string
		if err := r.Scan(&c.Key, &c.Op, &before, &after); err != nil {
			return c, err
		}
		return c, errors.Join(unmarshalFields(before, &c.Before), unmarshalFields(after, &c.After))
	})
}

func unmarshalFields(s string, into *map[string]json.RawMessage) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), into)
}

// RegistryRows streams the current rows in the actor's scope by village,
// source and key from one snapshot (syncproto.RegistryStore).
func (s *Store) RegistryRows(ctx context.Context, actor syncproto.Actor, emit func(*syncproto.RegistryRow) error) error {
	return s.read(ctx, func(tx pgx.Tx) error { return registryRows(ctx, tx, actor, emit) })
}

// registryRows is RegistryRows in tx.
func registryRows(ctx context.Context, tx pgx.Tx, actor syncproto.Actor, emit func(*syncproto.RegistryRow) error) error {
	where, args := scopeClause("r.village", actor)
	rows, err := tx.Query(ctx, rebind(`SELECT r.source, r.key, r.village, r.line, r.fields, r.version, i.imported_at
		FROM registry_rows r JOIN registry_imports i ON i.source = r.source AND i.version = r.version
		WHERE `+where+` ORDER BY r.village, r.source, r.key`), args...)
	if err != nil {
		return writeError(fmt.Errorf("registry rows: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var r syncproto.RegistryRow
		var line, version int32
		var fields, at string
		if err := rows.Scan(&r.Source, &r.Key, &r.Village, &line, &fields, &version, &at); err != nil {
			return fmt.Errorf("registry rows: %w", err)
		}
		r.Line, r.Version = int(line), int(version)
		if err := json.Unmarshal([]byte(fields), &r.Fields); err != nil {
			return fmt.Errorf("registry rows: %w", err)
		}
		r.ImportedAt = parseTime(at)
		if err := emit(&r); err != nil {
			return err
		}
	}
	return writeError(rows.Err())
}

// RegistryVillages reads the villages of the actor's scope with their
// households and registry rows, village by village, from one snapshot
// (syncproto.RegistryStore): the village codes first, then the two
// queries of each village in turn (a connection runs one query at a time).
func (s *Store) RegistryVillages(ctx context.Context, actor syncproto.Actor, q syncproto.HouseholdQuery, emit func(*syncproto.RegistryVillage) error) (syncproto.Cursor, error) {
	forms := q.Forms
	if forms == nil {
		forms = survey.FormsOf(schema.V1())
	}
	var at syncproto.Cursor
	err := s.read(ctx, func(tx pgx.Tx) error {
		seq, err := head(ctx, tx)
		if err != nil {
			return fmt.Errorf("reconciliation head: %w", err)
		}
		at = syncproto.Cursor{Seq: seq, Scope: actor.ScopeKey()}
		where, args := scopeClause("village", actor)
		rows, err := tx.Query(ctx, rebind(`SELECT village FROM records WHERE entity = ? AND NOT deleted AND `+where+`
			UNION SELECT village FROM registry_rows WHERE `+where+` ORDER BY 1`),
			append(append([]any{forms.HouseholdEntity()}, args...), args...)...)
		if err != nil {
			return writeError(fmt.Errorf("reconciliation villages: %w", err))
		}
		villages, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return writeError(fmt.Errorf("reconciliation villages: %w", err))
		}
		for _, v := range villages {
			one := syncproto.Actor{UserID: actor.UserID, Role: actor.Role, Scope: []string{v}}
			rv := &syncproto.RegistryVillage{Village: v}
			if _, err := readHouseholds(ctx, tx, one, forms, q, func(h *survey.HouseholdInspections) error {
				if h.Village == v {
					rv.Households = append(rv.Households, h)
				}
				return nil
			}); err != nil {
				return err
			}
			if err := registryRows(ctx, tx, one, func(r *syncproto.RegistryRow) error {
				if r.Village == v {
					rv.Rows = append(rv.Rows, r)
				}
				return nil
			}); err != nil {
				return err
			}
			if err := emit(rv); err != nil {
				return err
			}
		}
		return nil
	})
	return at, err
}
