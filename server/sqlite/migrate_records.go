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

// migratePage is how many records MigrateRecords reads at a time.
const migratePage = 1000

// RecordsSchemaVersion returns the schema version every stored record is
// in: the one MigrateRecords last recorded, 1 before any
// (syncproto.RecordMigrator).
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

// MigrateRecords rewrites the fields and metadata of every stored record
// by fn in one write transaction, a page of records at a time in id order,
// and records that they are all in version to; fn's error or a failed
// commit leaves every record as it was (syncproto.RecordMigrator).
func (s *Store) MigrateRecords(ctx context.Context, to int, fn func(rec *syncproto.StoredRecord) error) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate records: %w", err)
	}
	defer tx.Rollback()
	update, err := tx.PrepareContext(ctx, `UPDATE records SET fields = ?, meta = ? WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("migrate records: %w", err)
	}
	defer update.Close()
	after := ""
	for {
		page, err := migrationPage(ctx, tx, after)
		if err != nil {
			return err
		}
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
		if len(page) < migratePage {
			break
		}
		after = page[len(page)-1].ID
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, recordsVersionSetting, strconv.Itoa(to)); err != nil {
		return fmt.Errorf("migrate records: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate records: %w", err)
	}
	return nil
}

// migrationPage reads the next page of records after id, in id order.
func migrationPage(ctx context.Context, tx *sql.Tx, after string) ([]*syncproto.StoredRecord, error) {
	rows, err := tx.QueryContext(ctx, recordQuery+` WHERE id > ? ORDER BY id LIMIT ?`, after, migratePage)
	return collect(rows, err, "migrate records", scanStored)
}
