package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/server/groupcommit"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Group commit (server/groupcommit): every push goes through one
// committer goroutine, which hands the change sets waiting at that moment
// to commitGroup: each applied in its own SAVEPOINT of one write
// transaction, one commit — one fsync of the WAL for the group — and only
// then each answered. A change set that fails rolls back to its savepoint
// and fails alone; a failed commit fails the whole group, and none of it
// is acknowledged. Under load the fsync, which dominates a small change
// set's cost, is shared; alone, a change set commits as before.

func (s *Store) startCommitter() { s.committer = groupcommit.Start(s.commitGroup) }

// stopCommitter refuses new pushes, lets the committer finish those
// already queued, and waits for it.
func (s *Store) stopCommitter() { s.committer.Close() }

var _ syncproto.PushStore = (*Store)(nil)

// WritePush runs apply, the push service's work for one change set of
// changes changes, with a context that the caller's going away does not
// cancel, in a durable transaction possibly shared with other
// change sets (in a savepoint of its own), and returns once the
// transaction is committed and fsynced. An error of apply rolls back its
// writes alone and is returned as the change set's error; a failed commit
// fails every change set of the group. A caller that goes away does not
// cancel it: the change set is applied (or not) whole, and its receipt
// answers the retry. Once Close began, WritePush refuses with EUnavailable.
func (s *Store) WritePush(ctx context.Context, changes int, apply func(context.Context, syncproto.PushTx) error) error {
	return s.committer.Write(ctx, changes, apply)
}

// whileOpen runs write, a write that does not go through the committer
// (a replay, a supervisor's decision), unless Close began: then it refuses
// with EUnavailable without running it. Close waits for the writes under
// way before it closes the writer.
func (s *Store) whileOpen(write func() error) error {
	return s.committer.WhileOpen(write)
}

// commitGroup applies the group's change sets in one transaction, each in
// a savepoint, and commits it.
func (s *Store) commitGroup(group []*groupcommit.Request) []error {
	if s.onGroup != nil {
		s.onGroup(len(group))
	}
	results := make([]error, len(group))
	failAll := func(err error) []error {
		for i := range results {
			results[i] = err
		}
		return results
	}
	ctx := context.Background()
	tx, err := s.writer.BeginTx(ctx, nil)
	if s.observer != nil {
		// Each change set's wait: in the committer's queue, then for the
		// group's transaction (the writer connection and the write lock).
		began := time.Now()
		for _, r := range group {
			s.observer.WriteWaited("push", began.Sub(r.Queued))
		}
	}
	if err != nil {
		return failAll(writeError(fmt.Errorf("begin push: %w", err)))
	}
	defer tx.Rollback()
	ptx := &pushTx{tx: tx, book: syncproto.NewSummaryBook(s.summaries.Load())}
	for i, r := range group {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT changeset`); err != nil {
			return failAll(writeError(fmt.Errorf("savepoint: %w", err)))
		}
		if err := r.Apply(r.Ctx, ptx); err != nil {
			ptx.forget()
			if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO changeset`); rerr != nil {
				// SQLite rolled the whole transaction back itself (a full
				// disk, an I/O error): the group's other change sets are
				// gone too, and fail with this one's reason.
				return failAll(writeError(err))
			}
			results[i] = writeError(err)
		}
		if _, err := tx.ExecContext(ctx, `RELEASE changeset`); err != nil {
			return failAll(writeError(fmt.Errorf("release savepoint: %w", err)))
		}
	}
	if err := s.keepSummaries(ctx, ptx); err != nil {
		return failAll(writeError(err))
	}
	if s.beforeCommit != nil {
		if err := s.beforeCommit(ctx, tx); err != nil {
			return failAll(writeError(err))
		}
	}
	if err := s.commit(tx); err != nil {
		return failAll(writeError(fmt.Errorf("commit push: %w", err)))
	}
	return results
}
