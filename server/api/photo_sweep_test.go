package api_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestAskingAboutAPhotoKeepsNothingFromTheSweep: a caller who cannot read
// a photo (they know its digest only) asks HEAD and /missing about it just
// before the sweep; asking starts no re-upload, so the photo, which no
// record references, is removed all the same.
func TestAskingAboutAPhotoKeepsNothingFromTheSweep(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "bao.yin", syncproto.RoleFieldWorker, "150422103")
	photo, hash := apitest.PhotoPNG(t, 301, 30)
	ts.PhotoClient(t, "admin", apitest.AdminDevice).Upload(t, hash, photo, 1<<20)

	ts.Clock.Advance(attachments.DefaultUnreferencedPhotoAge + 24*time.Hour)
	now := ts.Clock.Now()
	old := storetest.T0.Add(-time.Hour)
	if err := os.Chtimes(attachments.PhotoPath(ts.Photos.Dir(), hash), old, old); err != nil {
		t.Fatal(err)
	}
	north := ts.PhotoClient(t, "bao.yin", uuid.NewString())
	if offset, complete := north.Status(t, hash); offset != 0 || complete {
		t.Fatalf("HEAD by a caller who cannot read: offset %d, complete %v", offset, complete)
	}
	if got := north.AskMissing(t, hash); len(got) != 1 {
		t.Fatalf("missing for a caller who cannot read: %v", got)
	}
	removed, _, err := ts.Photos.SweepUnreferenced(context.Background(), ts.Store, attachments.DefaultUnreferencedPhotoAge, now)
	if err != nil || removed != 1 {
		t.Fatalf("sweep after a HEAD and a /missing of a stranger: removed %d, %v; want the photo removed", removed, err)
	}
}
