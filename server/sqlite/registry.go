package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

var _ syncproto.RegistryStore = (*Store)(nil)

// LatestImport returns the source's latest import, or nil
// (syncproto.RegistryStore).
func (s *Store) LatestImport(ctx context.Context, source string) (*syncproto.RegistryImport, error) {
	imps, err := s.registryImports(ctx, s.reader, `WHERE source = ? ORDER BY version DESC LIMIT 1`, source)
	if err != nil || len(imps) == 0 {
		return nil, err
	}
	return &imps[0], nil
}

// RegistryImports lists a source's imports (every source's when source
// is empty), oldest first (syncproto.RegistryStore).
func (s *Store) RegistryImports(ctx context.Context, source string) ([]syncproto.RegistryImport, error) {
	if source == "" {
		return s.registryImports(ctx, s.reader, `ORDER BY imported_at, source, version`)
	}
	return s.registryImports(ctx, s.reader, `WHERE source = ? ORDER BY version`, source)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) registryImports(ctx context.Context, q querier, where string, args ...any) ([]syncproto.RegistryImport, error) {
	rows, err := q.QueryContext(ctx, `SELECT source, version, sha256, file_name, imported_by, imported_at, rows, added, changed, removed, unchanged
		FROM registry_imports `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("registry imports: %w", err)
	}
	defer rows.Close()
	var out []syncproto.RegistryImport
	for rows.Next() {
		var imp syncproto.RegistryImport
		var at string
		if err := rows.Scan(&imp.Source, &imp.Version, &imp.SHA256, &imp.FileName, &imp.ImportedBy, &at,
			&imp.Rows, &imp.Added, &imp.Changed, &imp.Removed, &imp.Unchanged); err != nil {
			return nil, fmt.Errorf("registry imports: %w", err)
		}
		imp.ImportedAt = parseTime(at)
		out = append(out, imp)
	}
	return out, rows.Err()
}

// ImportRegistry writes one import in one durable write transaction of the
// single writer (syncproto.RegistryStore): rows are written as rows reads
// them, so memory stays bounded by one row whatever the file's size.
func (s *Store) ImportRegistry(ctx context.Context, imp syncproto.RegistryImport, rows func(put func(*syncproto.RegistryRow) error) error) (*syncproto.RegistryImport, error) {
	var out *syncproto.RegistryImport
	err := s.write(ctx, "registry_import", func(ctx context.Context, stx *superviseTx) error {
		tx := stx.tx
		latest, err := s.registryImports(ctx, tx, `WHERE source = ? ORDER BY version DESC LIMIT 1`, imp.Source)
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
		// The villages whose rows the import adds, changes or moves are
		// marked for the registry-only counts (registrysums.go).
		marks := map[string]bool{}
		get, err := tx.PrepareContext(ctx, `SELECT fields, seen, line, village FROM registry_rows WHERE source = ? AND key = ?`)
		if err != nil {
			return fmt.Errorf("registry import: %w", err)
		}
		defer get.Close()
		ins, err := tx.PrepareContext(ctx, `INSERT INTO registry_rows (source, key, village, line, fields, version, seen) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (source, key) DO UPDATE SET village = excluded.village, line = excluded.line, fields = excluded.fields,
			version = excluded.version, seen = excluded.seen`)
		if err != nil {
			return fmt.Errorf("registry import: %w", err)
		}
		defer ins.Close()
		seen, err := tx.PrepareContext(ctx, `UPDATE registry_rows SET seen = ?, line = ? WHERE source = ? AND key = ?`)
		if err != nil {
			return fmt.Errorf("registry import: %w", err)
		}
		defer seen.Close()
		diff, err := tx.PrepareContext(ctx, `INSERT INTO registry_diffs (source, version, key, op, before, after) VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("registry import: %w", err)
		}
		defer diff.Close()
		put := func(r *syncproto.RegistryRow) error {
			b, err := json.Marshal(r.Fields)
			if err != nil {
				return err
			}
			fields := string(b)
			imp.Rows++
			var old, oldVillage string
			var oldSeen, oldLine int
			switch err := get.QueryRowContext(ctx, imp.Source, r.Key).Scan(&old, &oldSeen, &oldLine, &oldVillage); {
			case errors.Is(err, sql.ErrNoRows):
				imp.Added++
				marks[r.Village] = true
				if _, err := diff.ExecContext(ctx, imp.Source, imp.Version, r.Key, syncproto.RowAdded, nil, fields); err != nil {
					return fmt.Errorf("registry import: %w", err)
				}
			case err != nil:
				return fmt.Errorf("registry import: %w", err)
			case oldSeen == imp.Version:
				return &syncproto.RowError{Line: r.Line, Message: fmt.Sprintf("its key is the key of line %d too", oldLine)}
			case old == fields:
				imp.Unchanged++
				_, err := seen.ExecContext(ctx, imp.Version, r.Line, imp.Source, r.Key)
				return err
			default:
				imp.Changed++
				marks[r.Village], marks[oldVillage] = true, true
				if _, err := diff.ExecContext(ctx, imp.Source, imp.Version, r.Key, syncproto.RowChanged, old, fields); err != nil {
					return fmt.Errorf("registry import: %w", err)
				}
			}
			_, err = ins.ExecContext(ctx, imp.Source, r.Key, r.Village, r.Line, fields, imp.Version, imp.Version)
			return err
		}
		if err := rows(put); err != nil {
			return err
		}
		where, args := scopeClause("village", syncproto.Actor{Scope: imp.Scope, AllRegions: len(imp.Scope) == 0})
		res, err := tx.ExecContext(ctx, `INSERT INTO registry_diffs (source, version, key, op, before)
			SELECT source, ?, key, ?, fields FROM registry_rows WHERE source = ? AND seen < ? AND `+where,
			append([]any{imp.Version, syncproto.RowRemoved, imp.Source, imp.Version}, args...)...)
		if err != nil {
			return fmt.Errorf("registry import: %w", err)
		}
		removed, _ := res.RowsAffected()
		imp.Removed = int(removed)
		if _, err := tx.ExecContext(ctx, `INSERT INTO registry_marks (village) SELECT DISTINCT village FROM registry_rows
			WHERE source = ? AND seen < ? AND `+where+` ON CONFLICT DO NOTHING`, append([]any{imp.Source, imp.Version}, args...)...); err != nil {
			return fmt.Errorf("registry import: %w", err)
		}
		for v := range marks {
			if err := markRegistryVillage(ctx, tx, v); err != nil {
				return fmt.Errorf("registry import: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM registry_rows WHERE source = ? AND seen < ? AND `+where, append([]any{imp.Source, imp.Version}, args...)...); err != nil {
			return fmt.Errorf("registry import: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO registry_imports (source, version, sha256, file_name, imported_by, imported_at,
			rows, added, changed, removed, unchanged) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
	var n int
	if err := s.reader.QueryRowContext(ctx, `SELECT count(*) FROM registry_imports WHERE source = ? AND version = ?`, source, version).Scan(&n); err != nil {
		return nil, fmt.Errorf("registry diff: %w", err)
	}
	if n == 0 {
		return nil, syncproto.Errorf(syncproto.ENotFound, "source %s has no import %d", source, version)
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT key, op, COALESCE(before, ''), COALESCE(after, '') FROM registry_diffs
		WHERE source = ? AND version = ? ORDER BY key`, source, version)
	if err != nil {
		return nil, fmt.Errorf("registry diff: %w", err)
	}
	defer rows.Close()
	var out []syncproto.RegistryRowChange
	for rows.Next() {
		var c syncproto.RegistryRowChange
		var before, after string
		if err := rows.Scan(&c.Key, &c.Op, &before, &after); err != nil {
			return nil, fmt.Errorf("registry diff: %w", err)
		}
		if err := errors.Join(unmarshalFields(before, &c.Before), unmarshalFields(after, &c.After)); err != nil {
			return nil, fmt.Errorf("registry diff: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func unmarshalFields(s string, into *map[string]json.RawMessage) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), into)
}

// RegistryRows streams the current rows in the actor's scope by village,
// source and key from one read transaction (syncproto.RegistryStore).
func (s *Store) RegistryRows(ctx context.Context, actor syncproto.Actor, emit func(*syncproto.RegistryRow) error) error {
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("registry rows: %w", err)
	}
	defer tx.Rollback()
	return registryRows(ctx, tx, actor, emit)
}

// registryRows is RegistryRows in tx.
func registryRows(ctx context.Context, tx *sql.Tx, actor syncproto.Actor, emit func(*syncproto.RegistryRow) error) error {
	where, args := prefixClause("r.village", actor)
	rows, err := tx.QueryContext(ctx, `SELECT r.source, r.key, r.village, r.line, r.fields, r.version, i.imported_at
		FROM registry_rows r JOIN registry_imports i ON i.source = r.source AND i.version = r.version
		WHERE `+where+` ORDER BY r.village, r.source, r.key`, args...)
	if err != nil {
		return fmt.Errorf("registry rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r syncproto.RegistryRow
		var fields, at string
		if err := rows.Scan(&r.Source, &r.Key, &r.Village, &r.Line, &fields, &r.Version, &at); err != nil {
			return fmt.Errorf("registry rows: %w", err)
		}
		if err := json.Unmarshal([]byte(fields), &r.Fields); err != nil {
			return fmt.Errorf("registry rows: %w", err)
		}
		r.ImportedAt = parseTime(at)
		if err := emit(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// RegistryVillages reads the villages of the actor's scope with their
// households and registry rows, village by village, from one read
// transaction (syncproto.RegistryStore): a query for the village codes,
// then the two of each village, each on its index.
func (s *Store) RegistryVillages(ctx context.Context, actor syncproto.Actor, q syncproto.HouseholdQuery, emit func(*syncproto.RegistryVillage) error) (syncproto.Cursor, error) {
	forms := q.Forms
	if forms == nil {
		forms = survey.FormsOf(schema.V1())
	}
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return syncproto.Cursor{}, fmt.Errorf("begin reconciliation: %w", err)
	}
	defer tx.Rollback()
	seq, err := head(ctx, tx)
	if err != nil {
		return syncproto.Cursor{}, fmt.Errorf("reconciliation head: %w", err)
	}
	at := syncproto.Cursor{Seq: seq, Scope: actor.ScopeKey()}
	// Both conditions name the same parameters (the scope's prefixes).
	where, args := prefixClause("village", actor)
	rows, err := tx.QueryContext(ctx, `SELECT village FROM records WHERE entity = :household_entity AND deleted = 0 AND `+where+`
		UNION SELECT village FROM registry_rows WHERE `+where+` ORDER BY 1`,
		append([]any{sql.Named("household_entity", forms.HouseholdEntity())}, args...)...)
	if err != nil {
		return at, fmt.Errorf("reconciliation villages: %w", err)
	}
	var villages []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return at, fmt.Errorf("reconciliation villages: %w", err)
		}
		villages = append(villages, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return at, fmt.Errorf("reconciliation villages: %w", err)
	}
	for _, v := range villages {
		one := syncproto.Actor{UserID: actor.UserID, Role: actor.Role, Scope: []string{v}}
		rv := &syncproto.RegistryVillage{Village: v}
		if err := householdsIn(ctx, tx, one, forms, q, func(h *survey.HouseholdInspections) error {
			if h.Village == v {
				rv.Households = append(rv.Households, h)
			}
			return nil
		}); err != nil {
			return at, err
		}
		if err := registryRows(ctx, tx, one, func(r *syncproto.RegistryRow) error {
			if r.Village == v {
				rv.Rows = append(rv.Rows, r)
			}
			return nil
		}); err != nil {
			return at, err
		}
		if err := emit(rv); err != nil {
			return at, err
		}
	}
	return at, nil
}
