package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/server/postgres/pgtest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// groupSizes records the size of every group the store's committer writes.
func groupSizes(s *Store) func() (largest int) {
	var mu sync.Mutex
	largest := 0
	s.onGroup = func(n int) {
		mu.Lock()
		largest = max(largest, n)
		mu.Unlock()
	}
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return largest
	}
}

// TestGroupCommitKeepsEachChangesetAtomic: change sets pushed at once share
// a transaction, and each stays atomic: one that fails after its writes
// leaves nothing (no record, no receipt), the others of its group are
// stored and acknowledged.
func TestGroupCommitKeepsEachChangesetAtomic(t *testing.T) {
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	largest := groupSizes(s)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.beforeCommit = func() {
		// Hold the first group, so that the others queue up behind it.
		once.Do(func() { close(entered); <-release })
	}
	var mu sync.Mutex
	failing := map[string]bool{}
	injected := errors.New("injected failure after the writes")
	p := syncproto.NewPushService(storetest.FailingAfter{PushStore: s, Fail: func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if failing[storetest.ChangesetOf(ctx)] {
			return injected
		}
		return nil
	}}, syncproto.PushOptions{Now: s.now})
	type pushed struct {
		cs   syncproto.Changeset
		ids  []string
		fail bool
		err  error
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
		results[i] = pushed{cs: cs, ids: ids, fail: i%4 == 3}
		mu.Lock()
		failing[cs.ChangesetID] = results[i].fail
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := storetest.WithChangeset(context.Background(), cs.ChangesetID)
			_, results[i].err = p.Push(ctx, d.Actor, cs)
		}()
		if i == 0 {
			<-entered // the first is in a group of its own, held before its commit
		}
	}
	waitQueued(t, s, len(results)-1)
	close(release)
	wg.Wait()
	if largest() != len(results)-1 {
		t.Fatalf("largest group %d, want the %d queued change sets in one", largest(), len(results)-1)
	}
	ctx := context.Background()
	for i, r := range results {
		if r.fail != (r.err != nil) || (r.fail && !errors.Is(r.err, injected)) {
			t.Fatalf("change set %d: error %v, should fail: %v", i, r.err, r.fail)
		}
		for _, id := range r.ids {
			_, err := s.Record(ctx, id)
			if r.fail != (syncproto.ErrorCode(err) == syncproto.ENotFound) {
				t.Fatalf("change set %d (failing %v): record %s: %v", i, r.fail, id, err)
			}
		}
		rec, err := s.ReceiptOf(ctx, r.cs.ChangesetID)
		if r.fail != (err != nil) || (!r.fail && rec.ChangesetID != r.cs.ChangesetID) {
			t.Fatalf("change set %d (failing %v): receipt %v %+v", i, r.fail, err, rec)
		}
	}
	t.Logf("largest group: %d change sets", largest())
}

// TestGroupCommitFailureFailsTheGroup: the database cuts the connection
// just before a group commits. Every change set of the group is refused as
// EUnavailable and nothing of any is kept; each tablet's retry applies its
// set once.
func TestGroupCommitFailureFailsTheGroup(t *testing.T) {
	ctx := context.Background()
	url := pgtest.DB(t)
	clock := storetest.NewClock(storetest.T0)
	s := mustOpenURL(t, url, clock)
	largest := groupSizes(s)
	admin, err := pgx.Connect(ctx, url) // not the store's: another application_name
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	calls := 0
	s.beforeCommit = func() {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		switch n {
		case 1: // the first group holds the committer while the others queue
			close(entered)
			<-release
		case 2: // the second group's connection is cut before its commit
			if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE application_name = 'fieldsync' AND datname = current_database()`); err != nil {
				t.Error(err)
			}
		}
	}
	p := storetest.NewPushService(s, clock)
	const n = 6
	devices := make([]*storetest.Device, n)
	sets := make([]syncproto.Changeset, n)
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		devices[i] = storetest.NewDevice("admin")
		ids[i] = uuid.NewString()
		sets[i] = devices[i].Changeset(storetest.Household(ids[i], storetest.SouthVillage, storetest.T0))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = p.Push(ctx, devices[i].Actor, sets[i])
		}()
		if i == 0 {
			<-entered // the first is in its group, alone
		}
	}
	waitQueued(t, s, n-1)
	close(release)
	wg.Wait()
	if errs[0] != nil {
		t.Fatalf("the first group: %v", errs[0])
	}
	if largest() != n-1 {
		t.Fatalf("largest group %d, want the %d queued change sets in one", largest(), n-1)
	}
	for i := 1; i < n; i++ {
		var se *syncproto.Error
		if !errors.As(errs[i], &se) || se.Code != syncproto.EUnavailable {
			t.Fatalf("push %d of the failed group: %v, want EUnavailable", i, errs[i])
		}
		if _, err := s.Record(ctx, ids[i]); syncproto.ErrorCode(err) != syncproto.ENotFound {
			t.Fatalf("push %d of the failed group: record %v, want not found", i, err)
		}
		if _, err := s.ReceiptOf(ctx, sets[i].ChangesetID); err == nil {
			t.Fatalf("push %d of the failed group has a receipt", i)
		}
	}
	for i := 1; i < n; i++ {
		resp, err := p.Push(ctx, devices[i].Actor, sets[i])
		if err != nil || resp.Replayed || resp.Results[0].Status != syncproto.StatusApplied {
			t.Fatalf("retry %d: %+v, %v; want applied, not replayed", i, resp, err)
		}
	}
}

// waitQueued waits until n pushes wait in the committer's queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.committer.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d pushes queued after 20 s, want %d", s.committer.Queued(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
