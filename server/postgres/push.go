package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/syncproto"
)

var _ syncproto.PushStore = (*Store)(nil)

// replayTx is a write transaction for the replay of an exported outbox.
type replayTx struct{ pushTx }

var _ syncproto.ReplayTx = (*replayTx)(nil)

func (p *replayTx) RecordReplay(ctx context.Context, changesetID string, r syncproto.Replay) error {
	_, err := p.exec(ctx, `INSERT INTO outbox_replays (changeset_id, replayed_by, via_device, replayed_at)
		VALUES (?, ?, ?, ?)`, changesetID, r.By, r.Device, formatTime(r.At))
	if err != nil {
		return fmt.Errorf("record replay: %w", err)
	}
	return nil
}

func (p *replayTx) CarryPhotoProofs(ctx context.Context, hashes []string, replayer, original syncproto.Actor) error {
	_, err := p.exec(ctx, `INSERT INTO attachment_uploads (hash, user_id, device_id, at)
		SELECT hash, ?, ?, MAX(at) FROM attachment_uploads
		WHERE user_id = ? AND hash = ANY(?::text[]) GROUP BY hash
		ON CONFLICT (hash, user_id, device_id) DO UPDATE SET at = excluded.at`,
		original.UserID, original.DeviceID, replayer.UserID, nonNil(hashes))
	if err != nil {
		return fmt.Errorf("carry photo proofs: %w", err)
	}
	return nil
}

// WriteReplay runs the replay of an exported outbox's n change sets:
// fn(ctx, tx, i) for each, in order, in one durable transaction holding
// the write lock, with a savepoint per change set. A change set refused
// with an *Error is rolled back alone; any other error keeps nothing of the
// replay.
func (s *Store) WriteReplay(ctx context.Context, n int, fn func(context.Context, syncproto.ReplayTx, int) error) error {
	return s.write(ctx, "outbox_replay", func(ctx context.Context, tx pgx.Tx) error {
		rtx := &replayTx{pushTx{tx: tx, book: syncproto.NewSummaryBook(s.summaries.Load())}}
		for i := range n {
			if _, err := tx.Exec(ctx, `SAVEPOINT replay`); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			err := fn(ctx, rtx, i)
			if err == nil {
				err = rtx.flush(ctx)
			}
			if err != nil {
				var se *syncproto.Error
				if !errors.As(err, &se) {
					return err
				}
				rtx.forget()
				if _, rerr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT replay`); rerr != nil {
					return fmt.Errorf("replay: roll back a refused change set: %w", rerr)
				}
			}
			if _, err := tx.Exec(ctx, `RELEASE SAVEPOINT replay`); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
		return s.keepSummaries(ctx, &rtx.pushTx)
	})
}
