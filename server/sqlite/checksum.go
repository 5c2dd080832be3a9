package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"

	"github.com/fieldsync/fieldsync/syncproto"
)

// goMigrations are the migrations that need Go (SQLite has no SHA-256).
func goMigrations() []*goose.Migration {
	return []*goose.Migration{
		goose.NewGoMigration(6, &goose.GoFunc{RunTx: createScopeSums}, &goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `DROP TABLE scope_sums`)
			return err
		}}),
	}
}

// createScopeSums makes the per-village checksum table (see
// syncproto.Checksum) and fills it from the records.
func createScopeSums(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `CREATE TABLE scope_sums (
		village TEXT PRIMARY KEY,
		n  INTEGER NOT NULL DEFAULT 0,
		s0 INTEGER NOT NULL DEFAULT 0,
		s1 INTEGER NOT NULL DEFAULT 0,
		s2 INTEGER NOT NULL DEFAULT 0,
		s3 INTEGER NOT NULL DEFAULT 0
	) WITHOUT ROWID`); err != nil {
		return fmt.Errorf("scope sums: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, version, village FROM records`)
	if err != nil {
		return fmt.Errorf("scope sums: %w", err)
	}
	sums := map[string]*syncproto.Checksum{}
	for rows.Next() {
		var id, village string
		var version int64
		if err := rows.Scan(&id, &version, &village); err != nil {
			rows.Close()
			return fmt.Errorf("scope sums: %w", err)
		}
		c := sums[village]
		if c == nil {
			c = &syncproto.Checksum{}
			sums[village] = c
		}
		c.Add(id, version)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scope sums: %w", err)
	}
	for village, c := range sums {
		if _, err := tx.ExecContext(ctx, `INSERT INTO scope_sums (village, n, s0, s1, s2, s3) VALUES (?, ?, ?, ?, ?, ?)`,
			village, c.Count, c.Sums[0], c.Sums[1], c.Sums[2], c.Sums[3]); err != nil {
			return fmt.Errorf("scope sums: %w", err)
		}
	}
	return nil
}

// moveSum takes the record at a version out of one village's checksum
// (when it existed) and adds it at another version to another's, in the
// write transaction that changes the record. In the same village (nearly
// every write) it is one update by the difference of the two digests.
func (p *pushTx) moveSum(ctx context.Context, id string, existed bool, fromVillage string, fromVersion int64, toVillage string, toVersion int64) error {
	to := syncproto.RecordDigest(id, toVersion)
	if !existed {
		return p.addSum(ctx, toVillage, 1, to)
	}
	from := syncproto.RecordDigest(id, fromVersion)
	if fromVillage == toVillage {
		var diff [4]int64
		for i := range diff {
			diff[i] = to[i] - from[i]
		}
		return p.addSum(ctx, toVillage, 0, diff)
	}
	for i := range from {
		from[i] = -from[i]
	}
	if err := p.addSum(ctx, fromVillage, -1, from); err != nil {
		return err
	}
	return p.addSum(ctx, toVillage, 1, to)
}

// addSum adds n records and the digest sums d to a village's checksum.
func (p *pushTx) addSum(ctx context.Context, village string, n int64, d [4]int64) error {
	_, err := p.exec(ctx, `INSERT INTO scope_sums (village, n, s0, s1, s2, s3) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (village) DO UPDATE SET n = n + excluded.n, s0 = s0 + excluded.s0,
		s1 = s1 + excluded.s1, s2 = s2 + excluded.s2, s3 = s3 + excluded.s3`,
		village, n, d[0], d[1], d[2], d[3])
	if err != nil {
		return fmt.Errorf("scope checksum: %w", err)
	}
	return nil
}

// Checksum returns the checksum over (id, version) of every record in the
// actor's scope and the head of the change log it is valid at, read in one
// read transaction from the per-village sums (one row per village, not one
// per record).
func (s *Store) Checksum(ctx context.Context, actor syncproto.Actor) (syncproto.Checksum, syncproto.Cursor, error) {
	var c syncproto.Checksum
	cur := syncproto.Cursor{Scope: actor.ScopeKey()}
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return c, cur, fmt.Errorf("begin checksum: %w", err)
	}
	defer tx.Rollback()
	if cur.Seq, err = head(ctx, tx); err != nil {
		return c, cur, err
	}
	where, args := scopeClause("village", actor)
	err = tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0), COALESCE(SUM(s0), 0), COALESCE(SUM(s1), 0),
		COALESCE(SUM(s2), 0), COALESCE(SUM(s3), 0) FROM scope_sums WHERE `+where, args...).
		Scan(&c.Count, &c.Sums[0], &c.Sums[1], &c.Sums[2], &c.Sums[3])
	if err != nil {
		return c, cur, fmt.Errorf("checksum: %w", err)
	}
	return c, cur, nil
}
