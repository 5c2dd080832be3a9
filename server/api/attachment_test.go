package api_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
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

// TestAttachmentUploadCutAndResumed cuts uploads at random byte offsets
// (the body fails after a random number of bytes, as a dropped link does),
// asks HEAD where the server stands after each cut, and resumes from
// there; the stored file has the right digest.
func TestAttachmentUploadCutAndResumed(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240107")
	pc := ts.PhotoClient(t, "li.na", uuid.NewString())
	for seed := uint64(1); seed <= 4; seed++ {
		photo, hash := apitest.PhotoPNG(t, seed, 150+int(seed)*20)
		total := int64(len(photo))
		rng := rand.New(rand.NewPCG(seed, 5))
		var last int64
		for cut := 0; cut < 5; cut++ {
			offset, complete := pc.Status(t, hash)
			if complete || offset < last || offset > total {
				t.Fatalf("seed %d: HEAD after cut %d: %d (complete %v), last %d", seed, cut, offset, complete, last)
			}
			last = offset
			n := rng.Int64N(total - offset)
			resp, body, err := pc.Put(hash, offset, total, &apitest.CutBody{R: bytes.NewReader(photo[offset : offset+n])}, total-offset)
			if err == nil && resp.StatusCode != http.StatusConflict {
				t.Fatalf("seed %d: a cut upload was answered %d %s", seed, resp.StatusCode, body)
			}
			// Whatever arrived is held, and no more than was sent.
			deadline := time.Now().Add(5 * time.Second)
			for {
				held, complete := pc.Status(t, hash)
				if complete || held > offset+n {
					t.Fatalf("seed %d: HEAD %d (complete %v) after a cut at %d", seed, held, complete, offset+n)
				}
				if held == offset+n || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond) // the server may still be reading what was sent
			}
		}
		if status := pc.Upload(t, hash, photo, len(photo)); status != http.StatusCreated {
			t.Fatalf("seed %d: the resumed upload ended with %d", seed, status)
		}
		if got := ts.HeldPhoto(t, hash); apitest.Digest(got) != hash || !bytes.Equal(got, photo) {
			t.Fatalf("seed %d: the stored photo is not the photo", seed)
		}
		if offset, complete := pc.Status(t, hash); !complete || offset != total {
			t.Fatalf("seed %d: HEAD after the upload: %d %v", seed, offset, complete)
		}
	}
	if st := ts.PhotoStats(t); st.Photos != 4 || st.Partials != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAttachmentCorruptedChunk: a chunk whose bytes changed on the way is
// detected when the last byte arrives (422), and nothing is kept.
func TestAttachmentCorruptedChunk(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240107")
	pc := ts.PhotoClient(t, "li.na", uuid.NewString())
	photo, hash := apitest.PhotoPNG(t, 11, 120)
	total := int64(len(photo))
	const chunk = 16 << 10
	var resp *http.Response
	var body []byte
	for start := int64(0); start < total; start += chunk {
		end := min(start+chunk, total)
		part := bytes.Clone(photo[start:end])
		if start == 2*chunk {
			part[100] ^= 0x01
		}
		var err error
		resp, body, err = pc.Put(hash, start, total, bytes.NewReader(part), int64(len(part)))
		if err != nil {
			t.Fatal(err)
		}
		if end < total && resp.StatusCode != http.StatusNoContent {
			t.Fatalf("chunk at %d: %d %s", start, resp.StatusCode, body)
		}
	}
	p := apitest.MustProblem(t, resp, body, http.StatusUnprocessableEntity)
	if len(p.Errors) != 1 || p.Errors[0].Path != "path.sha256" || p.UploadOffset == nil || *p.UploadOffset != 0 ||
		resp.Header.Get("Upload-Offset") != "0" {
		t.Fatalf("mismatch problem %s (Upload-Offset %q)", body, resp.Header.Get("Upload-Offset"))
	}
	if offset, complete := pc.Status(t, hash); offset != 0 || complete {
		t.Fatalf("HEAD after a mismatch: %d %v", offset, complete)
	}
	if st := ts.PhotoStats(t); st.Photos != 0 || st.Partials != 0 {
		t.Fatalf("kept after a mismatch: %+v", st)
	}
	// The tablet sends it again, intact.
	if status := pc.Upload(t, hash, photo, chunk); status != http.StatusCreated {
		t.Fatalf("upload after a mismatch: %d", status)
	}
}

// TestAttachmentConcurrentUploads: tablets uploading the same photo at
// the same time all succeed, and it is stored once.
func TestAttachmentConcurrentUploads(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "zhao.lei", syncproto.RoleFieldWorker, "500240107")
	photo, hash := apitest.PhotoPNG(t, 21, 200)
	clients := []*apitest.PhotoClient{ts.PhotoClient(t, "li.na", uuid.NewString()), ts.PhotoClient(t, "zhao.lei", uuid.NewString()),
		ts.PhotoClient(t, "li.na", uuid.NewString())}
	statuses := make([]int, len(clients))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, pc := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = pc.Upload(t, hash, photo, 24<<10+i*1000)
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Fatalf("statuses %v", statuses)
		}
	}
	if created != 1 {
		t.Fatalf("%d uploads created the photo (statuses %v), want 1", created, statuses)
	}
	if st := ts.PhotoStats(t); st.Photos != 1 || st.Bytes != int64(len(photo)) || st.Partials != 0 {
		t.Fatalf("stats %+v", st)
	}
	if !bytes.Equal(ts.HeldPhoto(t, hash), photo) {
		t.Fatal("the stored photo is not the photo")
	}
	for _, pc := range clients {
		if offset, complete := pc.Status(t, hash); !complete || offset != int64(len(photo)) {
			t.Fatalf("HEAD: %d %v", offset, complete)
		}
	}
}

// TestAttachmentDownload: a photo is served to those in whose scope a
// record references it — with its type, ETag, caching, ranges — and
// refused (403) to the others, even when they know its digest.
func TestAttachmentDownload(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "bao.yin", syncproto.RoleFieldWorker, "150422103")
	ts.AddUser(t, "sup.bairin", syncproto.RoleSupervisor, "150422")
	south := ts.PhotoClient(t, "li.na", uuid.NewString())
	north := ts.PhotoClient(t, "bao.yin", uuid.NewString())
	sup := ts.PhotoClient(t, "sup.bairin", uuid.NewString())
	admin := ts.PhotoClient(t, "admin", apitest.AdminDevice)

	photo, hash := apitest.PhotoPNG(t, 31, 60)
	orphan, orphanHash := apitest.PhotoPNG(t, 32, 60)
	_, notHeld := apitest.PhotoPNG(t, 33, 60)
	north.Upload(t, hash, photo, 1<<20)
	north.Upload(t, orphanHash, orphan, 1<<20)
	// The admin who pushes the reference proves possession too (a
	// re-upload of bytes the server holds), so that it grants.
	admin.Upload(t, hash, photo, 1<<20)
	hh := uuid.NewString()
	ts.MustPush(t, storetest.NewDevice("admin").Changeset(storetest.Household(hh, storetest.NorthVillage, storetest.T0),
		apitest.NorthHousing(uuid.NewString(), hh, hash, notHeld)))

	for name, pc := range map[string]*apitest.PhotoClient{"field worker": north, "supervisor": sup, "admin": admin} {
		resp, body := pc.Get(t, hash, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, photo) {
			t.Fatalf("%s: GET %d (%d bytes)", name, resp.StatusCode, len(body))
		}
		h := resp.Header
		if h.Get("Content-Type") != "image/png" || h.Get("ETag") != `"`+hash+`"` ||
			h.Get("Cache-Control") != "private, max-age=31536000, immutable" || h.Get("Accept-Ranges") != "bytes" {
			t.Fatalf("%s: headers %v", name, h)
		}
	}
	// Ranges and revalidation.
	resp, body := north.Get(t, hash, map[string]string{"Range": "bytes=100-199"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, photo[100:200]) ||
		resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(photo)) {
		t.Fatalf("range: %d %q %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
	}
	resp, body = north.Get(t, hash, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(photo)-10)})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, photo[len(photo)-10:]) {
		t.Fatalf("suffix range: %d", resp.StatusCode)
	}
	if resp, _ := north.Get(t, hash, map[string]string{"If-None-Match": `"` + hash + `"`}); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	resp, body = north.Get(t, hash, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(photo)+5)})
	if p := apitest.MustProblem(t, resp, body, http.StatusRequestedRangeNotSatisfiable); len(p.Errors) != 1 || p.Errors[0].Path != "header.Range" {
		t.Fatalf("unsatisfiable range: %s", body)
	}

	// Outside the scope of every record that references it: 403, whether
	// the photo is held or not.
	for _, h := range []string{hash, notHeld} {
		resp, body := south.Get(t, h, nil)
		apitest.MustProblem(t, resp, body, http.StatusForbidden)
	}
	// Referenced by no record at all: 403, for an admin too.
	resp, body = admin.Get(t, orphanHash, nil)
	apitest.MustProblem(t, resp, body, http.StatusForbidden)
	// Referenced in scope but not uploaded yet: 404.
	resp, body = north.Get(t, notHeld, nil)
	apitest.MustProblem(t, resp, body, http.StatusNotFound)
	// No token: 401.
	anonymous := apitest.NewPhotoClient(ts.URL, "", ts.Client())
	resp, body = anonymous.Get(t, hash, nil)
	apitest.MustProblem(t, resp, body, http.StatusUnauthorized)
}

// TestAttachmentScopeFollowsHouseholdMove: when a household moves out of
// a field worker's villages, the photos of its inspections go with it.
func TestAttachmentScopeFollowsHouseholdMove(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "wu.fang", syncproto.RoleFieldWorker, "500240108")
	here := ts.PhotoClient(t, "li.na", uuid.NewString())
	there := ts.PhotoClient(t, "wu.fang", uuid.NewString())
	photo, hash := apitest.PhotoPNG(t, 41, 50)
	// The admin who pushes takes the photo: neither worker uploaded it, so
	// their access rests on the record alone.
	ts.PhotoClient(t, "admin", apitest.AdminDevice).Upload(t, hash, photo, 1<<20)
	hh := uuid.NewString()
	dev := storetest.NewDevice("admin")
	ts.MustPush(t, dev.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0),
		apitest.SouthHousing(uuid.NewString(), hh, hash)))
	if resp, _ := here.Get(t, hash, nil); resp.StatusCode != 200 {
		t.Fatalf("before the move: %d", resp.StatusCode)
	}
	if resp, _ := there.Get(t, hash, nil); resp.StatusCode != 403 {
		t.Fatalf("before the move, the other township: %d", resp.StatusCode)
	}
	ts.MustPush(t, dev.Changeset(storetest.Upsert("household", hh, 1, storetest.T0.Add(time.Hour),
		map[string]any{"village": "500240108203"})))
	if resp, body := here.Get(t, hash, nil); resp.StatusCode != 403 {
		t.Fatalf("after the household moved away: %d %s", resp.StatusCode, body)
	}
	if resp, body := there.Get(t, hash, nil); resp.StatusCode != 200 || !bytes.Equal(body, photo) {
		t.Fatalf("after the household moved in: %d", resp.StatusCode)
	}
}

// TestAttachmentRefusals: a field worker cannot upload a non-image, exceed
// the size limit, or name a photo by a path or a malformed digest; bad
// ranges are 400 and a wrong offset 409; each is a problem document and
// nothing is kept.
func TestAttachmentRefusals(t *testing.T) {
	const limit = 64 << 10
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) {
		cfg.Attachments = apitest.MustOpenPhotos(t, filepath.Join(t.TempDir(), "attachments"), attachments.Options{MaxBytes: limit})
	})
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240107")
	pc := ts.PhotoClient(t, "li.na", uuid.NewString())
	photo, hash := apitest.PhotoPNG(t, 51, 40)
	big, bigHash := apitest.PhotoPNG(t, 52, 140)
	if len(big) <= limit {
		t.Fatalf("the big photo has %d bytes", len(big))
	}
	text := []byte(strings.Repeat("not a photo; ", 500))
	textHash := apitest.Digest(text)
	script := []byte("<script>alert(1)</script>" + strings.Repeat(" ", 100))

	type request struct {
		name, method, path string
		body               []byte
		header             map[string]string
		status             int
		errPath            string
	}
	put := func(name, h string, body []byte, contentRange string, status int, errPath string) request {
		return request{name, http.MethodPut, "/v1/attachments/" + h, body, map[string]string{"Content-Range": contentRange}, status, errPath}
	}
	full := func(b []byte) string { return fmt.Sprintf("bytes 0-%d/%d", len(b)-1, len(b)) }
	cases := []request{
		put("a text file", textHash, text, full(text), 415, "body"),
		put("a script", apitest.Digest(script), script, full(script), 415, "body"),
		put("the first chunk of a text file", textHash, text[:200], fmt.Sprintf("bytes 0-199/%d", len(text)), 415, "body"),
		put("beyond the limit", bigHash, big[:1000], fmt.Sprintf("bytes 0-999/%d", len(big)), 413, "header.Content-Range"),
		put("beyond the limit in one piece", bigHash, big, full(big), 413, "header.Content-Range"),
		put("no Content-Range", hash, photo, "", 400, "header.Content-Range"),
		put("Content-Range without total", hash, photo, fmt.Sprintf("bytes 0-%d", len(photo)-1), 400, "header.Content-Range"),
		put("Content-Range of another unit", hash, photo, fmt.Sprintf("items 0-%d/%d", len(photo)-1, len(photo)), 400, "header.Content-Range"),
		put("Content-Range with a sign", hash, photo, fmt.Sprintf("bytes +0-%d/%d", len(photo)-1, len(photo)), 400, "header.Content-Range"),
		put("Content-Range end before start", hash, photo[:10], "bytes 10-1/500", 400, "header.Content-Range"),
		put("Content-Range end at total", hash, photo, fmt.Sprintf("bytes 0-%d/%d", len(photo), len(photo)), 400, "header.Content-Range"),
		put("Content-Range unsatisfied", hash, photo, "bytes */500", 400, "header.Content-Range"),
		put("Content-Range absurd", hash, photo, "bytes 0-1/99999999999999999999999", 400, "header.Content-Range"),
		put("body shorter than the range", hash, photo[:100], fmt.Sprintf("bytes 0-199/%d", len(photo)), 400, "header.Content-Length"),
		put("wrong start", hash, photo[100:200], fmt.Sprintf("bytes 100-199/%d", len(photo)), 409, "header.Content-Range"),
	}
	for _, path := range []string{"../x", "..%2Fx", "%2e%2e", "%2E%2E%2Fetc%2Fpasswd", "..%2F..%2F..%2Fetc%2Fpasswd",
		strings.ToUpper(hash), hash[:63], hash + "0", hash + "/x", hash + "%00", hash[:62] + "%2e", "missing", "",
		"g" + hash[1:]} {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodHead} {
			r := request{name: method + " " + path, method: method, path: "/v1/attachments/" + path, body: photo,
				header: map[string]string{"Content-Range": full(photo)}, status: 400, errPath: "path.sha256"}
			if method == http.MethodHead {
				r.errPath = ""
			}
			if method != http.MethodPut {
				r.body = nil
			}
			cases = append(cases, r)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			length := int64(-1)
			if c.body != nil {
				body, length = bytes.NewReader(c.body), int64(len(c.body))
			}
			resp, b, err := pc.Request(c.method, c.path, body, length, c.header)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, b)
			}
			if c.method == http.MethodHead {
				return
			}
			p := apitest.MustProblem(t, resp, b, c.status)
			found := false
			for _, e := range p.Errors {
				found = found || e.Path == c.errPath
			}
			if !found {
				t.Fatalf("problem %s lacks path %s", b, c.errPath)
			}
			if c.status == 409 && (p.UploadOffset == nil || *p.UploadOffset != 0 || resp.Header.Get("Upload-Offset") != "0") {
				t.Fatalf("409 without the held offset: %s %v", b, resp.Header)
			}
		})
	}
	for _, h := range []string{textHash, bigHash, hash} {
		if offset, complete := pc.Status(t, h); offset != 0 || complete {
			t.Fatalf("refused uploads left %d bytes of %s…", offset, h[:8])
		}
	}
	if st := ts.PhotoStats(t); st.Photos != 0 || st.Partials != 0 {
		t.Fatalf("refused uploads kept %+v", st)
	}
	// The limit is the photo's size: one of exactly the limit is taken.
	if status := pc.Upload(t, hash, photo, 1000); status != http.StatusCreated {
		t.Fatalf("a valid upload after the refusals: %d", status)
	}
}

// TestAttachmentMissing: POST /v1/attachments/missing names the hashes
// the server does not hold whole; its list is validated with paths.
func TestAttachmentMissing(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240107")
	pc := ts.PhotoClient(t, "li.na", uuid.NewString())
	held, heldHash := apitest.PhotoPNG(t, 61, 30)
	partial, partialHash := apitest.PhotoPNG(t, 62, 30)
	_, absent := apitest.PhotoPNG(t, 63, 30)
	pc.Upload(t, heldHash, held, 1<<20)
	if resp, body, err := pc.Put(partialHash, 0, int64(len(partial)), bytes.NewReader(partial[:500]), 500); err != nil || resp.StatusCode != 204 {
		t.Fatalf("partial upload: %v %d %s", err, resp.StatusCode, body)
	}
	ask := func(body string) (*http.Response, []byte) {
		resp, b, err := pc.Request(http.MethodPost, "/v1/attachments/missing", strings.NewReader(body), int64(len(body)),
			map[string]string{"Content-Type": "application/json"})
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	resp, body := ask(`{"hashes": ["` + heldHash + `", "` + absent + `", "` + partialHash + `", "` + absent + `"]}`)
	if resp.StatusCode != 200 || string(body) != `{"missing":["`+absent+`","`+partialHash+`"]}`+"\n" {
		t.Fatalf("missing: %d %s", resp.StatusCode, body)
	}
	if resp, body := ask(`{"hashes": []}`); resp.StatusCode != 200 || string(body) != `{"missing":[]}`+"\n" {
		t.Fatalf("missing of none: %d %s", resp.StatusCode, body)
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = absent
	}
	tooMany, _ := json.Marshal(map[string]any{"hashes": many})
	cases := []struct {
		name, body string
		status     int
		path       string
	}{
		{"upper case", `{"hashes": ["` + heldHash + `", "` + strings.ToUpper(absent) + `"]}`, 422, "hashes[1]"},
		{"short", `{"hashes": ["abc"]}`, 422, "hashes[0]"},
		{"path", `{"hashes": ["` + heldHash + `", "` + heldHash + `", "../../etc/passwd"]}`, 422, "hashes[2]"},
		{"a number", `{"hashes": [12]}`, 400, "hashes[0]"},
		{"not a list", `{"hashes": "` + absent + `"}`, 400, "$"},
		{"no hashes", `{}`, 422, "hashes"},
		{"null hashes", `{"hashes": null}`, 422, "hashes"},
		{"unknown key", `{"hashes": [], "photos": []}`, 400, "$"},
		{"not json", `hashes=1`, 400, "$"},
		{"too many", string(tooMany), 413, "hashes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ask(c.body)
			p := apitest.MustProblem(t, resp, body, c.status)
			found := false
			for _, e := range p.Errors {
				found = found || e.Path == c.path
			}
			if !found {
				t.Fatalf("problem %s lacks path %s", body, c.path)
			}
		})
	}
}

// TestAttachmentSnapshotsCarryPhotos: the photo digests are fields, so
// NDJSON and CSV carry them; the GeoJSON of households carries the URL of
// the latest housing inspection's photos.
func TestAttachmentSnapshotsCarryPhotos(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	a, b, c := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	hh, bare, older, newer := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	loc := map[string]float64{"lat": 29.95, "lon": 108.12}
	household := func(id string) syncproto.Change {
		ch := storetest.Household(id, storetest.SouthVillage, storetest.T0)
		ch.Fields["location"], _ = json.Marshal(loc)
		return ch
	}
	later := apitest.SouthHousing(newer, hh, c, b)
	later.Fields["inspected_on"] = json.RawMessage(`"2026-11-21"`)
	ts.MustPush(t, storetest.NewDevice("admin").Changeset(household(hh), household(bare), apitest.SouthHousing(older, hh, a), later))

	_, body := ts.Snapshot(t, admin, "entity=housing_inspection&format=ndjson")
	recs := apitest.NDJSONRecords(t, body)
	if string(recs[newer].Fields["photos"]) != `["`+b+`","`+c+`"]` || string(recs[older].Fields["photos"]) != `["`+a+`"]` {
		t.Fatalf("ndjson photos: %s / %s", recs[newer].Fields["photos"], recs[older].Fields["photos"])
	}
	_, body = ts.Snapshot(t, admin, "entity=housing_inspection&format=csv")
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\uFEFF")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := -1
	for i, name := range rows[0] {
		if name == "photos" {
			col = i
		}
	}
	found := false
	for _, row := range rows[1:] {
		if row[0] == newer {
			found = col >= 0 && row[col] == b+";"+c
		}
	}
	if !found {
		t.Fatalf("csv photos column %d: %v", col, rows)
	}
	_, body = ts.Snapshot(t, admin, "format=geojson")
	_, props := geojsonFeatures(t, body)
	urls, _ := json.Marshal(props[hh]["housing_photo_urls"])
	if props[hh]["housing_photo_url"] != "/v1/attachments/"+b || string(urls) != `["/v1/attachments/`+b+`","/v1/attachments/`+c+`"]` {
		t.Fatalf("geojson photo properties: %v %s", props[hh]["housing_photo_url"], urls)
	}
	if p := props[bare]; p["housing_photo_url"] != nil || p["housing_photo_urls"] != nil {
		t.Fatalf("a household without inspection: %v", p)
	}
}
