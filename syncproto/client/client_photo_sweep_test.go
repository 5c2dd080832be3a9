package client_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
	"github.com/fieldsync/fieldsync/syncproto/client/faulty"
)

// pushCutter lets every request through but the pushes while cut: the
// tablet loses coverage right after its photo went up. It calls onCut at
// the first push it cuts.
type pushCutter struct {
	base  http.RoundTripper
	mu    sync.Mutex
	cut   bool
	onCut func()
}

func (p *pushCutter) RoundTrip(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	cut, onCut := p.cut && req.URL.Path == "/v1/sync/push", p.onCut
	if cut {
		p.onCut = nil
	}
	p.mu.Unlock()
	if cut {
		if req.Body != nil {
			req.Body.Close()
		}
		if onCut != nil {
			onCut()
		}
		return nil, faulty.ErrInjected
	}
	return p.base.RoundTrip(req)
}

// TestClientResendsAPhotoSweptWhileOffline: a tablet uploads a photo (the
// server answers 201, the tablet marks it uploaded), its push then fails,
// and it stays offline longer than --unreferenced-photo-age. The sweep
// removes the photo, which no record references yet. When the tablet comes
// back, its push asks /missing for the photo again, uploads it, and the
// record's photo is downloadable.
func TestClientResendsAPhotoSweptWhileOffline(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "a", syncproto.RoleFieldWorker, "500240107")
	_, ins := apitest.SeedHousehold(t, ts)
	ctx := context.Background()
	cutter := &pushCutter{base: ts.Client().Transport}
	a := apitest.NewTablet(t, ts, "a", client.Options{HTTP: &http.Client{Transport: cutter}})
	apitest.MustSync(t, a)
	photo := apitest.TestPNG(t, 60, 9)
	hash, err := a.AddPhoto(ctx, bytes.NewReader(photo))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, "housing_inspection", ins, client.Fields{"photos": []string{hash}}); err != nil {
		t.Fatal(err)
	}
	// The photo goes up; the push is cut, and the tablet gives up.
	syncCtx, cancel := context.WithCancel(ctx)
	cutter.cut, cutter.onCut = true, cancel
	rep, err := a.Sync(syncCtx)
	cancel()
	if !errors.Is(err, context.Canceled) || rep.Photos != 1 {
		t.Fatalf("the sync cut at its push: %+v, %v", rep, err)
	}
	if has, _ := ts.Photos.Has(hash); !has {
		t.Fatal("the photo was not uploaded before the push")
	}
	if st, _ := a.Status(ctx); st.PhotosPending != 0 || st.Pending == 0 {
		t.Fatalf("after the cut push: %+v (the photo counts as uploaded, the change is not acknowledged)", st)
	}

	// Longer offline than the age: the sweep removes the photo.
	ts.Clock.Advance(attachments.DefaultUnreferencedPhotoAge + 24*time.Hour)
	old := storetest.T0.Add(-time.Hour)
	if err := os.Chtimes(attachments.PhotoPath(ts.Photos.Dir(), hash), old, old); err != nil {
		t.Fatal(err)
	}
	removed, _, err := ts.Photos.SweepUnreferenced(ctx, ts.Store, attachments.DefaultUnreferencedPhotoAge, ts.Clock.Now())
	if err != nil || removed != 1 {
		t.Fatalf("the sweep: %d, %v; want the photo removed", removed, err)
	}

	// Back in coverage.
	cutter.mu.Lock()
	cutter.cut = false
	cutter.mu.Unlock()
	if err := a.Login(ctx, ts.URL, "a", apitest.TestPassword); err != nil {
		t.Fatal(err)
	}
	if rep := apitest.MustSync(t, a); rep.Photos != 1 || rep.Pushed == 0 {
		t.Fatalf("the sync back in coverage: %+v; want the photo sent again", rep)
	}
	resp, body := ts.PhotoClient(t, "a", uuid.NewString()).Get(t, hash, nil) // a new login: the first tokens expired meanwhile
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, photo) {
		t.Fatalf("the photo after the push: %d, %d bytes (want %d)", resp.StatusCode, len(body), len(photo))
	}
}
