package api_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// slowClient is an HTTP client whose connections have a 4 KiB receive
// buffer, so that a reader that reads slowly soon makes the server's
// writes wait.
func slowClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// smallSendBuffers gives every accepted connection an 8 KiB send buffer.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// slowReaderServer serves 2,000 households in storetest.SouthVillage to two
// supervisors, wang.sup and zhao.sup, with --snapshot-min-rate 64 KiB/s
// after a 1 s grace. It returns the server, a token of wang.sup (the slow
// reader) and the URL of a second server of the same handler for the slow
// reader: its connections have a small send buffer, as a county snapshot
// (MBs) outgrows any socket buffer, so the server's writes wait for the
// reader instead of finishing into the kernel.
func slowReaderServer(t *testing.T) (ts *apitest.Server, slowToken, slowURL string) {
	t.Helper()
	ts = apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) {
		cfg.SnapshotMinRate, cfg.SnapshotRateGrace = 64<<10, time.Second
	})
	dev := storetest.NewDevice("admin")
	for i := 0; i < 10; i++ {
		var changes []syncproto.Change
		for j := 0; j < 200; j++ {
			changes = append(changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
		}
		resp, body := ts.PushJSON(t, dev.Changeset(changes...))
		pushedNew(t, resp, body)
	}
	ts.AddUser(t, "wang.sup", syncproto.RoleSupervisor, storetest.SouthVillage[:6])
	ts.AddUser(t, "zhao.sup", syncproto.RoleSupervisor, storetest.SouthVillage[:6])
	slowToken = ts.Login(t, "wang.sup", uuid.NewString())
	slowSrv := httptest.NewUnstartedServer(ts.Config.Handler)
	slowSrv.Listener = smallSendBuffers{slowSrv.Listener}
	slowSrv.Start()
	t.Cleanup(slowSrv.Close)
	return ts, slowToken, slowSrv.URL
}

// TestSlowSnapshotReaderCannotStarveOthers replays the review: one
// supervisor downloads snapshots at about 3 KB/s. Its second snapshot is
// refused (429, one per user by default) instead of taking the second
// global slot, so another supervisor's snapshot is served (the old server
// answered every other user 503); and the slow download is cut once it
// falls behind --snapshot-min-rate (here 64 KiB/s after a 1 s grace),
// freeing its slot, well before it could finish.
func TestSlowSnapshotReaderCannotStarveOthers(t *testing.T) {
	ts, slowToken, slowURL := slowReaderServer(t)
	const path = "/v1/snapshot?entity=household&format=ndjson"

	// The whole snapshot, read at full speed, for its size.
	resp, whole := ts.DoAs(t, slowToken, http.MethodGet, path, "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("snapshot: %d %s", resp.StatusCode, whole)
	}

	slow := slowRead(slowURL+path, slowToken)

	resp, body := ts.DoAs(t, slowToken, http.MethodGet, path, "", nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the slow supervisor's second snapshot: %d %.200s", resp.StatusCode, body)
	}
	resp, body = ts.DoAs(t, ts.Login(t, "zhao.sup", uuid.NewString()), http.MethodGet, path, "", nil)
	if resp.StatusCode != 200 || len(body) != len(whole) {
		t.Fatalf("another supervisor's snapshot while the slow one streams: %d %.200s", resp.StatusCode, body)
	}

	got := <-slow
	t.Logf("slow reader: %d of %d bytes in %s, then %v", got.read, len(whole), got.elapsed.Round(time.Millisecond), got.err)
	if got.err == nil || got.read >= len(whole) {
		t.Fatalf("the slow download was not cut: %d of %d bytes in %s", got.read, len(whole), got.elapsed)
	}
	if resp, body := ts.DoAs(t, slowToken, http.MethodGet, path, "", nil); resp.StatusCode != 200 || len(body) != len(whole) {
		t.Fatalf("a snapshot once the slow one was cut: %d %.200s", resp.StatusCode, body)
	}
}

// slowOutcome is how a slow reader's download ended.
type slowOutcome struct {
	read    int
	err     error
	elapsed time.Duration
}

// slowRead starts a download of url with token read at about 3 KB/s for at
// most 25 s, and returns once the answer's headers have come; the channel
// tells how much it read and how the download ended.
func slowRead(url, token string) <-chan slowOutcome {
	slow := make(chan slowOutcome, 1)
	started := make(chan struct{})
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		begin := time.Now()
		resp, err := slowClient().Do(req)
		close(started)
		if err != nil {
			slow <- slowOutcome{err: err}
			return
		}
		defer resp.Body.Close()
		buf := make([]byte, 300)
		read := 0
		for time.Since(begin) < 25*time.Second { // about 3 KB/s
			n, err := io.ReadFull(resp.Body, buf)
			read += n
			if err != nil {
				slow <- slowOutcome{read: read, err: err, elapsed: time.Since(begin)}
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		slow <- slowOutcome{read: read, elapsed: time.Since(begin)}
	}()
	<-started
	return slow
}
