package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Change sets pushed at once share a transaction, and each stays atomic:
// one that fails after its writes leaves nothing, the others of its group
// are stored and acknowledged.
func TestGroupCommitKeepsEachChangesetAtomic(t *testing.T) {
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	var mu sync.Mutex
	failing := map[string]bool{}
	largest := 0
	s.onGroup = func(n int) {
		mu.Lock()
		largest = max(largest, n)
		mu.Unlock()
	}
	first := true
	s.beforeCommit = func(context.Context, *sql.Tx) error {
		if first { // hold the first group, so that the others queue up
			first = false
			time.Sleep(100 * time.Millisecond)
		}
		return nil
	}
	injected := errors.New("injected failure after the writes")
	// The failure comes from the push's own work in the transaction, after
	// its writes: the service's callback fails as a change set would.
	p := syncproto.NewPushService(storetest.FailingAfter{PushStore: s, Fail: func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if failing[storetest.ChangesetOf(ctx)] {
			return injected
		}
		return nil
	}}, syncproto.PushOptions{Now: s.now})
	type pushed struct {
		cs  syncproto.Changeset
		ids []string
		err error
	}
	results := make([]pushed, 40)
	var wg sync.WaitGroup
	for i := range results {
		d := storetest.NewDevice("admin")
		ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
		var changes []syncproto.Change
		for _, id := range ids {
			changes = append(changes, storetest.Household(id, storetest.SouthVillage, storetest.T0))
		}
		cs := d.Changeset(changes...)
		if i%4 == 3 {
			mu.Lock()
			failing[cs.ChangesetID] = true
			mu.Unlock()
		}
		results[i] = pushed{cs: cs, ids: ids}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i > 0 {
				time.Sleep(10 * time.Millisecond) // after the first
			}
			ctx := storetest.WithChangeset(context.Background(), cs.ChangesetID)
			_, results[i].err = p.Push(ctx, d.Actor, cs)
		}()
	}
	wg.Wait()
	if largest < 2 {
		t.Fatalf("no group had more than %d change sets: the test tests nothing", largest)
	}
	ctx := context.Background()
	for i, r := range results {
		mu.Lock()
		fail := failing[r.cs.ChangesetID]
		mu.Unlock()
		if fail != (r.err != nil) || (fail && !errors.Is(r.err, injected)) {
			t.Fatalf("change set %d: error %v, should fail: %v", i, r.err, fail)
		}
		for _, id := range r.ids {
			_, err := s.Record(ctx, id)
			if fail != (syncproto.ErrorCode(err) == syncproto.ENotFound) {
				t.Fatalf("change set %d (failing %v): record %s: %v", i, fail, id, err)
			}
		}
		rec, err := s.ReceiptOf(ctx, r.cs.ChangesetID)
		if fail != (err != nil) || (!fail && rec.ChangesetID != r.cs.ChangesetID) {
			t.Fatalf("change set %d (failing %v): receipt %v %+v", i, fail, err, rec)
		}
	}
	t.Logf("largest group: %d change sets", largest)
}

// A failed commit fails the whole group: nothing of it is stored or
// acknowledged.
func TestGroupCommitFailureFailsTheGroup(t *testing.T) {
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	release := make(chan struct{})
	calls := 0
	injected := errors.New("disk gone")
	s.beforeCommit = func(context.Context, *sql.Tx) error {
		calls++
		if calls == 1 {
			<-release // a first group holds the writer while the others queue
			return nil
		}
		return injected
	}
	var wg sync.WaitGroup
	errs := make([]error, 6)
	ids := make([]string, 6)
	for i := range errs {
		d := storetest.NewDevice("admin")
		ids[i] = uuid.NewString()
		cs := d.Changeset(storetest.Household(ids[i], storetest.SouthVillage, storetest.T0))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = pushes(s).Push(context.Background(), d.Actor, cs)
		}()
		if i == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, err := range errs {
		_, rerr := s.Record(context.Background(), ids[i])
		if (err == nil) != (rerr == nil) {
			t.Fatalf("push %d: error %v but record lookup %v", i, err, rerr)
		}
		if i > 0 && !errors.Is(err, injected) {
			t.Fatalf("push %d in the failed group: %v", i, err)
		}
	}
	if errs[0] != nil {
		t.Fatalf("the first group: %v", errs[0])
	}
}
