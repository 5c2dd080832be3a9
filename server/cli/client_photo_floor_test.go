package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// stop ends the server gracefully (SIGTERM) and waits for it.
func (p *process) stop(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		tb.Fatal("the server did not stop on SIGTERM")
	}
}

// downloadAs fetches a photo with token: its status and bytes.
func downloadAs(tb testing.TB, url, token, hash string) (int, []byte) {
	tb.Helper()
	resp, err := apitest.Authed(http.MethodGet, url+"/v1/attachments/"+hash, token, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestDeviceSyncPushesWhilePhotosWait, end to end: a server whose
// free-space floor (--min-free-bytes) is above its disk's free space
// refuses photo bytes (507) but takes pushes. The tablet's sync pushes
// its records all the same, keeps the photo queued and says so; another
// tablet of the scope sees the record but may not download the photo (the
// reference grants nothing before its bytes arrive). The server is
// restarted with the floor off: the next sync uploads the photo, with no
// new edit, and from then on the other tablet downloads it. (The old
// client waited on the photo's Retry-After and pushed nothing.)
func TestDeviceSyncPushesWhilePhotosWait(t *testing.T) {
	data := t.TempDir()
	probe := apitest.MustOpenPhotos(t, filepath.Join(t.TempDir(), "probe"), attachments.Options{})
	if free, ok := probe.FreeBytes(); !ok || free >= 1<<62 {
		t.Skipf("free space unknown here (%d, %v)", free, ok)
	}
	for _, u := range []struct{ name, role string }{{"a", "field_worker"}, {"b", "field_worker"}, {"s", "supervisor"}} {
		cli(t, e2ePassword+"\n", "user", "add", "--create", "--data", data, "--name", u.name, "--role", u.role, "--scope", "500240107")
	}
	srv := startBinary(t, data, "--min-free-bytes", "4611686018427387904") // 2^62 bytes: more than any disk has
	addr := strings.TrimPrefix(srv.url, "http://")

	// Tablet a, at the command line, with a record and its photo.
	tab := t.TempDir()
	cli(t, e2ePassword+"\n", "device", "login", "--dir", tab, "--server", srv.url, "--user", "a")
	ctx := context.Background()
	c, err := client.Open(filepath.Join(tab, "device.db"), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	photo := apitest.TestPNG(t, 60, 9)
	hash, err := c.AddPhoto(ctx, bytes.NewReader(photo))
	if err != nil {
		t.Fatal(err)
	}
	fields := func(ch syncproto.Change) client.Fields {
		f := client.Fields{}
		for k, v := range ch.Fields {
			f[k] = v
		}
		return f
	}
	// The tablet speaks the latest forms: version 3's key groups.
	household := fields(storetest.Household("", storetest.SouthVillage, storetest.T0))
	delete(household, "category")
	household["categories"] = []string{"registered_poor"}
	hh, err := c.Create(ctx, "household", household)
	if err != nil {
		t.Fatal(err)
	}
	ins := fields(storetest.HousingInspection("", hh, "C", storetest.T0))
	ins["photos"] = []string{hash}
	inspection, err := c.Create(ctx, "housing_inspection", ins)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	out := cli(t, "", "device", "sync", "--dir", tab, "--timeout", "20s")
	if !strings.Contains(out, "pushed 1 change sets (2 changes)") || !strings.Contains(out, "1 photos wait on this device") ||
		!strings.Contains(out, "507") {
		t.Fatalf("device sync below the floor:\n%s", out)
	}
	if status := cli(t, "", "device", "status", "--dir", tab); !strings.Contains(status, "pending changes     0") ||
		!strings.Contains(status, "of them waiting") {
		t.Fatalf("device status below the floor:\n%s", status)
	}

	// The inspection is on the server; tablet b may not download its photo.
	other := httpLogin(t, srv.url, "b", e2ePassword, uuid.NewString())
	if !recordExists(t, srv.url, httpLogin(t, srv.url, "s", e2ePassword, uuid.NewString()), "housing_inspection", inspection) {
		t.Fatal("the inspection pushed below the floor is not on the server")
	}
	if status, _ := downloadAs(t, srv.url, other, hash); status != http.StatusNotFound {
		t.Fatalf("download before the photo's bytes arrived: %d, want 404 (a pending reference, nothing held)", status)
	}

	// The floor lowered (a restart with --min-free-bytes 0, on the same
	// address): the next sync sends the photo, and its reference grants.
	srv.stop(t)
	srv = startBinary(t, data, "--addr", addr, "--min-free-bytes", "0")
	out = cli(t, "", "device", "sync", "--dir", tab, "--timeout", "20s")
	if !strings.Contains(out, "pushed 0 change sets (0 changes, 1 photos uploaded)") || strings.Contains(out, "wait") {
		t.Fatalf("device sync above the floor:\n%s", out)
	}
	if status, got := downloadAs(t, srv.url, other, hash); status != http.StatusOK || !bytes.Equal(got, photo) {
		t.Fatalf("download after the upload: %d, %d bytes (want 200, %d)", status, len(got), len(photo))
	}
	if status := cli(t, "", "device", "status", "--dir", tab); !strings.Contains(status, "photos to upload    0") {
		t.Fatalf("device status after the upload:\n%s", status)
	}
}

// TestClientPushesWhilePhotosAreOverQuota: a photo the server refuses
// with 429 (over the user's hourly photo bytes) waits on the tablet while
// the change that references it is pushed; the sync says so
// (Report.PhotosWaiting, with the server's answer). An hour later the next
// sync sends it without any new edit, and the server serves it.
func TestClientPushesWhilePhotosAreOverQuota(t *testing.T) {
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) {
		cfg.Attachments = apitest.MustOpenPhotos(t, filepath.Join(t.TempDir(), AttachmentsDir), attachments.Options{
			MaxBytes: 80 << 10, UserHourlyBytes: 100 << 10, MinFreeBytes: -1, Now: cfg.Now})
	})
	ts.AddUser(t, "a", syncproto.RoleFieldWorker, "500240107")
	_, ins := apitest.SeedHousehold(t, ts)
	ctx := context.Background()
	a := apitest.NewTablet(t, ts, "a", client.Options{})
	apitest.MustSync(t, a)
	first, second := apitest.TestPNG(t, 120, 1), apitest.TestPNG(t, 120, 2) // ~58 KB each: the second is over the quota
	var hashes []string
	for _, p := range [][]byte{first, second} {
		h, err := a.AddPhoto(ctx, bytes.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	if err := a.Update(ctx, "housing_inspection", ins, client.Fields{"photos": hashes}); err != nil {
		t.Fatal(err)
	}
	rep := apitest.MustSync(t, a)
	if rep.Pushed != 1 || rep.Photos != 1 || rep.PhotosWaiting != 1 || !strings.Contains(rep.PhotosWaitReason, "429") {
		t.Fatalf("sync over the quota: %+v", rep)
	}
	if got := apitest.StoredRecordPhotos(t, ts, ins); len(got) != 2 {
		t.Fatalf("the inspection on the server names %v, want both photos", got)
	}
	if st, _ := a.Status(ctx); st.Pending != 0 || st.PhotosPending != 1 || st.PhotosWaiting != 1 {
		t.Fatalf("status over the quota: %+v", st)
	}

	ts.Clock.Advance(time.Hour)
	if rep := apitest.MustSync(t, a); rep.Photos != 1 || rep.PhotosWaiting != 0 || rep.Pushed != 0 {
		t.Fatalf("sync an hour later: %+v", rep)
	}
	admin := ts.Login(t, "admin", uuid.NewString()) // a new login: the clock moved past the first token
	for i, p := range [][]byte{first, second} {
		if resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/attachments/"+hashes[i], "", nil); resp.StatusCode != 200 || !bytes.Equal(body, p) {
			t.Fatalf("photo %d on the server: %d, %d bytes", i, resp.StatusCode, len(body))
		}
	}
	if st, _ := a.Status(ctx); st.PhotosPending != 0 || st.PhotosWaiting != 0 {
		t.Fatalf("status after the upload: %+v", st)
	}
}
