package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/server/postgres/pgtest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// instances opens n stores on one new database: n pools, as n fieldsync
// instances would have.
func instances(t *testing.T, n int, clock *storetest.Clock) []*Store {
	t.Helper()
	url := pgtest.DB(t)
	out := make([]*Store, n)
	for i := range out {
		out[i] = mustOpenURL(t, url, clock)
	}
	return out
}

// TestPullersMissNoChangeOfConcurrentWriters is the cursor hazard: change
// sets commit on several instances at once, each held open a little
// before its commit (so that a later change set often commits first),
// while pullers on every instance follow their cursors page by page.
// Every household created must reach every puller exactly once: a cursor
// that moved past a change still in flight would skip it for good.
func TestPullersMissNoChangeOfConcurrentWriters(t *testing.T) {
	const (
		writers = 4 // instances, each with two tablets
		sets    = 12
		perSet  = 4
		pullers = 3
	)
	clock := storetest.NewClock(storetest.T0)
	stores := instances(t, writers, clock)
	for _, s := range stores {
		s.beforeCommit = func() { time.Sleep(time.Duration(rand.IntN(4)) * time.Millisecond) }
	}
	var done atomic.Bool
	var writing sync.WaitGroup
	created := make(chan string, writers*2*sets*perSet)
	errs := make(chan error, writers*2+pullers)
	for w, s := range stores {
		p := storetest.NewPushService(s, clock)
		for d := range 2 {
			writing.Add(1)
			go func() {
				defer writing.Done()
				dev := storetest.NewDevice(fmt.Sprintf("worker%d.%d", w, d))
				for range sets {
					var changes []syncproto.Change
					var ids []string
					for range perSet {
						id := uuid.NewString()
						ids = append(ids, id)
						changes = append(changes, storetest.RegisteredHousehold(id, storetest.SouthVillage, "R-"+id, storetest.T0))
					}
					if _, err := p.Push(context.Background(), dev.Actor, dev.Changeset(changes...)); err != nil {
						errs <- fmt.Errorf("push: %w", err)
						return
					}
					for _, id := range ids {
						created <- id
					}
				}
			}()
		}
	}
	seen := make([]map[string]int, pullers)
	var pulling sync.WaitGroup
	for i := range pullers {
		seen[i] = map[string]int{}
		pulling.Add(1)
		go func() {
			defer pulling.Done()
			s := stores[i%len(stores)]
			var cur syncproto.Cursor
			for {
				finished := done.Load() // read before the pull: a pull after the last commit follows
				page, err := s.Pull(context.Background(), storetest.All, cur, 7)
				if err != nil {
					errs <- fmt.Errorf("pull: %w", err)
					return
				}
				for _, r := range page.Records {
					seen[i][r.ID]++
				}
				if page.Cursor.Seq < cur.Seq {
					errs <- fmt.Errorf("puller %d: the cursor went back from %d to %d", i, cur.Seq, page.Cursor.Seq)
					return
				}
				cur = page.Cursor
				if finished && !page.HasMore {
					return
				}
			}
		}()
	}
	writing.Wait()
	done.Store(true)
	pulling.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	close(created)
	var all []string
	for id := range created {
		all = append(all, id)
	}
	if len(all) != writers*2*sets*perSet {
		t.Fatalf("%d households acknowledged, want %d", len(all), writers*2*sets*perSet)
	}
	for i, got := range seen {
		missing, twice := 0, 0
		for _, id := range all {
			switch seen[i][id] {
			case 0:
				missing++
			case 1:
			default:
				twice++
			}
		}
		if missing > 0 || twice > 0 || len(got) != len(all) {
			t.Errorf("puller %d: %d of %d households never pulled, %d pulled more than once, %d ids pulled",
				i, missing, len(all), twice, len(got))
		}
	}
}

// TestConcurrentEditsOfOneRecordLoseNothing: tablets on several instances
// edit one household at once, each from the version they all pulled.
// Every edit is merged (none is lost, none overwrites another unseen): the
// record ends at one version per edit, its history numbers them 1…n+1, and
// each tablet's field holds its value.
func TestConcurrentEditsOfOneRecordLoseNothing(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	stores := instances(t, 4, clock)
	hh := uuid.NewString()
	storetest.NewDevice("creator").Push(t, storetest.NewPushService(stores[0], clock),
		storetest.Household(hh, storetest.SouthVillage, storetest.T0))
	edits := []map[string]any{{"members": 7}, {"head_name": "谭明华"}, {"registration_no": "CQ-77"}, {"status": "lifted_out"}}
	var wg sync.WaitGroup
	errs := make(chan error, len(edits))
	for i, fields := range edits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := storetest.NewDevice(fmt.Sprintf("editor%d", i))
			p := storetest.NewPushService(stores[i%len(stores)], clock)
			resp, err := p.Push(context.Background(), dev.Actor,
				dev.Changeset(storetest.Upsert("household", hh, 1, storetest.T0.Add(time.Minute), fields)))
			if err != nil {
				errs <- err
				return
			}
			if st := resp.Results[0].Status; st != syncproto.StatusApplied && st != syncproto.StatusMerged {
				errs <- fmt.Errorf("edit %d: %s", i, st)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rec := storetest.MustRecord(t, stores[1], hh)
	if rec.Version != int64(1+len(edits)) {
		t.Errorf("version %d after %d edits of version 1, want %d", rec.Version, len(edits), 1+len(edits))
	}
	for _, fields := range edits {
		for k, v := range fields {
			want := fmt.Sprint(v)
			if k != "members" {
				want = fmt.Sprintf("%q", v)
			}
			if got := string(rec.Fields[k]); got != want {
				t.Errorf("%s = %s, want %s: an edit was lost", k, got, want)
			}
		}
	}
	hist, err := stores[2].History(context.Background(), hh)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range hist {
		if e.Version != int64(i+1) {
			t.Fatalf("history versions %v: not 1…%d", versions(hist), 1+len(edits))
		}
	}
	if len(hist) != 1+len(edits) {
		t.Fatalf("history versions %v: not 1…%d", versions(hist), 1+len(edits))
	}
}

func versions(h []syncproto.LogEntry) []int64 {
	var out []int64
	for _, e := range h {
		out = append(out, e.Version)
	}
	return out
}

// TestSameChangesetOnTwoInstancesAppliesOnce: a tablet that times out and
// retries through another instance while the first is still applying
// sends the same change set twice at once. It is applied once; the other
// answer is the replay of the first, never an error.
func TestSameChangesetOnTwoInstancesAppliesOnce(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	stores := instances(t, 2, clock)
	for _, s := range stores {
		s.beforeCommit = func() { time.Sleep(2 * time.Millisecond) }
	}
	for round := range 5 {
		dev := storetest.NewDevice(fmt.Sprintf("tablet%d", round))
		hh := uuid.NewString()
		cs := dev.Changeset(storetest.Household(hh, storetest.NorthVillage, storetest.T0))
		answers := make([]syncproto.PushResponse, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i], errs[i] = storetest.NewPushService(s, clock).Push(context.Background(), dev.Actor, cs)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if answers[0].Replayed == answers[1].Replayed {
			t.Fatalf("round %d: replayed %v and %v, want exactly one replay", round, answers[0].Replayed, answers[1].Replayed)
		}
		hist, err := stores[0].History(context.Background(), hh)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 1 {
			t.Fatalf("round %d: %d versions of the household, want 1", round, len(hist))
		}
	}
}

// TestDurableCommitSettings: every connection of the store commits with
// synchronous_commit on, even on a database whose default turns it off
// (an acknowledged change set is on disk before the answer).
func TestDurableCommitSettings(t *testing.T) {
	ctx := context.Background()
	url := pgtest.DB(t)
	clock := storetest.NewClock(storetest.T0)
	first := mustOpenURL(t, url, clock)
	if _, err := first.pool.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	s := mustOpenURL(t, url, clock)
	var setting string
	if err := s.pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&setting); err != nil {
		t.Fatal(err)
	}
	if setting != "on" {
		t.Fatalf("synchronous_commit = %s on the store's connections, want on", setting)
	}
	var inWrite string
	err := s.write(ctx, "test", func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&inWrite)
	})
	if err != nil || inWrite != "on" {
		t.Fatalf("synchronous_commit in a write = %q (%v), want on", inWrite, err)
	}
}
