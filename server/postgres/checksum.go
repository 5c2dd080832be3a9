package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/syncproto"
)

// moveSum takes the record at a version out of one village's checksum
// (when it existed) and adds it at another version to another's, in the
// write transaction that changes the record.
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
// Each digest word is below 2³², so a bigint sum holds 2³¹ records.
func (p *pushTx) addSum(ctx context.Context, village string, n int64, d [4]int64) error {
	p.later(`INSERT INTO scope_sums AS s (village, n, s0, s1, s2, s3) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (village) DO UPDATE SET n = s.n + excluded.n, s0 = s.s0 + excluded.s0,
		s1 = s.s1 + excluded.s1, s2 = s.s2 + excluded.s2, s3 = s.s3 + excluded.s3`,
		village, n, d[0], d[1], d[2], d[3])
	return nil
}

// Checksum returns the checksum over (id, version) of every record in the
// actor's scope and the head of the change log it is valid at, read in one
// snapshot from the per-village sums (one row per village).
func (s *Store) Checksum(ctx context.Context, actor syncproto.Actor) (syncproto.Checksum, syncproto.Cursor, error) {
	var c syncproto.Checksum
	cur := syncproto.Cursor{Scope: actor.ScopeKey()}
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		if cur.Seq, err = head(ctx, tx); err != nil {
			return err
		}
		where, args := scopeClause("village", actor)
		err = tx.QueryRow(ctx, rebind(`SELECT COALESCE(SUM(n), 0)::bigint, COALESCE(SUM(s0), 0)::bigint, COALESCE(SUM(s1), 0)::bigint,
			COALESCE(SUM(s2), 0)::bigint, COALESCE(SUM(s3), 0)::bigint FROM scope_sums WHERE `+where), args...).
			Scan(&c.Count, &c.Sums[0], &c.Sums[1], &c.Sums[2], &c.Sums[3])
		if err != nil {
			return fmt.Errorf("checksum: %w", err)
		}
		return nil
	})
	return c, cur, err
}
