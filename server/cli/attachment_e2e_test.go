package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/storetest"
)

// TestAttachmentKilledServerDuringUpload SIGKILLs the real binary while a
// tablet uploads a photo, again and again. After each restart the server
// holds either nothing of it or a partial to resume from — never a file
// that claims to be whole and is not — and the upload resumes and ends
// with the photo stored exactly.
func TestAttachmentKilledServerDuringUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end crash test")
	}
	dataDir := t.TempDir()
	cli(t, "worker-password\n", "user", "add", "--create", "--data", dataDir, "--name", "worker", "--role", "field_worker", "--scope", "500240")
	const kills = 6
	var photos [][]byte
	var hashes []string
	for i := range kills + 1 {
		photo, hash := apitest.PhotoPNG(t, 71+uint64(i), 600) // about 1.4 MB
		photos, hashes = append(photos, photo), append(hashes, hash)
	}
	device := uuid.NewString()
	rng := rand.New(rand.NewPCG(71, 1))
	store := filepath.Join(dataDir, AttachmentsDir)
	cur, sawPartial := 0, 0 // the photo being uploaded; restarts that found a partial of it
	for round := 0; ; round++ {
		p := startBinary(t, dataDir)
		pc := apitest.NewPhotoClient(p.url, httpLogin(t, p.url, "worker", "worker-password", device), apitest.HTTPClient)
		// On disk, a whole photo only if it is the photo, and then HEAD
		// says complete; the photos finished in earlier rounds are whole.
		mustOnlyWholePhotos(t, store)
		var offset int64
		for i := 0; i <= cur; i++ {
			held, complete := pc.Status(t, hashes[i])
			_, err := os.Stat(attachments.PhotoPath(store, hashes[i]))
			if complete != (err == nil) || (complete && held != int64(len(photos[i]))) || (i < cur && !complete) {
				t.Fatalf("round %d, photo %d: HEAD %d complete %v, file: %v", round, i, held, complete, err)
			}
			if i == cur {
				offset = held
				if complete {
					cur++ // stored before the kill: go on with the next photo
					offset = 0
				} else if held > 0 {
					sawPartial++
				}
			}
		}
		photo, hash, total := photos[cur], hashes[cur], int64(len(photos[cur]))
		if round == kills {
			if status := pc.Upload(t, hash, photo, 256<<10); status != http.StatusCreated {
				t.Fatalf("the last upload: %d", status)
			}
			if b, err := os.ReadFile(attachments.PhotoPath(store, hash)); err != nil || !bytes.Equal(b, photo) {
				t.Fatalf("the stored photo is not the photo (%v)", err)
			}
			if sawPartial == 0 {
				t.Fatal("no kill left a partial upload: the test did not test resuming")
			}
			t.Logf("%d kills during uploads; %d restarts resumed a partial, %d photos were stored before their kill", kills, sawPartial, cur)
			return
		}
		// Send the rest slowly, in 512 KiB chunks, and kill the server at
		// a random moment.
		done := make(chan struct{})
		go func() {
			defer close(done)
			for offset < total {
				end := min(offset+512<<10, total)
				resp, _, err := pc.Put(hash, offset, total, &slowReader{r: bytes.NewReader(photo[offset:end])}, end-offset)
				if err != nil || resp.StatusCode != http.StatusNoContent {
					return
				}
				offset = end
			}
		}()
		time.Sleep(time.Duration(30+rng.IntN(300)) * time.Millisecond)
		p.kill(t)
		<-done
	}
}

// slowReader hands out its bytes 8 KiB at a time with a pause, as a
// village link does.
type slowReader struct {
	r io.Reader
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return s.r.Read(p[:min(len(p), 8<<10)])
}

// mustOnlyWholePhotos checks every file of a store directory outside
// partial/: each must be a photo whose bytes hash to its name, at its
// place.
func mustOnlyWholePhotos(tb testing.TB, dir string) {
	tb.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if d != nil && d.IsDir() && d.Name() == "partial" {
				return filepath.SkipDir
			}
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if h := apitest.Digest(b); attachments.PhotoPath(dir, h) != path {
			tb.Fatalf("%s is not a whole photo at its place (its digest is %s)", path, h)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// TestAttachmentBackupIncludesPhotos: fieldsync backup copies the whole
// photos (not the partial uploads) beside the database, and restore puts
// them back, checked, so that the restored server serves them.
func TestAttachmentBackupIncludesPhotos(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end backup test")
	}
	dataDir := t.TempDir()
	cli(t, "worker-password\n", "user", "add", "--create", "--data", dataDir, "--name", "worker", "--role", "field_worker", "--scope", "500240")
	p := startBinary(t, dataDir)
	tablet := storetest.NewDevice("tablet")
	token := httpLogin(t, p.url, "worker", "worker-password", tablet.Actor.DeviceID)
	pc := apitest.NewPhotoClient(p.url, token, apitest.HTTPClient)
	one, oneHash := apitest.PhotoPNG(t, 81, 80)
	two, twoHash := apitest.PhotoPNG(t, 82, 80)
	three, threeHash := apitest.PhotoPNG(t, 83, 80)
	pc.Upload(t, oneHash, one, 1<<20)
	pc.Upload(t, twoHash, two, 1<<20)
	if resp, _, err := pc.Put(threeHash, 0, int64(len(three)), bytes.NewReader(three[:1000]), 1000); err != nil || resp.StatusCode != 204 {
		t.Fatalf("partial upload: %v", err)
	}
	hh := uuid.NewString()
	if _, status, err := postPush(p.url, token, tablet.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0),
		apitest.SouthHousing(uuid.NewString(), hh, oneHash, twoHash))); err != nil || status != 200 {
		t.Fatalf("push: %d %v", status, err)
	}

	out := filepath.Join(t.TempDir(), "backup.db")
	printed := cli(t, "", "backup", "--data", dataDir, "--out", out, "--keys")
	if !strings.Contains(printed, "photos: 2 ") {
		t.Fatalf("backup output does not count the photos:\n%s", printed)
	}
	var copied []string
	if err := attachments.WalkPhotos(out+".attachments", func(hash, path string, size int64) error {
		b, err := os.ReadFile(path)
		if err != nil || apitest.Digest(b) != hash {
			t.Fatalf("backup photo %s: %v", path, err)
		}
		copied = append(copied, hash)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(copied) != 2 {
		t.Fatalf("backup holds photos %v, want the 2 whole ones", copied)
	}
	if _, err := os.Stat(filepath.Join(out+".attachments", "partial")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("backup holds partial uploads: %v", err)
	}
	p.kill(t)

	restored := t.TempDir()
	printed = cli(t, "", "restore", "--data", restored, "--from", out)
	if !strings.Contains(printed, "photos: 2 restored") {
		t.Fatalf("restore output does not count the photos:\n%s", printed)
	}
	r := startBinary(t, restored)
	rc := apitest.NewPhotoClient(r.url, token, apitest.HTTPClient)
	for hash, want := range map[string][]byte{oneHash: one, twoHash: two} {
		resp, body := rc.Get(t, hash, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Fatalf("restored server GET %s…: %d", hash[:8], resp.StatusCode)
		}
	}
	if offset, _ := rc.Status(t, threeHash); offset != 0 {
		t.Fatalf("a partial upload was restored: %d", offset)
	}
	r.kill(t)

	// A backup without photos, and a restore of a damaged photo: the
	// photo is refused, the rest restored.
	noPhotos := filepath.Join(t.TempDir(), "db-only.db")
	cli(t, "", "backup", "--data", dataDir, "--out", noPhotos, "--attachments=false")
	if _, err := os.Stat(noPhotos + ".attachments"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("--attachments=false copied photos: %v", err)
	}
	damaged := attachments.PhotoPath(out+".attachments", twoHash)
	b, _ := os.ReadFile(damaged)
	b[len(b)/2] ^= 1
	if err := os.WriteFile(damaged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	again := t.TempDir()
	cmd := cliOutput(t, "restore", "--data", again, "--from", out)
	if !strings.Contains(cmd, "photos: 1 restored") || !strings.Contains(cmd, twoHash) {
		t.Fatalf("restore of a damaged photo:\n%s", cmd)
	}
	if _, err := os.Stat(attachments.PhotoPath(filepath.Join(again, AttachmentsDir), twoHash)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a damaged photo was restored: %v", err)
	}
	if b, err := os.ReadFile(attachments.PhotoPath(filepath.Join(again, AttachmentsDir), oneHash)); err != nil || !bytes.Equal(b, one) {
		t.Fatalf("the intact photo was not restored: %v", err)
	}
}

// cliOutput runs the fieldsync binary and returns what it printed,
// whether or not it succeeded.
func cliOutput(tb testing.TB, args ...string) string {
	tb.Helper()
	out, _ := exec.CommandContext(context.Background(), fieldsyncBinary(tb), args...).CombinedOutput()
	return string(out)
}
