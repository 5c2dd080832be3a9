package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/syncproto"
)

// PublishedSchemas returns every schema version the server has published,
// oldest first (syncproto.SchemaStore).
func (s *Store) PublishedSchemas(ctx context.Context) ([]syncproto.PublishedSchema, error) {
	rows, err := s.pool.Query(ctx, `SELECT version, digest, document, published_at FROM schema_versions ORDER BY version`)
	return collect(rows, err, "schema versions", func(r pgx.Row) (syncproto.PublishedSchema, error) {
		var p syncproto.PublishedSchema
		var at string
		var version int32
		if err := r.Scan(&version, &p.Digest, &p.Document, &at); err != nil {
			return p, err
		}
		p.Version = int(version)
		var err error
		if p.PublishedAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return p, fmt.Errorf("version %d: published_at %q: %w", p.Version, at, err)
		}
		return p, nil
	})
}

// PublishSchema records a schema version not published before; the same
// version with the same digest again changes nothing, with another digest
// it is EConflict (syncproto.SchemaStore). Under the write lock, two
// instances publishing at once cannot both insert.
func (s *Store) PublishSchema(ctx context.Context, v syncproto.PublishedSchema) error {
	return s.write(ctx, "publish", func(ctx context.Context, tx pgx.Tx) error {
		var digest string
		switch err := tx.QueryRow(ctx, `SELECT digest FROM schema_versions WHERE version = $1`, v.Version).Scan(&digest); {
		case err == nil && digest == v.Digest:
			return nil
		case err == nil:
			return syncproto.Errorf(syncproto.EConflict, "schema version %d is published with another content", v.Version)
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("publish schema: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_versions (version, digest, document, published_at) VALUES ($1, $2, $3, $4)`,
			v.Version, v.Digest, v.Document, v.PublishedAt.UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("publish schema: %w", err)
		}
		return nil
	})
}

// DeviceSchemaVersion returns the schema_version the device last pushed
// in, 0 when none (syncproto.SchemaStore).
func (s *Store) DeviceSchemaVersion(ctx context.Context, deviceID string) (int, error) {
	var v *int32
	err := s.pool.QueryRow(ctx, `SELECT schema_version FROM devices WHERE device_id = $1`, deviceID).Scan(&v)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("device schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return int(*v), nil
}

// recordsVersionSetting names the setting that holds the schema version
// of the stored records.
const recordsVersionSetting = "records_schema_version"

// migratePage is how many records MigrateRecords reads at a time.
const migratePage = 1000

// RecordsSchemaVersion returns the schema version every stored record is
// in, 1 when none was recorded (syncproto.RecordMigrator).
func (s *Store) RecordsSchemaVersion(ctx context.Context) (int, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, recordsVersionSetting).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("records schema version: %w", err)
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("records schema version: setting %q is not a version", v)
	}
	return n, nil
}

// PendingRecordsVersion returns 0: MigrateRecords migrates every record
// in one transaction, so no migration is ever left half done to resume
// (syncproto.RecordMigrator). PostgreSQL keeps a long transaction's
// changes in the table and its WAL segments, not in one growing WAL file
// that must be checkpointed, so the SQLite store's reason to batch does
// not apply in the same way.
func (s *Store) PendingRecordsVersion(ctx context.Context) (int, error) { return 0, nil }

// MigrateRecords calls fn on every stored record, in id order, in one
// write transaction holding the write lock, and writes back each record's
// fields and metadata as fn left them; then it records that the records
// are in version to. An error of fn or of the commit changes nothing
// (syncproto.RecordMigrator).
func (s *Store) MigrateRecords(ctx context.Context, to int, fn func(rec *syncproto.StoredRecord) error) error {
	return s.write(ctx, "migrate_records", func(ctx context.Context, tx pgx.Tx) error {
		after := ""
		for {
			rows, err := tx.Query(ctx, recordQuery+` WHERE id > $1 ORDER BY id LIMIT $2`, after, migratePage)
			page, err := collect(rows, err, "migrate records", scanStored)
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
				if _, err := tx.Exec(ctx, `UPDATE records SET fields = $1, meta = $2 WHERE id = $3`,
					string(fields), string(meta), rec.ID); err != nil {
					return fmt.Errorf("migrate record %s: %w", rec.ID, err)
				}
			}
			if len(page) < migratePage {
				break
			}
			after = page[len(page)-1].ID
		}
		if _, err := tx.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, recordsVersionSetting, []byte(strconv.Itoa(to))); err != nil {
			return fmt.Errorf("migrate records: %w", err)
		}
		return nil
	})
}
