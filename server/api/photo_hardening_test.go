package api_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestPhotoHashAloneGrantsNothing replays the review's finding: a worker
// of another county pushes a record of its own that references a photo
// digest it had seen. The digest grants nothing: the photo is "missing"
// for it, HEAD shows nothing held, and the download is 403, until it
// uploads the bytes themselves; a re-upload of bytes the server holds is
// answered 200, stores nothing and grants from then on; a re-upload with
// other bytes is told only at its last byte.
func TestPhotoHashAloneGrantsNothing(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup.wulong", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "bao.yin", syncproto.RoleFieldWorker, "150422103")
	southDev, northDev := uuid.NewString(), uuid.NewString()
	south := ts.PhotoClient(t, "li.na", southDev)
	sup := ts.PhotoClient(t, "sup.wulong", uuid.NewString())
	north := ts.PhotoClient(t, "bao.yin", northDev)
	photo, hash := apitest.PhotoPNG(t, 71, 80)

	// The honest v1 tablet: asks, uploads what is missing, pushes.
	if got := south.AskMissing(t, hash); len(got) != 1 {
		t.Fatalf("south: missing %v before its upload", got)
	}
	if status := south.Upload(t, hash, photo, 4096); status != http.StatusCreated {
		t.Fatalf("south upload: %d", status)
	}
	hhS := uuid.NewString()
	ts.PushAs(t, south, southDev, 1, storetest.Household(hhS, storetest.SouthVillage, storetest.T0),
		apitest.SouthHousing(uuid.NewString(), hhS, hash))
	if got := south.AskMissing(t, hash); len(got) != 0 {
		t.Fatalf("south: missing %v after its upload", got)
	}
	for name, pc := range map[string]*apitest.PhotoClient{"uploader": south, "supervisor in scope": sup} {
		if resp, body := pc.Get(t, hash, nil); resp.StatusCode != 200 || !bytes.Equal(body, photo) {
			t.Fatalf("%s: GET %d", name, resp.StatusCode)
		}
	}

	// The north worker knows only the digest.
	if got := north.AskMissing(t, hash); len(got) != 1 || got[0] != hash {
		t.Fatalf("north: missing %v, want the photo it cannot read", got)
	}
	if offset, complete := north.Status(t, hash); offset != 0 || complete {
		t.Fatalf("north: HEAD %d %v, want nothing held", offset, complete)
	}
	hhN := uuid.NewString()
	ts.PushAs(t, north, northDev, 1, storetest.Household(hhN, storetest.NorthVillage, storetest.T0),
		apitest.NorthHousing(uuid.NewString(), hhN, hash))
	resp, body := north.Get(t, hash, nil)
	apitest.MustProblem(t, resp, body, http.StatusForbidden)

	// A re-upload with other bytes of the same size: every chunk but the
	// last is taken without a verdict; the last is 422 and grants nothing.
	fake := bytes.Clone(photo)
	fake[len(fake)/2] ^= 0xFF
	total := int64(len(fake))
	half := total / 2
	if resp, body, err := north.Put(hash, 0, total, bytes.NewReader(fake[:half]), half); err != nil || resp.StatusCode != http.StatusNoContent || apitest.UploadOffset(t, resp) != half {
		t.Fatalf("first half of a wrong re-upload: %v %d %s", err, resp.StatusCode, body)
	}
	resp, body, err := north.Put(hash, half, total, bytes.NewReader(fake[half:]), total-half)
	if err != nil {
		t.Fatal(err)
	}
	if p := apitest.MustProblem(t, resp, body, http.StatusUnprocessableEntity); len(p.Errors) != 1 || p.Errors[0].Path != "path.sha256" {
		t.Fatalf("wrong re-upload: %s", body)
	}
	if resp, body := north.Get(t, hash, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after a wrong re-upload: %d %s", resp.StatusCode, body)
	}

	// The bytes themselves: 200 (the server held them), nothing stored.
	before := ts.PhotoStats(t)
	if status := north.Upload(t, hash, photo, 4096); status != http.StatusOK {
		t.Fatalf("north re-upload: %d", status)
	}
	if after := ts.PhotoStats(t); after != before || after.Partials != 0 {
		t.Fatalf("a re-upload changed the store: %+v, before %+v", after, before)
	}
	if resp, body := north.Get(t, hash, nil); resp.StatusCode != 200 || !bytes.Equal(body, photo) {
		t.Fatalf("north after proving possession: %d", resp.StatusCode)
	}
	if got := north.AskMissing(t, hash); len(got) != 0 {
		t.Fatalf("north: missing %v after its re-upload", got)
	}
}

// TestPhotoFloorRefusesUploadsNotPushes: below the free-space floor (set
// here above the test disk's free space) a photo chunk is a 507 with
// Retry-After and nothing is written, while pushes go on.
func TestPhotoFloorRefusesUploadsNotPushes(t *testing.T) {
	var photos *attachments.Store
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) {
		photos = apitest.MustOpenPhotos(t, filepath.Join(t.TempDir(), "attachments"), attachments.Options{MinFreeBytes: 1 << 62})
		cfg.Attachments = photos
	})
	if free, ok := photos.FreeBytes(); !ok || free >= 1<<62 {
		t.Skipf("free space unknown here (%d, %v)", free, ok)
	}
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240107")
	dev := uuid.NewString()
	pc := ts.PhotoClient(t, "li.na", dev)
	photo, hash := apitest.PhotoPNG(t, 72, 40)
	resp, body, err := pc.Put(hash, 0, int64(len(photo)), bytes.NewReader(photo), int64(len(photo)))
	if err != nil {
		t.Fatal(err)
	}
	if p := apitest.MustProblem(t, resp, body, http.StatusInsufficientStorage); p.Type != "/problems/insufficient_storage" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("upload below the floor: %s, Retry-After %q", body, resp.Header.Get("Retry-After"))
	}
	if st, _ := photos.Stats(); st.Photos != 0 || st.Partials != 0 || st.PartialBytes != 0 {
		t.Fatalf("bytes kept below the floor: %+v", st)
	}
	// The push that references the photo is taken all the same.
	hh := uuid.NewString()
	ts.PushAs(t, pc, dev, 1, storetest.Household(hh, storetest.SouthVillage, storetest.T0), apitest.SouthHousing(uuid.NewString(), hh, hash))
}

// TestPhotoQuotasPerUser: one user's unfinished uploads may hold at most
// the partial quota, and one user may send at most the hourly quota; both
// are 429 with Retry-After, and another user is not affected.
func TestPhotoQuotasPerUser(t *testing.T) {
	var clock *storetest.Clock
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) {
		clock = storetest.NewClock(storetest.T0)
		cfg.Attachments = apitest.MustOpenPhotos(t, filepath.Join(t.TempDir(), "attachments"), attachments.Options{MaxBytes: 80 << 10,
			UserPartialBytes: 100 << 10, UserHourlyBytes: 330 << 10, MinFreeBytes: -1, Now: clock.Now})
	})
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "wu.fang", syncproto.RoleFieldWorker, "500240108")
	a := ts.PhotoClient(t, "li.na", uuid.NewString())
	a2 := ts.PhotoClient(t, "li.na", uuid.NewString()) // the same user's second tablet
	b := ts.PhotoClient(t, "wu.fang", uuid.NewString())
	big := func(seed uint64) ([]byte, string) {
		for side := 100; ; side++ {
			p, h := apitest.PhotoPNG(t, seed, side)
			if len(p) > 60<<10 {
				if len(p) > 80<<10 {
					t.Fatalf("test photo of %d bytes", len(p))
				}
				return p, h
			}
		}
	}
	p1, h1 := big(81)
	p2, h2 := big(82)
	// Two unfinished uploads of 60 KiB: the second tablet's first chunk
	// would take the user over 100 KiB.
	if resp, body, err := a.Put(h1, 0, int64(len(p1)), bytes.NewReader(p1[:60<<10]), 60<<10); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("first partial: %v %d %s", err, resp.StatusCode, body)
	}
	resp, body, err := a2.Put(h2, 0, int64(len(p2)), bytes.NewReader(p2[:60<<10]), 60<<10)
	if err != nil {
		t.Fatal(err)
	}
	apitest.MustProblem(t, resp, body, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("partial quota: no Retry-After")
	}
	// Another user is not affected.
	if status := b.Upload(t, h2, p2, 16<<10); status != http.StatusCreated {
		t.Fatalf("another user: %d", status)
	}
	// Finishing the first upload frees the partial quota.
	if status := a.Upload(t, h1, p1, 16<<10); status != http.StatusCreated {
		t.Fatalf("finishing: %d", status)
	}
	// The hourly quota: li.na has sent one photo of 60 to 80 KiB; photos
	// of as much go until 330 KiB, then 429.
	refused := 0
	for i := range 6 {
		p, h := big(90 + uint64(i))
		resp, body, err := a.Put(h, 0, int64(len(p)), bytes.NewReader(p), int64(len(p)))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			refused++
			if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
				t.Fatalf("hourly quota: Retry-After %q", ra)
			}
			continue
		}
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("photo %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if refused < 2 || refused > 3 {
		t.Fatalf("%d of 6 photos refused past the hourly quota, want 2 or 3", refused)
	}
	// An hour later the bucket is full again.
	clock.Advance(time.Hour)
	p, h := big(99)
	if resp, body, err := a.Put(h, 0, int64(len(p)), bytes.NewReader(p), int64(len(p))); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("an hour later: %v %d %s", err, resp.StatusCode, body)
	}
}

// TestUnreferencedPhotosAreRemoved (at an age of 7 days): the sweep removes a photo no record
// references once it is older than the age, and keeps a referenced one
// (a deleted record's too), a recent one, one re-uploaded lately, and one
// dropped by a version lately.
func TestUnreferencedPhotosAreRemoved(t *testing.T) {
	ts := apitest.MustServe(t)
	pc := ts.PhotoClient(t, "admin", apitest.AdminDevice)
	names := []string{"referenced", "deleted", "orphan", "recent", "dropped"}
	photos, hashes := map[string][]byte{}, map[string]string{}
	for i, n := range names {
		photos[n], hashes[n] = apitest.PhotoPNG(t, 100+uint64(i), 30)
	}
	for _, n := range names {
		if n != "recent" {
			pc.Upload(t, hashes[n], photos[n], 1<<20)
		}
	}
	hh, ins, gone := uuid.NewString(), uuid.NewString(), uuid.NewString()
	dev := storetest.NewDevice("admin")
	ts.MustPush(t, dev.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0),
		apitest.SouthHousing(ins, hh, hashes["referenced"], hashes["dropped"]), apitest.SouthHousing(gone, hh, hashes["deleted"])))
	ts.MustPush(t, dev.Changeset(storetest.Delete("housing_inspection", gone, 1, storetest.T0.Add(time.Minute))))

	// Eight days on, every photo file is old but "recent", uploaded now.
	ts.Clock.Advance(8 * 24 * time.Hour)
	now := ts.Clock.Now()
	later8 := uuid.NewString()
	pc = ts.PhotoClient(t, "admin", later8) // the first token expired meanwhile
	old := storetest.T0.Add(-time.Hour)
	for _, n := range names {
		if n != "recent" {
			if err := os.Chtimes(attachments.PhotoPath(ts.Photos.Dir(), hashes[n]), old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	pc.Upload(t, hashes["recent"], photos["recent"], 1<<20)
	if err := os.Chtimes(attachments.PhotoPath(ts.Photos.Dir(), hashes["recent"]), now, now); err != nil {
		t.Fatal(err)
	}
	// A version drops "dropped" now: its age starts again.
	ts.PushAs(t, pc, later8, 1, storetest.Upsert("housing_inspection", ins, 1, now, map[string]any{"photos": []string{hashes["referenced"]}}))

	before := ts.PhotoStats(t)
	removed, n, err := ts.Photos.SweepUnreferenced(context.Background(), ts.Store, 7*24*time.Hour, now)
	if err != nil || removed != 1 || n != int64(len(photos["orphan"])) {
		t.Fatalf("sweep: %d photos, %d bytes, %v; want the orphan (%d bytes)", removed, n, err, len(photos["orphan"]))
	}
	for _, name := range names {
		has, _ := ts.Photos.Has(hashes[name])
		if has != (name != "orphan") {
			t.Errorf("%s: held %v after the sweep", name, has)
		}
	}
	if after := ts.PhotoStats(t); after.Photos != before.Photos-1 || after.Bytes != before.Bytes-n {
		t.Fatalf("stats %+v, before %+v", after, before)
	}
	// Eight days later still, the dropped photo goes too.
	later := now.Add(8 * 24 * time.Hour)
	removed, _, err = ts.Photos.SweepUnreferenced(context.Background(), ts.Store, 7*24*time.Hour, later)
	if err != nil || removed != 2 { // "dropped", and "recent", which no record ever referenced
		t.Fatalf("second sweep: %d, %v", removed, err)
	}
	if has, _ := ts.Photos.Has(hashes["referenced"]); !has {
		t.Fatal("a referenced photo was removed")
	}
}
