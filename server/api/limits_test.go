package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/syncproto"
)

// heldSnapshots holds every snapshot inside its read transaction, before
// its first byte, until release is closed: a snapshot streaming to a slow
// reader. started receives once when the first one is held.
type heldSnapshots struct {
	syncproto.Store
	started chan struct{}
	release chan struct{}
}

func (h *heldSnapshots) Snapshot(ctx context.Context, actor syncproto.Actor, q syncproto.SnapshotQuery, sink syncproto.SnapshotSink) error {
	return h.Store.Snapshot(ctx, actor, q, heldSink{sink, h})
}

type heldSink struct {
	syncproto.SnapshotSink
	h *heldSnapshots
}

func (s heldSink) Start(at syncproto.Cursor) error {
	select {
	case s.h.started <- struct{}{}:
	default:
	}
	<-s.h.release
	return s.SnapshotSink.Start(at)
}

// TestSnapshotConcurrencyLimit: with --snapshot-concurrency 1 and one
// snapshot streaming, a second is refused with 503 and Retry-After (a bad
// request is still a 4xx); once the first ends, snapshots are served again.
func TestSnapshotConcurrencyLimit(t *testing.T) {
	held := &heldSnapshots{started: make(chan struct{}, 1), release: make(chan struct{})}
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) {
		cfg.SnapshotConcurrency = 1
		cfg.SnapshotsPerUser = 2 // the admin takes both snapshots
		held.Store = cfg.Store
		cfg.Store = held
	})
	const path = "/v1/snapshot?entity=household&format=ndjson"
	resp, body := ts.PushJSON(t, apitest.ValidChangeset())
	pushedNew(t, resp, body)
	token := ts.Login(t, "admin", apitest.AdminDevice)

	first := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := ts.Client().Do(req)
		if err != nil {
			first <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		first <- resp.Status + " " + string(b)
	}()
	select {
	case <-held.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the first snapshot did not start")
	}

	resp, body = ts.Do(t, http.MethodGet, path, "", nil)
	mustBeUnavailable(t, resp, body, "Too many snapshots", "30")
	if resp, body := ts.Do(t, http.MethodGet, "/v1/snapshot?format=pdf", "", nil); resp.StatusCode != 422 {
		t.Fatalf("a bad snapshot request while the limit is reached: %d %s", resp.StatusCode, body)
	}

	close(held.release)
	if got := <-first; !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"head_name"`) {
		t.Fatalf("the first snapshot: %s", got)
	}
	if resp, body := ts.Do(t, http.MethodGet, path, "", nil); resp.StatusCode != 200 {
		t.Fatalf("a snapshot after the first ended: %d %s", resp.StatusCode, body)
	}
}
