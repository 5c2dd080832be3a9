package sqlite

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The raw loops of fieldsync bench: what SQLite itself does on this
// machine with the same driver, with nothing of fieldsync around it, as
// the ceiling the server's figures are compared with.

// RawUpsert writes rows shaped like fieldsync's records (~780 bytes, a
// 300-byte JSON column) with a prepared upsert in transactions of 500, in
// WAL mode with the given synchronous setting, and returns rows/s: what
// SQLite itself does on this machine, with nothing of fieldsync around it.
func RawUpsert(path string, rows int, synchronous string) (float64, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous("+synchronous+")&_txlock=immediate")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE records (id TEXT PRIMARY KEY, entity TEXT NOT NULL, version INTEGER NOT NULL,
		village TEXT NOT NULL, parent_id TEXT, fields TEXT NOT NULL, meta TEXT NOT NULL, seq INTEGER NOT NULL,
		updated_at TEXT NOT NULL, updated_by TEXT NOT NULL, updated_device TEXT NOT NULL)`); err != nil {
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
	start := time.Now()
	for i := 0; i < rows; i += 500 {
		tx, err := db.Begin()
		if err != nil {
			return 0, err
		}
		stmt, err := tx.Prepare(`INSERT INTO records (id, entity, version, village, parent_id, fields, meta, seq, updated_at,
			updated_by, updated_device) VALUES (?, 'water_inspection', 1, '500240107201', ?, ?, ?, ?, '2026-11-20T08:15:30.123Z',
			'worker.xituo', ?) ON CONFLICT (id) DO UPDATE SET version = version + 1, fields = excluded.fields,
			meta = excluded.meta, seq = excluded.seq`)
		if err != nil {
			tx.Rollback()
			return 0, err
		}
		for j := i; j < min(i+500, rows); j++ {
			if _, err := stmt.Exec(ids[j], ids[(j+1)%rows], fields, meta, j, ids[j%97]); err != nil {
				tx.Rollback()
				return 0, err
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	return float64(rows) / time.Since(start).Seconds(), nil
}

// RawRead reads every row of the raw table out as NDJSON (to nowhere) and
// returns rows/s.
func RawRead(path string) (float64, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	start := time.Now()
	rows, err := db.Query(`SELECT id, entity, version, village, parent_id, fields, seq, updated_at, updated_by FROM records ORDER BY seq`)
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
			Parent    sql.NullString  `json:"-"`
			Fields    json.RawMessage `json:"fields"`
			Seq       int64           `json:"seq"`
			UpdatedAt string          `json:"updated_at"`
			UpdatedBy string          `json:"updated_by"`
		}
		var fields string
		if err := rows.Scan(&r.ID, &r.Entity, &r.Version, &r.Village, &r.Parent, &fields, &r.Seq, &r.UpdatedAt, &r.UpdatedBy); err != nil {
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
	w.Flush()
	return float64(n) / time.Since(start).Seconds(), nil
}
