package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Behind counts, for each change-log position of after, the records in the
// actor's scope changed after it (0: every record of the scope), from one
// snapshot: the total from the per-village sums, the rest from the records'
// positions above the lowest one asked (records_village_seq), not from the
// change log.
func (s *Store) Behind(ctx context.Context, actor syncproto.Actor, after []int64) ([]int64, error) {
	out := make([]int64, len(after))
	err := s.read(ctx, func(tx pgx.Tx) error {
		where, args := scopeClause("s.village", actor)
		var total int64
		if err := tx.QueryRow(ctx, rebind(`SELECT COALESCE(SUM(n), 0)::bigint FROM scope_sums s WHERE `+where), args...).Scan(&total); err != nil {
			return fmt.Errorf("behind: %w", err)
		}
		lowest := int64(-1)
		for _, a := range after {
			if a > 0 && (lowest < 0 || a < lowest) {
				lowest = a
			}
		}
		var seqs []int64
		if lowest > 0 {
			rows, err := tx.Query(ctx, rebind(`SELECT r.seq FROM scope_sums s JOIN records r ON r.village = s.village AND r.seq > ?
				WHERE `+where), append([]any{lowest}, args...)...)
			seqs, err = collect(rows, err, "behind", func(r pgx.Row) (int64, error) {
				var seq int64
				err := r.Scan(&seq)
				return seq, err
			})
			if err != nil {
				return err
			}
			slices.Sort(seqs)
		}
		for i, a := range after {
			if a <= 0 {
				out[i] = total
				continue
			}
			n, _ := slices.BinarySearch(seqs, a+1)
			out[i] = int64(len(seqs) - n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
