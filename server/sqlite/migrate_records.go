package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/fieldsync/fieldsync/syncproto"
)

// recordsVersionSetting names the setting that holds the schema version
// every stored record is in.
const recordsVersionSetting = "records_schema_version"

// recordsMigrationSetting names the setting that, while a migration of the
// stored records is under way (or was interrupted), holds its target
// version and the last record id it migrated: {"to": 2, "after": "…"}.
const recordsMigrationSetting = "records_migration"

// migrateBatch is how many records MigrateRecords migrates in one
// transaction. Measured on 99,795 generated records: one transaction of
// them all grew the WAL to 104 MB (about 1 KB a record, a province's
// millions would need gigabytes of WAL and of free disk at once); batches
// of 1,000 kept it under 8.3 MB, in about the same time (10–15 s).
const migrateBatch = 1000

// recordsMigration is the value of recordsMigrationSetting.
type recordsMigration struct {
	To    int    `json:"to"`
	After string `json:"after"`
}

// RecordsSchemaVersion returns the schema version every stored record is
// in — those an interrupted migration has not reached yet
// (PendingRecordsVersion) — : the one MigrateRecords last completed, 1
// before any (syncproto.RecordMigrator).
func (s *Store) RecordsSchemaVersion(ctx context.Context) (int, error) {
	var v string
	err := s.reader.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, recordsVersionSetting).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("records schema version: %w", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("records schema version: setting %q is not a version", v)
	}
	return n, nil
}

// PendingRecordsVersion returns the target version of an interrupted
// MigrateRecords, 0 when none is pending (syncproto.RecordMigrator).
func (s *Store) PendingRecordsVersion(ctx context.Context) (int, error) {
	p, err := s.recordsMigration(ctx, s.reader)
	if err != nil || p == nil {
		return 0, err
	}
	return p.To, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) recordsMigration(ctx context.Context, db queryRower) (*recordsMigration, error) {
	var v string
	err := db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, recordsMigrationSetting).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("records migration: %w", err)
	}
	var p recordsMigration
	if err := json.Unmarshal([]byte(v), &p); err != nil || p.To < 1 {
		return nil, fmt.Errorf("records migration: setting %q is not a migration under way", v)
	}
	return &p, nil
}

// MigrateRecords rewrites the fields and metadata of every stored record
// by fn, in id order, migrateBatch records to a durable write transaction
// of the store's one write path (serialised with pushes and decisions,
// each commit prompting the WAL checkpoint). Each batch's transaction
// records how far the migration got, and the last one that every record
// is in version to: a failure or a kill leaves each record either as it
// was or migrated whole, and the next MigrateRecords to the same version
// resumes after the last committed batch. A migration to another version
// while one is pending is refused (syncproto.MigrateStoredRecords finishes
// the pending one first). After Close began it refuses with EUnavailable
// (syncproto.RecordMigrator).
func (s *Store) MigrateRecords(ctx context.Context, to int, fn func(rec *syncproto.StoredRecord) error) error {
	for done := false; !done; {
		err := s.write(ctx, "migrate_records", func(ctx context.Context, stx *superviseTx) error {
			tx := stx.tx
			after := ""
			pending, err := s.recordsMigration(ctx, tx)
			if err != nil {
				return err
			}
			if pending != nil {
				if pending.To != to {
					return fmt.Errorf("migrate records: a migration to schema version %d is pending, not to %d", pending.To, to)
				}
				after = pending.After
			}
			page, err := migrationPage(ctx, tx, after)
			if err != nil {
				return err
			}
			update, err := tx.PrepareContext(ctx, `UPDATE records SET fields = ?, meta = ? WHERE id = ?`)
			if err != nil {
				return fmt.Errorf("migrate records: %w", err)
			}
			defer update.Close()
			for _, rec := range page {
				if err := fn(rec); err != nil {
					return err
				}
				fields, err := json.Marshal(rec.Fields)
				if err != nil {
					return fmt.Errorf("record %s fields: %w", rec.ID, err)
				}
				meta, err := json.Marshal(rec.Meta)
				if err != nil {
					return fmt.Errorf("record %s meta: %w", rec.ID, err)
				}
				if _, err := update.ExecContext(ctx, string(fields), string(meta), rec.ID); err != nil {
					return fmt.Errorf("migrate record %s: %w", rec.ID, err)
				}
			}
			if len(page) == migrateBatch {
				p, _ := json.Marshal(recordsMigration{To: to, After: page[len(page)-1].ID})
				return setSetting(ctx, tx, recordsMigrationSetting, string(p))
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM settings WHERE name = ?`, recordsMigrationSetting); err != nil {
				return fmt.Errorf("migrate records: %w", err)
			}
			done = true
			return setSetting(ctx, tx, recordsVersionSetting, strconv.Itoa(to))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func setSetting(ctx context.Context, tx *sql.Tx, name, value string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
		return fmt.Errorf("migrate records: %w", err)
	}
	return nil
}

// migrationPage reads the next batch of records after id, in id order.
func migrationPage(ctx context.Context, tx *sql.Tx, after string) ([]*syncproto.StoredRecord, error) {
	rows, err := tx.QueryContext(ctx, recordQuery+` WHERE id > ? ORDER BY id LIMIT ?`, after, migrateBatch)
	return collect(rows, err, "migrate records", scanStored)
}
