package postgres

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	neturl "net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The helpers of fieldsync bench on PostgreSQL: copies of a generated
// database, its size, and the raw engine loops (rows shaped like
// fieldsync's written and read by PostgreSQL alone), the counterparts of
// server/sqlite/ceiling.go.

// withDatabase is url naming another database of the same server.
func withDatabase(url, database string) (string, error) {
	u, err := neturl.Parse(url)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("postgres: bench needs a postgres:// URL")
	}
	u.Path = "/" + database
	return u.String(), nil
}

// databaseName is the database a postgres:// URL names.
func databaseName(url string) (string, error) {
	u, err := neturl.Parse(url)
	if err != nil {
		return "", err
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return "", fmt.Errorf("postgres: the URL names no database")
	}
	return name, nil
}

// admin runs sql on the maintenance database (postgres) of url's server.
func admin(ctx context.Context, url, sql string) error {
	maint, err := withDatabase(url, "postgres")
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, maint)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// CopyDatabase makes database name a copy of the database at url
// (CREATE DATABASE … TEMPLATE: nothing may be connected to it), replacing
// an old one of that name, and returns its URL.
func CopyDatabase(ctx context.Context, url, name string) (string, error) {
	src, err := databaseName(url)
	if err != nil {
		return "", err
	}
	if err := admin(ctx, url, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if err := admin(ctx, url, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{src}.Sanitize()); err != nil {
		return "", err
	}
	return withDatabase(url, name)
}

// DropDatabase drops the database at url, closing what is connected to it.
func DropDatabase(ctx context.Context, url string) error {
	name, err := databaseName(url)
	if err != nil {
		return err
	}
	return admin(ctx, url, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// CreateDatabase creates the empty database name on url's server,
// replacing an old one, and returns its URL.
func CreateDatabase(ctx context.Context, url, name string) (string, error) {
	if err := admin(ctx, url, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if err := admin(ctx, url, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	return withDatabase(url, name)
}

// DatabaseBytes is the size on disk of the database at url.
func DatabaseBytes(ctx context.Context, url string) (int64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n)
	return n, err
}

// RawUpsert writes rows shaped like fieldsync's records (the SQLite
// ceiling's rows) into a new table of the database at url with a
// prepared upsert in transactions of 500, each commit flushed to disk
// when durable (synchronous_commit on; off otherwise), and returns rows/s.
func RawUpsert(ctx context.Context, url string, rows int, durable bool) (float64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	sync := "off"
	if durable {
		sync = "on"
	}
	if _, err := conn.Exec(ctx, "SET synchronous_commit = "+sync); err != nil {
		return 0, err
	}
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS raw_records; CREATE TABLE raw_records (
		id TEXT COLLATE "C" PRIMARY KEY, entity TEXT NOT NULL, version BIGINT NOT NULL, village TEXT NOT NULL,
		parent_id TEXT, fields TEXT NOT NULL, meta TEXT NOT NULL, seq BIGINT NOT NULL, updated_at TEXT NOT NULL,
		updated_by TEXT NOT NULL, updated_device TEXT NOT NULL)`); err != nil {
		return 0, err
	}
	fields := `{"household_id":"` + uuid.NewString() + `","inspected_on":"2026-11-20","source":"piped","quality_ok":true,` +
		`"liters_per_person_day":82.5,"fetch_minutes":12,"reliability_pct":97,"photos":[],"notes":"` + strings.Repeat("x", 100) + `"}`
	meta := `{"source":{"v":1,"d":"` + uuid.NewString() + `","at":"2026-11-20T08:15:30.123Z"},"quality_ok":{"v":1,"d":"` +
		uuid.NewString() + `","at":"2026-11-20T08:15:30.123Z"},"fetch_minutes":{"v":1,"d":"` + uuid.NewString() + `"}}`
	ids := make([]string, rows)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
	}
	const upsert = `INSERT INTO raw_records (id, entity, version, village, parent_id, fields, meta, seq, updated_at,
		updated_by, updated_device) VALUES ($1, 'water_inspection', 1, '500240107201', $2, $3, $4, $5, '2026-11-20T08:15:30.123Z',
		'worker.xituo', $6) ON CONFLICT (id) DO UPDATE SET version = raw_records.version + 1, fields = excluded.fields,
		meta = excluded.meta, seq = excluded.seq`
	if _, err := conn.Prepare(ctx, "raw_upsert", upsert); err != nil {
		return 0, err
	}
	start := time.Now()
	for i := 0; i < rows; i += 500 {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return 0, err
		}
		for j := i; j < min(i+500, rows); j++ {
			if _, err := tx.Exec(ctx, "raw_upsert", ids[j], ids[(j+1)%rows], fields, meta, j, ids[j%97]); err != nil {
				tx.Rollback(ctx)
				return 0, err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return 0, err
		}
	}
	return float64(rows) / time.Since(start).Seconds(), nil
}

// RawRead reads every row RawUpsert wrote at url out as NDJSON (to
// nowhere) and returns rows/s.
func RawRead(ctx context.Context, url string) (float64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	start := time.Now()
	rows, err := conn.Query(ctx, `SELECT id, entity, version, village, fields, seq, updated_at, updated_by FROM raw_records ORDER BY seq`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	w := bufio.NewWriter(io.Discard)
	enc := json.NewEncoder(w)
	n := 0
	for rows.Next() {
		var r struct {
			ID        string          `json:"id"`
			Entity    string          `json:"entity"`
			Version   int64           `json:"version"`
			Village   string          `json:"village"`
			Fields    json.RawMessage `json:"fields"`
			Seq       int64           `json:"seq"`
			UpdatedAt string          `json:"updated_at"`
			UpdatedBy string          `json:"updated_by"`
		}
		var fields string
		if err := rows.Scan(&r.ID, &r.Entity, &r.Version, &r.Village, &fields, &r.Seq, &r.UpdatedAt, &r.UpdatedBy); err != nil {
			return 0, err
		}
		r.Fields = json.RawMessage(fields)
		if err := enc.Encode(&r); err != nil {
			return 0, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
