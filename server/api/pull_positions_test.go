package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// writeCounter is a store observer that counts write transactions by op.
type writeCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (w *writeCounter) WriteWaited(op string, _ time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == nil {
		w.n = map[string]int{}
	}
	w.n[op]++
}

func (w *writeCounter) count(op string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n[op]
}

// flushPulls writes the test server's buffered pull positions now.
func flushPulls(tb testing.TB, ts *apitest.Server) {
	tb.Helper()
	if err := api.FlushPulls(context.Background(), ts.Config.Handler.(*api.Server)); err != nil {
		tb.Fatal(err)
	}
}

// loopChecksumAndPull is the review's worker: n rounds of checksum and a
// one-record pull from the cursor held, as fast as the server answers.
func loopChecksumAndPull(tb testing.TB, ts *apitest.Server, token string, n int) string {
	tb.Helper()
	cursor := ""
	for i := 0; i < n; i++ {
		if resp, body := ts.DoAs(tb, token, "GET", "/v1/sync/checksum", "", nil); resp.StatusCode != 200 {
			tb.Fatalf("checksum: %d %s", resp.StatusCode, body)
		}
		resp, body := ts.DoAs(tb, token, "GET", "/v1/sync/pull?limit=1&cursor="+url.QueryEscape(cursor), "", nil)
		var page syncproto.PullResponse
		if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 {
			tb.Fatalf("pull: %d %s", resp.StatusCode, body)
		}
		cursor = page.Cursor
	}
	return cursor
}

// pulledSeq returns the device's pull position as the store holds it (-1:
// not listed).
func pulledSeq(tb testing.TB, ts *apitest.Server, device string) int64 {
	tb.Helper()
	devices, err := ts.Store.Devices(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	for _, d := range devices {
		if d.DeviceID == device {
			return d.LastPullSeq
		}
	}
	return -1
}

// A tablet looping checksum + pull?limit=1 costs no durable write per
// request: its position waits in memory (here for an hour) and is written
// once, in one transaction, when the buffer is flushed. Today's code wrote
// it at every pull: 300 writes for this loop.
func TestPullPositionsAreWrittenInBatches(t *testing.T) {
	writes := &writeCounter{}
	ts := apitest.MustServeConfig(t, sqlite.Options{Observer: writes}, func(cfg *api.Config) { cfg.PullPositionsEvery = time.Hour })
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	admin := storetest.NewDevice("admin")
	var changes []syncproto.Change
	for i := 0; i < 3; i++ {
		changes = append(changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	}
	if resp, b := ts.PushJSON(t, admin.Changeset(changes...)); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	device := uuid.NewString()
	token := ts.Login(t, "worker", device)
	const rounds = 300
	cursor := loopChecksumAndPull(t, ts, token, rounds)
	if n := writes.count("record_pull"); n != 0 {
		t.Fatalf("%d rounds of checksum + pull?limit=1 made %d position writes, want none before the flush", rounds, n)
	}
	if seq := pulledSeq(t, ts, device); seq != -1 {
		t.Fatalf("the position (%d) was written before the flush", seq)
	}
	srv := ts.Config.Handler.(*api.Server)
	if err := srv.FlushPullPositions(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := writes.count("record_pull"); n != 1 {
		t.Fatalf("the flush made %d position writes, want 1", n)
	}
	c, err := ts.Push.Cursors().Parse(cursor)
	if err != nil {
		t.Fatal(err)
	}
	if seq := pulledSeq(t, ts, device); seq != c.Seq {
		t.Fatalf("after the flush the device's position is %d, want %d", seq, c.Seq)
	}
	resp, body := ts.DoAs(t, ts.Login(t, "admin", uuid.NewString()), "GET", "/v1/devices", "", nil)
	var list struct {
		Lag float64 `json:"pull_lag_seconds"`
	}
	if err := json.Unmarshal(body, &list); err != nil || resp.StatusCode != 200 || list.Lag != 3600 {
		t.Fatalf("devices: %d %s, want pull_lag_seconds 3600", resp.StatusCode, body)
	}
}

// With nothing else happening, a buffered position is written on its own
// after the interval (no later request needed to push it out).
func TestPullPositionIsWrittenAfterAQuietInterval(t *testing.T) {
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.PullPositionsEvery = 50 * time.Millisecond })
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	admin := storetest.NewDevice("admin")
	if resp, b := ts.PushJSON(t, admin.Changeset(storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	device := uuid.NewString()
	loopChecksumAndPull(t, ts, ts.Login(t, "worker", device), 1)
	deadline := time.Now().Add(20 * time.Second)
	for pulledSeq(t, ts, device) <= 0 {
		if time.Now().After(deadline) {
			t.Fatal("the position was not written within 20 s of the pull")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A graceful shutdown writes the positions still buffered before Serve
// returns (and so before serve closes the store).
func TestShutdownFlushesPullPositions(t *testing.T) {
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.PullPositionsEvery = time.Hour })
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	srv := ts.Config.Handler.(*api.Server)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln, 5*time.Second) }()
	device := uuid.NewString()
	token := ts.Login(t, "worker", device)
	// Pull through the listener Serve answers, not the test server's.
	testURL := ts.URL
	ts.URL = "http://" + ln.Addr().String()
	loopChecksumAndPull(t, ts, token, 2)
	ts.URL = testURL
	if seq := pulledSeq(t, ts, device); seq != -1 {
		t.Fatalf("the position (%d) was written before shutdown", seq)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if seq := pulledSeq(t, ts, device); seq < 0 {
		t.Fatal("the buffered position was lost at shutdown")
	}
}
