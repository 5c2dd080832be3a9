package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// blockedCommitter starts a Committer whose commit function waits on
// release before each group and records the groups it was given, each as
// its requests' sizes; every request whose size is odd fails alone.
type blockedCommitter struct {
	*Committer
	release chan struct{}
	entered chan struct{} // a value each time a group's commit begins
	mu      sync.Mutex
	groups  [][]int
}

func startBlocked() *blockedCommitter {
	b := &blockedCommitter{release: make(chan struct{}), entered: make(chan struct{}, 1000)}
	b.Committer = Start(func(group []*Request) []error {
		b.entered <- struct{}{}
		<-b.release
		sizes := make([]int, len(group))
		results := make([]error, len(group))
		for i, r := range group {
			sizes[i] = r.Changes
			if r.Changes%2 == 1 {
				results[i] = fmt.Errorf("set of %d failed", r.Changes)
			}
		}
		b.mu.Lock()
		b.groups = append(b.groups, sizes)
		b.mu.Unlock()
		return results
	})
	return b
}

func noop(context.Context, syncproto.PushTx) error { return nil }

// waitQueued waits until n requests wait in the committer's queue.
func waitQueued(t *testing.T, c *Committer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued after 10 s, want %d", c.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWaitingSetsShareAGroupAndGetTheirOwnResults: while one group
// commits, the change sets that arrive wait and are then committed as one
// group; each caller gets its own set's result.
func TestWaitingSetsShareAGroupAndGetTheirOwnResults(t *testing.T) {
	b := startBlocked()
	defer b.Close()
	errs := make(chan error, 1)
	go func() { errs <- b.Write(context.Background(), 2, noop) }()
	// The first set is taken alone (nothing else waits); its commit is
	// held until ten more wait.
	<-b.entered
	results := make([]error, 10)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = b.Write(context.Background(), 10+i, noop) }()
	}
	waitQueued(t, b.Committer, 10)
	close(b.release)
	wg.Wait()
	if err := <-errs; err != nil {
		t.Fatalf("first set: %v", err)
	}
	for i, err := range results {
		if odd := (10+i)%2 == 1; odd != (err != nil) {
			t.Errorf("set of %d changes: error %v, want failed=%v", 10+i, err, odd)
		}
		if err != nil && err.Error() != fmt.Sprintf("set of %d failed", 10+i) {
			t.Errorf("set of %d changes got another set's result: %v", 10+i, err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.groups) != 2 || len(b.groups[0]) != 1 || len(b.groups[1]) != 10 {
		t.Fatalf("groups %v, want the first set alone, then the ten waiting together", b.groups)
	}
}

// TestGroupsAreBounded: a group takes at most MaxSets change sets, and is
// closed once it holds MaxChanges changes.
func TestGroupsAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sets    int
		changes int
		next    int    // the size of the group after the first
		all     string // the sizes of all groups after the first; "" when they may vary
	}{
		// The queue holds MaxSets; the six sets beyond it wait to be
		// queued and may split over the groups after the next.
		{"by sets", MaxSets + 6, 2, MaxSets, ""},
		{"by changes", 9, MaxChanges / 4, 4, "[4 4 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBlocked()
			defer b.Close()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); _ = b.Write(context.Background(), 2, noop) }()
			<-b.entered // the first set taken alone, its commit held
			for range tc.sets {
				wg.Add(1)
				go func() { defer wg.Done(); _ = b.Write(context.Background(), tc.changes, noop) }()
			}
			// The queue holds MaxSets: the rest wait to be queued.
			waitQueued(t, b.Committer, min(tc.sets, MaxSets))
			close(b.release)
			wg.Wait()
			b.mu.Lock()
			defer b.mu.Unlock()
			var sizes []int
			for _, g := range b.groups[1:] {
				sizes = append(sizes, len(g))
			}
			total := 0
			for _, n := range sizes {
				total += n
			}
			if sizes[0] != tc.next || (tc.all != "" && fmt.Sprint(sizes) != tc.all) || total != tc.sets {
				t.Fatalf("groups of %v sets after the first (%d in all), want %d next, %q, %d in all", sizes, total, tc.next, tc.all, tc.sets)
			}
		})
	}
}

// TestCloseCommitsWhatIsQueuedAndRefusesTheRest: Close lets the committer
// commit every set queued before it, waits for a write under way, and
// refuses every write after it with EUnavailable.
func TestCloseCommitsWhatIsQueuedAndRefusesTheRest(t *testing.T) {
	b := startBlocked()
	results := make(chan error, 5)
	go func() { results <- b.Write(context.Background(), 2, noop) }()
	<-b.entered
	for range 4 {
		go func() { results <- b.Write(context.Background(), 2, noop) }()
	}
	waitQueued(t, b.Committer, 4)
	inWrite, leave := make(chan struct{}), make(chan struct{})
	go func() {
		_ = b.WhileOpen(func() error { close(inWrite); <-leave; return nil })
	}()
	<-inWrite
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a write was under way")
	case <-time.After(50 * time.Millisecond):
	}
	close(leave)
	close(b.release)
	<-closed
	for range 5 {
		if err := <-results; err != nil {
			t.Fatalf("a set queued before Close: %v", err)
		}
	}
	var e *syncproto.Error
	if err := b.Write(context.Background(), 2, noop); !errors.As(err, &e) || e.Code != syncproto.EUnavailable {
		t.Fatalf("Write after Close: %v, want EUnavailable", err)
	}
	ran := false
	if err := b.WhileOpen(func() error { ran = true; return nil }); !errors.As(err, &e) || e.Code != syncproto.EUnavailable || ran {
		t.Fatalf("WhileOpen after Close: %v (ran %v), want EUnavailable without running", err, ran)
	}
	if !b.Closed() {
		t.Fatal("Closed() is false after Close")
	}
	b.Close() // a second Close only waits
}
