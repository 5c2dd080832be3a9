package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Behind counts, for each cursor position in after, the records in the
// actor's scope changed after it: what a pull from there would return
// (removals aside). It reads one transaction and never the change log:
// the villages of the scope and their record counts come from the
// per-village checksum table (a position of 0 is that count), and the
// records changed after the lowest other position from one range of the
// records_village_seq index per village.
func (s *Store) Behind(ctx context.Context, actor syncproto.Actor, after []int64) ([]int64, error) {
	out := make([]int64, len(after))
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin behind: %w", err)
	}
	defer tx.Rollback()
	where, args := scopeClause("s.village", actor)
	var total int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0) FROM scope_sums s WHERE `+where, args...).Scan(&total); err != nil {
		return nil, fmt.Errorf("behind: %w", err)
	}
	lowest := int64(-1)
	for _, a := range after {
		if a > 0 && (lowest < 0 || a < lowest) {
			lowest = a
		}
	}
	var seqs []int64
	if lowest > 0 {
		// CROSS JOIN keeps scope_sums the outer loop, so that each village
		// is one range of records_village_seq: without statistics SQLite
		// would rather walk records_seq from the lowest cursor, the whole
		// database for a tablet that pulled long ago.
		rows, err := tx.QueryContext(ctx, `SELECT r.seq FROM scope_sums s CROSS JOIN records r ON r.village = s.village AND r.seq > ?
			WHERE `+where, append([]any{lowest}, args...)...)
		seqs, err = collect(rows, err, "behind", func(r rowScanner) (int64, error) {
			var seq int64
			err := r.Scan(&seq)
			return seq, err
		})
		if err != nil {
			return nil, err
		}
		slices.Sort(seqs)
	}
	for i, a := range after {
		if a <= 0 {
			out[i] = total
			continue
		}
		// The records after a: those of seqs above it.
		n, _ := slices.BinarySearch(seqs, a+1)
		out[i] = int64(len(seqs) - n)
	}
	return out, nil
}

// NameDevice keeps the name a tablet gave itself at login.
func (s *Store) NameDevice(ctx context.Context, device, name string) error {
	return s.write(ctx, "name_device", func(ctx context.Context, tx *superviseTx) error {
		_, err := tx.exec(ctx, `INSERT INTO device_names (device_id, name, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at`,
			device, name, formatTime(s.now()))
		if err != nil {
			return fmt.Errorf("name device: %w", err)
		}
		return nil
	})
}
