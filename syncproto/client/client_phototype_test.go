package client_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// TestClientRefusesANonImagePhoto: a file that is no JPEG, PNG, WebP or
// HEIC/HEIF is refused when it is added (ErrNotAPhoto), before any record
// names it, and nothing is kept (fieldsync device photo: server/cli).
func TestClientRefusesANonImagePhoto(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	photoDir := filepath.Join(t.TempDir(), "photos")
	tab := apitest.NewTablet(t, ts, "worker", client.Options{PhotoDir: photoDir})
	ctx := context.Background()
	for _, b := range [][]byte{[]byte("%PDF-1.7 a report, not a photo"), bytes.Repeat([]byte("not an image "), 100)} {
		if _, err := tab.AddPhoto(ctx, bytes.NewReader(b)); !errors.Is(err, client.ErrNotAPhoto) {
			t.Fatalf("%.10q: %v, want ErrNotAPhoto", b, err)
		}
	}
	if entries, _ := os.ReadDir(photoDir); len(entries) != 0 {
		t.Fatalf("refused photos were kept: %v", entries)
	}
	if _, err := tab.AddPhoto(ctx, bytes.NewReader(apitest.TestPNG(t, 8, 1))); err != nil {
		t.Fatalf("a PNG: %v", err)
	}

}
