package sqlite

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestPhotoSweepExcludesPushes interleaves a push between the sweep's
// check that a photo is unreferenced and its removal: the push, which
// adds a reference to the photo, must not commit before the removal is
// over (it waits for the writer connection), so that it never lands
// between the check and the removal. The test does not wait on a clock:
// the push is started at the hook and the sweep goes on once the push has
// either committed or is queued for the writer (database/sql's WaitCount).
func TestPhotoSweepExcludesPushes(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	dev := storetest.NewDevice("admin")
	hh := uuid.NewString()
	dev.Push(t, pushes(s), storetest.Household(hh, storetest.SouthVillage, storetest.T0))
	hash := strings.Repeat("e5", 32)
	housing := storetest.HousingInspection(uuid.NewString(), hh, "C", storetest.T0)
	housing.Fields[syncproto.PhotosField] = json.RawMessage(`["` + hash + `"]`)

	var pushed atomic.Bool
	done := make(chan error, 1)
	s.beforePhotoRemoval = func(h string) {
		waits := s.writer.Stats().WaitCount
		go func() {
			resp, err := pushes(s).Push(ctx, dev.Actor, dev.Changeset(housing))
			if err == nil && resp.Results[0].Status != syncproto.StatusApplied {
				t.Errorf("the push: %+v", resp.Results[0])
			}
			pushed.Store(true)
			done <- err
		}()
		for !pushed.Load() && s.writer.Stats().WaitCount == waits {
			time.Sleep(time.Millisecond)
		}
	}
	removedWhilePushed := false
	removed, err := s.RemoveUnreferencedPhotos(ctx, []string{hash}, storetest.T0, func(h string) (bool, error) {
		removedWhilePushed = pushed.Load()
		return true, nil
	})
	if err != nil || len(removed) != 1 {
		t.Fatalf("the sweep: %v, %v", removed, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if removedWhilePushed {
		t.Fatal("a push committed a reference between the sweep's check and the removal: the photo was removed under it")
	}
	// The push landed after the removal; the reference now keeps the
	// photo (a re-upload) from every later sweep.
	s.beforePhotoRemoval = nil
	removed, err = s.RemoveUnreferencedPhotos(ctx, []string{hash}, storetest.T0, func(string) (bool, error) { return true, nil })
	if err != nil || len(removed) != 0 {
		t.Fatalf("a referenced photo offered to the sweep: %v, %v", removed, err)
	}
}
