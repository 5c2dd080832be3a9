package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Group commit. Every push goes through one committer goroutine. It takes
// the change sets waiting at that moment (at most maxGroupSets, or about
// maxGroupChanges changes), applies each in its own SAVEPOINT of one write
// transaction, commits once — one fsync of the WAL for the group — and only
// then answers each. A change set that fails rolls back to its savepoint
// and fails alone; a failed commit fails the whole group, and none of it is
// acknowledged. Under load the fsync, which dominates a small change set's
// cost, is shared; alone, a change set commits as before.
const (
	maxGroupSets    = 64
	maxGroupChanges = 5000
)

type pushRequest struct {
	ctx     context.Context
	changes int // the change set's size, by which groups are bounded
	apply   func(context.Context, syncproto.PushTx) error
	done    chan error
	queued  time.Time // when WritePush was called, for the write observer
}

func (s *Store) startCommitter() {
	s.pushes = make(chan *pushRequest, maxGroupSets)
	s.committerDone = make(chan struct{})
	go s.commitLoop()
}

// stopCommitter refuses new pushes, lets the committer finish those
// already queued, and waits for it.
func (s *Store) stopCommitter() {
	s.pushMu.Lock()
	if !s.pushClosed {
		s.pushClosed = true
		close(s.pushes)
	}
	s.pushMu.Unlock()
	<-s.committerDone
}

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
	req := &pushRequest{ctx: context.WithoutCancel(ctx), changes: changes, apply: apply,
		done: make(chan error, 1), queued: time.Now()}
	s.pushMu.RLock()
	if s.pushClosed {
		s.pushMu.RUnlock()
		return errShuttingDown()
	}
	s.pushes <- req
	s.pushMu.RUnlock()
	return <-req.done
}

// errShuttingDown is the refusal of a write asked for after Close began.
func errShuttingDown() error {
	return &syncproto.Error{Code: syncproto.EUnavailable, Title: "Shutting down",
		Message: "the server is shutting down; retry shortly", RetryIn: 5 * time.Second}
}

// whileOpen runs write, a write that does not go through the committer
// (a replay, a supervisor's decision), unless Close began: then it refuses
// with errShuttingDown without running it. Close waits for the writes
// under way before it closes the writer.
func (s *Store) whileOpen(write func() error) error {
	s.pushMu.RLock()
	defer s.pushMu.RUnlock()
	if s.pushClosed {
		return errShuttingDown()
	}
	return write()
}

func (s *Store) commitLoop() {
	defer close(s.committerDone)
	for first := range s.pushes {
		group := []*pushRequest{first}
		changes := first.changes
	gather:
		for len(group) < maxGroupSets && changes < maxGroupChanges {
			select {
			case r, ok := <-s.pushes:
				if !ok {
					break gather
				}
				group = append(group, r)
				changes += r.changes
			default:
				break gather
			}
		}
		results := s.commitGroup(group)
		for i, r := range group {
			r.done <- results[i]
		}
	}
}

// commitGroup applies the group's change sets in one transaction, each in
// a savepoint, and commits it.
func (s *Store) commitGroup(group []*pushRequest) []error {
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
			s.observer.WriteWaited("push", began.Sub(r.queued))
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
		if err := r.apply(r.ctx, ptx); err != nil {
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
