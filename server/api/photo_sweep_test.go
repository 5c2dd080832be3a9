package api

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestAskingAboutAPhotoKeepsNothingFromTheSweep: a caller who cannot read
// a photo (they know its digest only) asks HEAD and /missing about it just
// before the sweep; asking starts no re-upload, so the photo, which no
// record references, is removed all the same.
func TestAskingAboutAPhotoKeepsNothingFromTheSweep(t *testing.T) {
	ts := mustServe(t)
	ts.addUser(t, "bao.yin", syncproto.RoleFieldWorker, "150422103")
	photo, hash := photoPNG(t, 301, 30)
	ts.photoClient(t, "admin", adminDevice).upload(t, hash, photo, 1<<20)

	ts.clock.Advance(DefaultUnreferencedPhotoAge + 24*time.Hour)
	now := ts.clock.Now()
	old := storetest.T0.Add(-time.Hour)
	if err := os.Chtimes(attachments.PhotoPath(ts.photos.Dir(), hash), old, old); err != nil {
		t.Fatal(err)
	}
	north := ts.photoClient(t, "bao.yin", uuid.NewString())
	if offset, complete := north.status(t, hash); offset != 0 || complete {
		t.Fatalf("HEAD by a caller who cannot read: offset %d, complete %v", offset, complete)
	}
	if got := north.askMissing(t, hash); len(got) != 1 {
		t.Fatalf("missing for a caller who cannot read: %v", got)
	}
	removed, _, err := sweepUnreferencedPhotos(context.Background(), ts.store, ts.photos, DefaultUnreferencedPhotoAge, now)
	if err != nil || removed != 1 {
		t.Fatalf("sweep after a HEAD and a /missing of a stranger: removed %d, %v; want the photo removed", removed, err)
	}
}
