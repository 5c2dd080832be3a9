package api_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
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

// newHouseholds is a change set of n new households with distinct heads
// (so none is a suspected duplicate of another): with n of 50, many pages.
func newHouseholds(dev *storetest.Device, n int) syncproto.Changeset {
	changes := make([]syncproto.Change, n)
	for i := range changes {
		changes[i] = storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{
			"village": storetest.SouthVillage, "head_name": fmt.Sprintf("户主 %d", i), "members": 4})
	}
	return dev.Changeset(changes...)
}

// mustBeUnavailable checks a 503 problem with its Retry-After.
func mustBeUnavailable(tb testing.TB, resp *http.Response, body []byte, title, retryAfter string) {
	tb.Helper()
	var p api.Problem
	_ = json.Unmarshal(body, &p)
	if resp.StatusCode != http.StatusServiceUnavailable || p.Type != "/problems/unavailable" || p.Title != title ||
		resp.Header.Get("Content-Type") != "application/problem+json" {
		tb.Fatalf("want 503 %q: %d %s", title, resp.StatusCode, body)
	}
	if got := resp.Header.Get("Retry-After"); got != retryAfter {
		tb.Fatalf("Retry-After %q, want %q", got, retryAfter)
	}
	if strings.Contains(string(body), "SQLITE") || strings.Contains(string(body), "disk is full") {
		tb.Fatalf("the problem shows SQLite's error: %s", body)
	}
}

// pushedNew checks a 200 whose change set applied for the first time.
func pushedNew(tb testing.TB, resp *http.Response, body []byte) {
	tb.Helper()
	var pr syncproto.PushResponse
	if err := json.Unmarshal(body, &pr); err != nil || resp.StatusCode != 200 || pr.Replayed {
		tb.Fatalf("push: %d %s", resp.StatusCode, body)
	}
}

// TestFullDiskAnswers503AndKeepsReads makes the database unable to grow: a
// push answers 503 with Retry-After, is logged as an error with SQLite's
// reason, and leaves no trace (no receipt, no rows, the device's sequence
// unused); /readyz, pull and snapshot go on; once there is room, the same
// change set applies as new.
func TestFullDiskAnswers503AndKeepsReads(t *testing.T) {
	var log apitest.LogBuffer
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.Logger = slog.New(slog.NewTextHandler(&log, nil)) })
	dev := storetest.NewDevice("li.na")
	resp, body := ts.PushJSON(t, newHouseholds(dev, 2))
	pushedNew(t, resp, body)
	ts.Do(t, http.MethodGet, "/healthz", "", nil) // logs the admin in while there is room

	if _, err := ts.Store.SetMaxPageCountForTest(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	before := ts.Counts(t)
	cs := newHouseholds(dev, 50)
	resp, body = ts.PushJSON(t, cs)
	mustBeUnavailable(t, resp, body, "Storage full", "60")
	if l := log.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "database or disk is full") {
		t.Fatalf("the full disk is not logged as an error:\n%s", l)
	}
	if after := ts.Counts(t); !equalCounts(before, after) {
		t.Fatalf("a refused push wrote: before %v, after %v", before, after)
	}
	if resp, body := ts.Do(t, http.MethodGet, "/v1/receipts/"+cs.ChangesetID, "", nil); resp.StatusCode != 404 {
		t.Fatalf("receipt of a refused push: %d %s", resp.StatusCode, body)
	}

	for _, path := range []string{"/readyz", "/v1/sync/pull", "/v1/snapshot?entity=household&format=ndjson"} {
		resp, body := ts.Do(t, http.MethodGet, path, "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s on a full disk: %d %s", path, resp.StatusCode, body)
		}
		if path != "/readyz" && strings.Count(string(body), `"head_name"`) != 2 {
			t.Fatalf("GET %s on a full disk: %s", path, body)
		}
	}

	if _, err := ts.Store.SetMaxPageCountForTest(context.Background(), 1<<32-2); err != nil {
		t.Fatal(err)
	}
	resp, body = ts.PushJSON(t, cs)
	pushedNew(t, resp, body)
	if c := ts.Counts(t); c["records"] != 52 || c["receipts"] != 2 {
		t.Fatalf("counts once there is room: %v", c)
	}
}

// lockWriter takes the database's write lock (BEGIN IMMEDIATE) from a
// connection of its own, as another process would (the sqlite3 shell, a
// backup tool that writes), and returns the function that commits.
func lockWriter(tb testing.TB, path string) (commit func()) {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		tb.Fatal(err)
	}
	var once sync.Once
	commit = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
				tb.Error(err)
			}
			conn.Close()
			db.Close()
		})
	}
	tb.Cleanup(commit)
	return commit
}

// pushAs posts a change set with token; it may run off the test's
// goroutine (it does not fail the test).
func pushAs(ts *apitest.Server, token string, cs syncproto.Changeset) (*http.Response, []byte, error) {
	b, _ := json.Marshal(cs)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/sync/push", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := ts.Client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// TestBusyDatabaseWaitsForTheLock: while another connection holds the
// write lock for a second, pushes wait for it (busy_timeout) and all
// succeed; none reaches the client as SQLITE_BUSY.
func TestBusyDatabaseWaitsForTheLock(t *testing.T) {
	ts := apitest.MustServe(t)
	const tablets, each = 4, 3
	devices := make([]*storetest.Device, tablets)
	tokens := make([]string, tablets)
	for i := range devices {
		devices[i] = storetest.NewDevice(fmt.Sprintf("tablet-%d", i))
		tokens[i] = ts.Login(t, "admin", devices[i].Actor.DeviceID) // sessions are writes too: before the lock
	}
	commit := lockWriter(t, ts.Store.Path())
	type outcome struct {
		status int
		body   []byte
		err    error
		at     time.Time
	}
	outcomes := make([][]outcome, tablets)
	var wg sync.WaitGroup
	for i, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				resp, body, err := pushAs(ts, tokens[i], newHouseholds(d, 5))
				o := outcome{body: body, err: err, at: time.Now()}
				if resp != nil {
					o.status = resp.StatusCode
				}
				outcomes[i] = append(outcomes[i], o)
			}
		}()
	}
	time.Sleep(time.Second)
	committed := time.Now()
	commit()
	wg.Wait()
	for i := range outcomes {
		for j, o := range outcomes[i] {
			if o.err != nil || o.status != 200 {
				t.Fatalf("tablet %d push %d: %d %v %s", i, j, o.status, o.err, o.body)
			}
		}
		if outcomes[i][0].at.Before(committed) {
			t.Fatalf("tablet %d: a push finished while the lock was held", i)
		}
	}
	if c := ts.Counts(t); c["receipts"] != tablets*each {
		t.Fatalf("counts %v", c)
	}
}

// TestLockHeldBeyondBusyTimeoutAnswers503: when the lock is held longer
// than the store waits, the push answers 503 with Retry-After (not 500),
// writes nothing, and succeeds as new once the lock is gone.
func TestLockHeldBeyondBusyTimeoutAnswers503(t *testing.T) {
	const wait = 200 * time.Millisecond
	ts := apitest.MustServeConfig(t, sqlite.Options{BusyTimeout: wait}, nil)
	dev := storetest.NewDevice("li.na")
	cs := newHouseholds(dev, 5)
	ts.Login(t, "admin", dev.Actor.DeviceID)
	ts.Login(t, "admin", apitest.AdminDevice)
	before := ts.Counts(t)

	commit := lockWriter(t, ts.Store.Path())
	start := time.Now()
	resp, body := ts.PushJSON(t, cs)
	waited := time.Since(start)
	mustBeUnavailable(t, resp, body, "Database busy", "5")
	if waited < wait {
		t.Fatalf("the push gave up after %s, before the busy timeout (%s)", waited, wait)
	}
	commit()
	if after := ts.Counts(t); !equalCounts(before, after) {
		t.Fatalf("a refused push wrote: before %v, after %v", before, after)
	}
	resp, body = ts.PushJSON(t, cs)
	pushedNew(t, resp, body)
}
