package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync/syncproto"
)

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
	list, _ := json.Marshal(hashes)
	_, err := p.exec(ctx, `INSERT INTO attachment_uploads (hash, user_id, device_id, at)
		SELECT hash, ?, ?, MAX(at) FROM attachment_uploads
		WHERE user_id = ? AND hash IN (SELECT value FROM json_each(?)) GROUP BY hash
		ON CONFLICT (hash, user_id, device_id) DO UPDATE SET at = excluded.at`,
		original.UserID, original.DeviceID, replayer.UserID, string(list))
	if err != nil {
		return fmt.Errorf("carry photo proofs: %w", err)
	}
	return nil
}

// WriteReplay runs the replay of an exported outbox's n change sets:
// fn(ctx, tx, i) for each, in order, in one durable transaction with a
// savepoint per change set. A change set refused with an *Error (out of
// order, out of scope, an id reused) is rolled back alone; any other error
// is the database failing, and nothing of the replay is kept. fn's
// context is ctx without its cancellation; after Close began, WriteReplay
// refuses with EUnavailable without calling fn.
func (s *Store) WriteReplay(ctx context.Context, n int, fn func(context.Context, syncproto.ReplayTx, int) error) error {
	return s.whileOpen(func() error { return s.writeReplay(context.WithoutCancel(ctx), n, fn) })
}

// writeReplay is WriteReplay once the store is known to be open.
func (s *Store) writeReplay(ctx context.Context, n int, fn func(context.Context, syncproto.ReplayTx, int) error) error {
	tx, err := s.beginWrite(ctx, "outbox_replay")
	if err != nil {
		return writeError(fmt.Errorf("begin replay: %w", err))
	}
	defer tx.Rollback()
	rtx := &replayTx{pushTx{tx: tx, book: syncproto.NewSummaryBook(s.summaries.Load())}}
	for i := range n {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT replay`); err != nil {
			return writeError(fmt.Errorf("savepoint: %w", err))
		}
		if err := fn(ctx, rtx, i); err != nil {
			var se *syncproto.Error
			if !errors.As(err, &se) {
				return writeError(err) // the database failed: nothing of the replay is kept
			}
			rtx.forget()
			if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO replay`); rerr != nil {
				return writeError(fmt.Errorf("replay: roll back a refused change set: %w", rerr))
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE replay`); err != nil {
			return writeError(fmt.Errorf("release savepoint: %w", err))
		}
	}
	if err := s.keepSummaries(ctx, &rtx.pushTx); err != nil {
		return writeError(err)
	}
	if err := s.commit(tx); err != nil {
		return writeError(fmt.Errorf("commit replay: %w", err))
	}
	return nil
}
