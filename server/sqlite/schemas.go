package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// PublishedSchemas returns every schema version the server has published,
// oldest first (syncproto.SchemaStore).
func (s *Store) PublishedSchemas(ctx context.Context) ([]syncproto.PublishedSchema, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT version, digest, document, published_at FROM schema_versions ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("schema versions: %w", err)
	}
	defer rows.Close()
	var out []syncproto.PublishedSchema
	for rows.Next() {
		var p syncproto.PublishedSchema
		var at string
		if err := rows.Scan(&p.Version, &p.Digest, &p.Document, &at); err != nil {
			return nil, fmt.Errorf("schema versions: %w", err)
		}
		if p.PublishedAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return nil, fmt.Errorf("schema version %d: published_at %q: %w", p.Version, at, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PublishSchema records a schema version not published before, in one
// durable transaction of the store's write path (serialised with the
// other writes; EUnavailable after Close began); the same version with the
// same digest again changes nothing, with another digest it is EConflict
// (syncproto.SchemaStore).
func (s *Store) PublishSchema(ctx context.Context, v syncproto.PublishedSchema) error {
	return s.write(ctx, "publish_schema", func(ctx context.Context, stx *superviseTx) error {
		tx := stx.tx
		var digest string
		switch err := tx.QueryRowContext(ctx, `SELECT digest FROM schema_versions WHERE version = ?`, v.Version).Scan(&digest); {
		case err == nil && digest == v.Digest:
			return nil
		case err == nil:
			return syncproto.Errorf(syncproto.EConflict, "schema version %d is published with another content", v.Version)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("publish schema: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_versions (version, digest, document, published_at) VALUES (?, ?, ?, ?)`,
			v.Version, v.Digest, v.Document, v.PublishedAt.UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("publish schema: %w", err)
		}
		return nil
	})
}

// DeviceSchemaVersion returns the schema_version the device last pushed
// in, 0 when none (syncproto.SchemaStore).
func (s *Store) DeviceSchemaVersion(ctx context.Context, deviceID string) (int, error) {
	var v sql.NullInt64
	err := s.reader.QueryRowContext(ctx, `SELECT schema_version FROM devices WHERE device_id = ?`, deviceID).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("device schema version: %w", err)
	}
	return int(v.Int64), nil
}
