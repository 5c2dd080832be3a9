package client_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// TestClientRefusesANonImagePhoto: a file that is no JPEG, PNG, WebP or
// HEIC/HEIF is refused when it is added (ErrNotAPhoto), before any record
// names it, and nothing is kept; device photo says so and exits non-zero.
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
	if _, err := tab.AddPhoto(ctx, bytes.NewReader(testPNG(t, 8, 1))); err != nil {
		t.Fatalf("a PNG: %v", err)
	}

	tablet := filepath.Join(t.TempDir(), "tablet-a")
	if out, err := runCLI(t, apitest.TestPassword+"\n", "device", "login", "--dir", tablet, "--server", ts.URL, "--user", "worker"); err != nil {
		t.Fatalf("device login: %v\n%s", err, out)
	}
	notes := writeFile(t, t.TempDir(), "notes.jpg", "a text file named like a photo")
	if _, err := runCLI(t, "", "device", "photo", "--dir", tablet, notes); err == nil || !strings.Contains(err.Error(), "not a photo the server takes (JPEG, PNG, WebP or HEIC/HEIF)") {
		t.Fatalf("device photo of a text file: %v", err)
	}
}
