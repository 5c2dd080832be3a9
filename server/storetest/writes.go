package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/syncproto"
)

// The contract of the store's write primitives (WritePush, WriteReplay,
// WriteSupervision), tested directly rather than through the services, so
// that a store cannot pass the suite while breaking a promise the services
// do not happen to exercise. A write is made observable by saving a
// receipt in it (PushTx.SaveReceipt) and asking ReceiptOf for it after.

// receipt returns a receipt of a change set of its own.
func receipt() syncproto.Receipt {
	return syncproto.Receipt{ChangesetID: uuid.NewString(), DeviceID: uuid.NewString(), DeviceSeq: 1, UserID: "w",
		ContentHash: "h", Response: []byte(`{}`), ReceivedAt: T0}
}

// kept reports whether the receipt of changesetID is stored.
func kept(t *testing.T, s syncproto.Store, changesetID string) bool {
	t.Helper()
	_, err := s.ReceiptOf(context.Background(), changesetID)
	switch {
	case err == nil:
		return true
	case syncproto.ErrorCode(err) == syncproto.ENotFound:
		return false
	default:
		t.Fatalf("receipt of %s: %v", changesetID, err)
		return false
	}
}

// errRefused is a domain refusal returned by a write's fn.
var errRefused = syncproto.Errorf(syncproto.EConflict, "refused by the test")

// errBroken is a failure that is not a domain refusal.
var errBroken = errors.New("broken by the test")

// writers are the store's write primitives, each run with one fn over a
// PushTx, so that a promise they share is tested once for all three.
var writers = []struct {
	name  string
	write func(ctx context.Context, s syncproto.Store, fn func(context.Context, syncproto.PushTx) error) error
	// setsFailAlone: a refusal (*Error) rolls back the one set and the
	// write goes on and returns nil (WriteReplay: the service reports it).
	setsFailAlone bool
}{
	{name: "WritePush", write: func(ctx context.Context, s syncproto.Store, fn func(context.Context, syncproto.PushTx) error) error {
		return s.WritePush(ctx, 1, fn)
	}},
	{name: "WriteReplay", setsFailAlone: true, write: func(ctx context.Context, s syncproto.Store, fn func(context.Context, syncproto.PushTx) error) error {
		return s.WriteReplay(ctx, 1, func(ctx context.Context, tx syncproto.ReplayTx, _ int) error { return fn(ctx, tx) })
	}},
	{name: "WriteSupervision", write: func(ctx context.Context, s syncproto.Store, fn func(context.Context, syncproto.PushTx) error) error {
		return s.WriteSupervision(ctx, "test", func(ctx context.Context, tx syncproto.SuperviseTx) error { return fn(ctx, tx) })
	}},
}

// testWriteKeepsNothingOfAFailedFn: what fn wrote before it failed is not
// kept, by any of the three writes, whether fn failed with a domain
// refusal or otherwise, and the write returns fn's error (but WriteReplay
// for a refusal, which it reports through the service: nil); what a
// successful fn wrote is kept.
func testWriteKeepsNothingOfAFailedFn(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	ctx := context.Background()
	for _, w := range writers {
		for _, fail := range []error{errRefused, errBroken} {
			r := receipt()
			err := w.write(ctx, s, func(ctx context.Context, tx syncproto.PushTx) error {
				if err := tx.SaveReceipt(ctx, r); err != nil {
					return err
				}
				return fail
			})
			want := fail
			if w.setsFailAlone && fail == errRefused {
				want = nil
			}
			if !errors.Is(err, want) {
				t.Fatalf("%s: fn failed with %v, the write returned %v", w.name, fail, err)
			}
			if kept(t, s, r.ChangesetID) {
				t.Fatalf("%s: a write whose fn failed (%v) kept what fn wrote", w.name, fail)
			}
		}
		r := receipt()
		if err := w.write(ctx, s, func(ctx context.Context, tx syncproto.PushTx) error { return tx.SaveReceipt(ctx, r) }); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if !kept(t, s, r.ChangesetID) {
			t.Fatalf("%s: a successful write was not kept", w.name)
		}
	}
}

// testWriteOutlivesTheCaller: a caller that goes away while its write runs
// does not cancel it: fn's context is not done, fn's writes with it
// succeed, and they are kept.
func testWriteOutlivesTheCaller(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	for _, w := range writers {
		ctx, cancel := context.WithCancel(context.Background())
		r := receipt()
		err := w.write(ctx, s, func(ctx context.Context, tx syncproto.PushTx) error {
			cancel() // the caller goes away
			if err := ctx.Err(); err != nil {
				return errors.Join(errBroken, err)
			}
			return tx.SaveReceipt(ctx, r)
		})
		cancel()
		if err != nil {
			t.Fatalf("%s: the caller's going away failed the write: %v", w.name, err)
		}
		if !kept(t, s, r.ChangesetID) {
			t.Fatalf("%s: the write of a caller that went away was not kept", w.name)
		}
	}
}

// testWritesAfterCloseAreUnavailable: once the store is closed, each write
// refuses with EUnavailable and does not call fn. (The suite closes the
// store itself here: closing it again when the test ends must be
// harmless.)
func testWritesAfterCloseAreUnavailable(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, w := range writers {
		called := false
		err := w.write(context.Background(), s, func(context.Context, syncproto.PushTx) error {
			called = true
			return nil
		})
		if called || syncproto.ErrorCode(err) != syncproto.EUnavailable {
			t.Fatalf("%s after Close: fn called %v, error %v (want EUnavailable)", w.name, called, err)
		}
	}
}

// testFailingPushFailsAlone: of change sets written at the same time (so
// that a store that groups them, as SQLite's group commit does, groups
// them), the one whose fn fails keeps nothing and gets its error, and the
// others are kept and succeed.
func testFailingPushFailsAlone(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	const n = 16
	receipts := make([]syncproto.Receipt, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range receipts {
		receipts[i] = receipt()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.WritePush(context.Background(), 1, func(ctx context.Context, tx syncproto.PushTx) error {
				if err := tx.SaveReceipt(ctx, receipts[i]); err != nil {
					return err
				}
				if i == n/2 {
					return errRefused
				}
				return nil
			})
		}()
	}
	close(start)
	wg.Wait()
	for i, r := range receipts {
		switch {
		case i == n/2 && (!errors.Is(errs[i], errRefused) || kept(t, s, r.ChangesetID)):
			t.Fatalf("the failing change set: error %v, kept %v", errs[i], kept(t, s, r.ChangesetID))
		case i != n/2 && (errs[i] != nil || !kept(t, s, r.ChangesetID)):
			t.Fatalf("change set %d beside a failing one: error %v, kept %v", i, errs[i], kept(t, s, r.ChangesetID))
		}
	}
}

// testReplaySetsFailAlone: a replay's change set refused with an *Error is
// rolled back alone and the others are kept, each set in its own
// savepoint; a failure that is not an *Error keeps nothing of the replay
// and is returned.
func testReplaySetsFailAlone(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	ctx := context.Background()
	for _, fail := range []error{errRefused, errBroken} {
		receipts := []syncproto.Receipt{receipt(), receipt(), receipt()}
		var calls []int
		err := s.WriteReplay(ctx, len(receipts), func(ctx context.Context, tx syncproto.ReplayTx, i int) error {
			calls = append(calls, i)
			if err := tx.SaveReceipt(ctx, receipts[i]); err != nil {
				return err
			}
			if i == 1 {
				return fail
			}
			return nil
		})
		if fail == errRefused {
			if err != nil || len(calls) != 3 || !kept(t, s, receipts[0].ChangesetID) || kept(t, s, receipts[1].ChangesetID) ||
				!kept(t, s, receipts[2].ChangesetID) {
				t.Fatalf("a refused set among others: error %v, calls %v, kept %v %v %v", err, calls,
					kept(t, s, receipts[0].ChangesetID), kept(t, s, receipts[1].ChangesetID), kept(t, s, receipts[2].ChangesetID))
			}
			continue
		}
		if !errors.Is(err, errBroken) || kept(t, s, receipts[0].ChangesetID) || kept(t, s, receipts[1].ChangesetID) {
			t.Fatalf("a failure that is not a refusal: error %v, kept %v %v", err,
				kept(t, s, receipts[0].ChangesetID), kept(t, s, receipts[1].ChangesetID))
		}
	}
}
