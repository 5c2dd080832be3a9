package client_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
	"github.com/fieldsync/fieldsync/syncproto/client/faulty"
)

// putCounter counts the photo chunks a tablet sends and, once broken, lets
// nothing through (the village connection is gone).
type putCounter struct {
	base       http.RoundTripper
	puts       atomic.Int64
	bytes      atomic.Int64
	mu         sync.Mutex
	breakAfter int64 // PUTs before the connection goes; 0: never
	broken     bool
	cut        chan struct{} // closed when the connection goes (cutSignal)
}

// cutSignal returns a channel closed when the connection goes.
func (p *putCounter) cutSignal() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut == nil {
		p.cut = make(chan struct{})
	}
	return p.cut
}

func (p *putCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	broken := p.broken
	p.mu.Unlock()
	if broken {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, faulty.ErrInjected
	}
	if req.Method == http.MethodPut {
		p.bytes.Add(req.ContentLength)
		if n := p.puts.Add(1); p.breakAfter > 0 && n >= p.breakAfter {
			p.mu.Lock()
			if !p.broken && p.cut != nil {
				close(p.cut)
			}
			p.broken = true
			p.mu.Unlock()
		}
	}
	return p.base.RoundTrip(req)
}

func (p *putCounter) heal() {
	p.mu.Lock()
	p.broken, p.breakAfter = false, 0
	p.mu.Unlock()
}

func TestClientUploadsPhotosBeforeTheChange(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "a", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "b", syncproto.RoleFieldWorker, "500240107")
	_, ins := apitest.SeedHousehold(t, ts)
	ctx := context.Background()
	photo := apitest.TestPNG(t, 100, 1) // ~30 KB
	// Tablet a, through a bad network, in chunks of 4 KiB.
	net := faulty.New(ts.Client().Transport, faulty.Faults{DropRequest: 0.1, DropResponse: 0.15, CutBody: 0.15, Duplicate: 0.1}, 3)
	a := apitest.NewTablet(t, ts, "a", client.Options{HTTP: &http.Client{Transport: net}, PhotoChunk: 4 << 10})
	apitest.MustSync(t, a)
	hash, err := a.AddPhoto(ctx, bytes.NewReader(photo))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, "housing_inspection", ins, client.Fields{"photos": []string{hash}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.Status(ctx); st.PhotosPending != 1 {
		t.Fatalf("photos pending before the sync: %d", st.PhotosPending)
	}
	rep := apitest.MustSync(t, a)
	if rep.Photos != 1 || rep.Refused != 0 {
		t.Fatalf("sync with a photo: %+v", rep)
	}
	if c := net.Counts(); c.DroppedResponses+c.CutBodies+c.DroppedRequests == 0 {
		t.Fatalf("the network was not faulty: %+v", c)
	}
	resp, body := ts.Do(t, "GET", "/v1/attachments/"+hash, "", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, photo) {
		t.Fatalf("the photo on the server: %d, %d bytes (want %d)", resp.StatusCode, len(body), len(photo))
	}
	if st, _ := a.Status(ctx); st.PhotosPending != 0 {
		t.Fatalf("photos pending after the sync: %d", st.PhotosPending)
	}
	// Tablet b took the same photo: the server has it, b sends no byte.
	counter := &putCounter{base: ts.Client().Transport}
	b := apitest.NewTablet(t, ts, "b", client.Options{HTTP: &http.Client{Transport: counter}})
	apitest.MustSync(t, b)
	same, err := b.AddPhoto(ctx, bytes.NewReader(photo))
	if err != nil || same != hash {
		t.Fatalf("the same photo on b: %v %s", err, same)
	}
	if err := b.Update(ctx, "housing_inspection", ins, client.Fields{"photos": []string{hash}}); err != nil {
		t.Fatal(err)
	}
	if rep := apitest.MustSync(t, b); rep.Photos != 0 || counter.puts.Load() != 0 {
		t.Fatalf("b uploaded a photo the server had: %+v, %d PUTs", rep, counter.puts.Load())
	}
}

// A sync cut in the middle of a photo leaves a partial upload; the next
// sync, after a restart, resumes from what the server holds.
func TestClientResumesAnInterruptedPhotoUpload(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "a", syncproto.RoleFieldWorker, "500240107")
	_, ins := apitest.SeedHousehold(t, ts)
	ctx := context.Background()
	photo := apitest.TestPNG(t, 120, 2) // ~43 KB: 11 chunks of 4 KiB
	counter := &putCounter{base: ts.Client().Transport}
	path := filepath.Join(t.TempDir(), "device.db")
	opts := client.Options{HTTP: &http.Client{Transport: counter}, Now: ts.Clock.Now, PhotoChunk: 4 << 10,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	a, err := client.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Login(ctx, ts.URL, "a", apitest.TestPassword); err != nil {
		t.Fatal(err)
	}
	apitest.MustSync(t, a)
	hash, _ := a.AddPhoto(ctx, bytes.NewReader(photo))
	if err := a.Update(ctx, "housing_inspection", ins, client.Fields{"photos": []string{hash}}); err != nil {
		t.Fatal(err)
	}
	counter.breakAfter = 5
	// The sync runs until the connection goes after the fifth chunk, then
	// is given up (however slow the machine: no deadline decides it).
	cut := counter.cutSignal()
	short, cancel := context.WithTimeout(ctx, time.Minute)
	go func() {
		select {
		case <-cut:
			cancel()
		case <-short.Done():
		}
	}()
	if _, err := a.Sync(short); err == nil {
		t.Fatal("a sync without a network succeeded")
	}
	cancel()
	a.Close()
	if r := apitest.StoredRecordPhotos(t, ts, ins); len(r) != 0 {
		t.Fatalf("the change was pushed before its photo: %v", r)
	}
	counter.heal()
	before := counter.bytes.Load()
	if a, err = client.Open(path, opts); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if rep := apitest.MustSync(t, a); rep.Photos != 1 {
		t.Fatalf("the resumed sync: %+v", rep)
	}
	resent := counter.bytes.Load() - before
	if resent >= int64(len(photo)) || resent < int64(len(photo))-5*(4<<10) {
		t.Fatalf("the resumed upload sent %d of %d bytes; 4 chunks of 4 KiB were already on the server", resent, len(photo))
	}
	resp, body := ts.Do(t, "GET", "/v1/attachments/"+hash, "", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, photo) {
		t.Fatalf("the photo on the server: %d, %d bytes", resp.StatusCode, len(body))
	}
	if got := apitest.StoredRecordPhotos(t, ts, ins); len(got) != 1 || got[0] != hash {
		t.Fatalf("the inspection's photos: %v", got)
	}
}

// A photo the server refuses (here: over its size limit; a file that is
// no image the tablet refuses itself) is kept on the tablet, which says
// why and still pushes the change.
func TestClientReportsARefusedPhoto(t *testing.T) {
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) {
		cfg.Attachments = apitest.MustOpenPhotos(t, t.TempDir(), attachments.Options{MaxBytes: 4096})
	})
	ts.AddUser(t, "a", syncproto.RoleFieldWorker, "500240107")
	_, ins := apitest.SeedHousehold(t, ts)
	ctx := context.Background()
	a := apitest.NewTablet(t, ts, "a", client.Options{})
	apitest.MustSync(t, a)
	hash, err := a.AddPhoto(ctx, bytes.NewReader(apitest.TestPNG(t, 64, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, "housing_inspection", ins, client.Fields{"photos": []string{hash}, "grade": "D"}); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Sync(ctx)
	if err != nil || rep.Refused != 1 || rep.Pushed != 1 {
		t.Fatalf("sync with a photo over the limit: %v %+v", err, rep)
	}
	refused, _ := a.Refused(ctx)
	if len(refused) != 1 || refused[0].Entity != "photo" || refused[0].RecordID != hash {
		t.Fatalf("refusals: %+v", refused)
	}
	if r := apitest.StoredGrade(t, ts, ins); r != `"D"` {
		t.Fatalf("the change with the refused photo was not pushed: grade %s", r)
	}
	if _, err := a.AddPhoto(ctx, bytes.NewReader(nil)); err == nil || errors.Is(err, context.Canceled) {
		t.Fatal("an empty photo was kept")
	}
}

// A server that stopped between a photo's last byte and its check holds
// every byte as a partial and says so (Upload-Offset = size, not
// complete): the tablet sends the last chunk again and the photo is
// stored, instead of a chunk of no bytes the server must refuse.
func TestClientFinishesAPhotoWhoseBytesTheServerHolds(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "a", syncproto.RoleFieldWorker, "500240107")
	_, ins := apitest.SeedHousehold(t, ts)
	ctx := context.Background()
	photo := apitest.TestPNG(t, 120, 3) // ~43 KB: 11 chunks of 4 KiB
	counter := &putCounter{base: ts.Client().Transport}
	a := apitest.NewTablet(t, ts, "a", client.Options{HTTP: &http.Client{Transport: counter}, Now: ts.Clock.Now, PhotoChunk: 4 << 10})
	apitest.MustSync(t, a)
	hash, _ := a.AddPhoto(ctx, bytes.NewReader(photo))
	if err := a.Update(ctx, "housing_inspection", ins, client.Fields{"photos": []string{hash}}); err != nil {
		t.Fatal(err)
	}
	// The tablet's bytes but the last reached the server, then the last
	// one reached its partial, fsynced, and the server stopped before it
	// checked them.
	pc := apitest.NewPhotoClient(ts.URL, ts.Login(t, "a", a.DeviceID()), ts.Client())
	last := int64(len(photo) - 1)
	if resp, body, err := pc.Put(hash, 0, int64(len(photo)), bytes.NewReader(photo[:last]), last); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT of all but the last byte: %v %v %s", err, resp, body)
	}
	var partials []string
	filepath.WalkDir(filepath.Join(ts.Photos.Dir(), "partial"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			partials = append(partials, path)
		}
		return nil
	})
	if len(partials) != 1 {
		t.Fatalf("partial uploads: %v", partials)
	}
	if err := os.WriteFile(partials[0], photo, 0o600); err != nil {
		t.Fatal(err)
	}
	if held, complete := pc.Status(t, hash); held != int64(len(photo)) || complete {
		t.Fatalf("HEAD of a photo held but not checked: %d, complete %v", held, complete)
	}
	if rep := apitest.MustSync(t, a); rep.Photos != 1 || rep.Refused != 0 {
		t.Fatalf("the sync after the stop: %+v", rep)
	}
	if n, sent := counter.puts.Load(), counter.bytes.Load(); n != 1 || sent > 4<<10 {
		t.Fatalf("the tablet sent %d PUTs, %d bytes, of a photo the server held; one chunk checks it", n, sent)
	}
	resp, body := ts.Do(t, "GET", "/v1/attachments/"+hash, "", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, photo) {
		t.Fatalf("the photo on the server: %d, %d bytes", resp.StatusCode, len(body))
	}
	if got := apitest.StoredRecordPhotos(t, ts, ins); len(got) != 1 || got[0] != hash {
		t.Fatalf("the inspection's photos: %v", got)
	}
}
