package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/server/groupcommit"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Group commit (server/groupcommit), as in the SQLite store. Every push
// of this Store goes through one committer goroutine. It hands the change
// sets waiting at that moment to commitGroup, which begins one write transaction holding the write lock, applies each change
// set in a SAVEPOINT of its own, commits once, and only then answers each.
// A change set that fails rolls back to its savepoint and fails alone; a
// failed commit (or a savepoint that cannot be rolled back to: the
// connection is gone) fails the whole group, and none of it is
// acknowledged. A change set alone takes no savepoint: it commits as a
// transaction of its own, as before.
//
// What is shared is the cost per transaction: BEGIN, the lock timeout, the
// write lock (one turn of it instead of one per change set, while the
// other instances wait their turn anyway) and the commit — a WAL flush
// and, with synchronous standbys, a round trip to them.
func (s *Store) startCommitter() { s.committer = groupcommit.Start(s.commitGroup) }

// WritePush runs apply, the push service's work for one change set of
// changes changes, with a context that the caller's going away does not
// cancel, in a write transaction holding the write lock and possibly
// shared with other change sets (then in a savepoint of its own), and
// returns once that transaction is committed with synchronous_commit on.
// An error of apply rolls back its writes alone and is returned as the
// change set's error; a failed commit fails every change set of the group
// (as EUnavailable when the database is going away). Once Close began,
// WritePush refuses with EUnavailable.
func (s *Store) WritePush(ctx context.Context, changes int, apply func(context.Context, syncproto.PushTx) error) error {
	return s.committer.Write(ctx, changes, apply)
}

// commitGroup applies the group's change sets in one transaction, each in
// a savepoint when there are several, and commits it.
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
	tx, err := s.beginWrite(ctx)
	if s.observer != nil {
		// Each change set's wait: in the committer's queue, then for a
		// connection and the write lock.
		began := time.Now()
		for _, r := range group {
			s.observer.WriteWaited("push", began.Sub(r.Queued))
		}
	}
	if err != nil {
		return failAll(err)
	}
	defer tx.Rollback(ctx)
	ptx := &pushTx{tx: tx, book: syncproto.NewSummaryBook(s.summaries.Load())}
	if len(group) == 1 {
		if err := ptx.run(group[0].Ctx, group[0].Apply); err != nil {
			return failAll(writeError(err))
		}
	} else if err := applyInSavepoints(ctx, tx, ptx, group, results); err != nil {
		return failAll(err)
	}
	// The household summaries and their villages' sums of the group's
	// change sets (those kept), in the same transaction.
	if err := s.keepSummaries(ctx, ptx); err != nil {
		return failAll(writeError(err))
	}
	if s.beforeCommit != nil {
		s.beforeCommit()
	}
	if err := tx.Commit(ctx); err != nil {
		return failAll(writeError(fmt.Errorf("commit push: %w", err)))
	}
	return results
}

// applyInSavepoints applies each change set of group in a savepoint of tx,
// setting results[i] to the error of those that fail (rolled back to their
// savepoint). An error it returns is the transaction's: nothing of the
// group can be kept.
func applyInSavepoints(ctx context.Context, tx pgx.Tx, ptx *pushTx, group []*groupcommit.Request, results []error) error {
	for i, r := range group {
		if _, err := tx.Exec(ctx, `SAVEPOINT changeset`); err != nil {
			return writeError(fmt.Errorf("savepoint: %w", err))
		}
		if err := ptx.run(r.Ctx, r.Apply); err != nil {
			ptx.forget()
			if _, rerr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT changeset`); rerr != nil {
				// The transaction is gone (the connection lost, the
				// server restarting): the group's other change sets are
				// lost too, and fail with this one's reason.
				return writeError(err)
			}
			results[i] = writeError(err)
		}
		if _, err := tx.Exec(ctx, `RELEASE SAVEPOINT changeset`); err != nil {
			return writeError(fmt.Errorf("release savepoint: %w", err))
		}
	}
	return nil
}
