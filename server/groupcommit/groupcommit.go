// Package groupcommit is the committer both stores put their pushes
// through. One goroutine takes the change sets waiting at that moment (at
// most MaxSets, or about MaxChanges changes), hands them as one group to
// the store's commit function — which applies each in a savepoint of one
// write transaction and commits once — and only then answers each. Under
// load the commit (an fsync of SQLite's WAL, a WAL flush of PostgreSQL and
// the turn of its write lock) is shared; alone, a change set commits as
// before.
//
// The Committer also keeps the store's open/closed state for the writes
// that do not go through it (WhileOpen), so that Close refuses new writes,
// lets those queued and under way finish, and only then returns.
package groupcommit

import (
	"context"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// The bounds of one group.
const (
	// MaxSets is the most change sets one group takes.
	MaxSets = 64
	// MaxChanges is about the most changes one group takes: a group is
	// closed once it holds this many (a single larger set goes alone).
	MaxChanges = 5000
)

// errClosed is the answer to a write asked for after Close began.
func errClosed() error {
	return &syncproto.Error{Code: syncproto.EUnavailable, Title: "Shutting down",
		Message: "the server is shutting down; retry shortly", RetryIn: 5 * time.Second}
}

// Request is one change set waiting for its group's commit.
type Request struct {
	// Ctx is the caller's context without its cancellation: a caller
	// that goes away does not cut a change set in half.
	Ctx context.Context
	// Changes is the change set's size, by which groups are bounded.
	Changes int
	// Apply is the push service's work for the change set.
	Apply func(context.Context, syncproto.PushTx) error
	// Queued is when Write was called, for the stores' write observers.
	Queued time.Time

	done chan error
}

// Committer gathers change sets into groups and commits each group with
// the function given to Start.
type Committer struct {
	commit func(group []*Request) []error
	reqs   chan *Request
	done   chan struct{}

	mu     sync.RWMutex // guards closed and sending on reqs; held for reading by every write
	closed bool
}

// Start starts the committer. commit applies a group and returns one
// result per request, in order: nil for a change set kept, its error for
// one rolled back alone; a failed commit returns the same error for all.
func Start(commit func(group []*Request) []error) *Committer {
	c := &Committer{commit: commit, reqs: make(chan *Request, MaxSets), done: make(chan struct{})}
	go c.loop()
	return c
}

// Write queues apply, a change set of changes changes, and returns its
// result once its group is committed (or rolled back). After Close began
// it refuses with EUnavailable (retry shortly) without queuing.
func (c *Committer) Write(ctx context.Context, changes int, apply func(context.Context, syncproto.PushTx) error) error {
	r := &Request{Ctx: context.WithoutCancel(ctx), Changes: changes, Apply: apply,
		Queued: time.Now(), done: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return errClosed()
	}
	c.reqs <- r
	c.mu.RUnlock()
	return <-r.done
}

// WhileOpen runs write, a write that does not go through the committer (a
// replay, a supervisor's decision), unless Close began: then it refuses
// with EUnavailable without running it. Close waits for the writes under way.
func (c *Committer) WhileOpen(write func() error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return errClosed()
	}
	return write()
}

// Closed reports whether Close began.
func (c *Committer) Closed() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.closed
}

// Queued returns the number of change sets waiting for a group.
func (c *Committer) Queued() int { return len(c.reqs) }

// Close refuses new writes, waits for the writes under way (WhileOpen),
// lets the committer commit every change set queued before, and waits for
// it. Later calls only wait.
func (c *Committer) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.reqs)
	}
	c.mu.Unlock()
	<-c.done
}

func (c *Committer) loop() {
	defer close(c.done)
	for first := range c.reqs {
		group := []*Request{first}
		changes := first.Changes
	gather:
		for len(group) < MaxSets && changes < MaxChanges {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break gather
				}
				group = append(group, r)
				changes += r.Changes
			default:
				break gather
			}
		}
		results := c.commit(group)
		for i, r := range group {
			r.done <- results[i]
		}
	}
}
