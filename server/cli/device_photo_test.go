package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestDevicePhotoRefusesANonImage: fieldsync device photo refuses a file
// that is no JPEG, PNG, WebP or HEIC/HEIF, says so and exits non-zero (the
// client's own refusal: syncproto/client, TestClientRefusesANonImagePhoto).
func TestDevicePhotoRefusesANonImage(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")

	tablet := filepath.Join(t.TempDir(), "tablet-a")
	if out, err := runCLI(t, apitest.TestPassword+"\n", "device", "login", "--dir", tablet, "--server", ts.URL, "--user", "worker"); err != nil {
		t.Fatalf("device login: %v\n%s", err, out)
	}
	notes := writeFile(t, t.TempDir(), "notes.jpg", "a text file named like a photo")
	if _, err := runCLI(t, "", "device", "photo", "--dir", tablet, notes); err == nil || !strings.Contains(err.Error(), "not a photo the server takes (JPEG, PNG, WebP or HEIC/HEIF)") {
		t.Fatalf("device photo of a text file: %v", err)
	}

}
