package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// shutdownPush is one push of the graceful-shutdown test and what its
// client saw.
type shutdownPush struct {
	cs     syncproto.Changeset
	status int   // 0: no answer (refused, or cut before the status line)
	err    error // the transport's error, before or after the status line
	resp   syncproto.PushResponse
}

// acked reports whether the client holds a whole acknowledgement.
func (p *shutdownPush) acked() bool { return p.status == 200 && p.err == nil }

// send posts the change set, its body from body (nil: the encoded change
// set at once), and records the answer, all of it read.
func (p *shutdownPush) send(client *http.Client, url, token string, body io.Reader, length int64) {
	b, _ := json.Marshal(p.cs)
	if body == nil {
		body, length = bytes.NewReader(b), int64(len(b))
	}
	req, err := http.NewRequest(http.MethodPost, url+"/v1/sync/push", body)
	if err != nil {
		p.err = err
		return
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		p.err = err
		return
	}
	defer resp.Body.Close()
	p.status = resp.StatusCode
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		p.err = fmt.Errorf("reading the answer after its status: %w", err)
		return
	}
	if p.status == 200 {
		if err := json.Unmarshal(got, &p.resp); err != nil || p.resp.ChangesetID != p.cs.ChangesetID {
			p.err = fmt.Errorf("a 200 with a broken body (%v): %q", err, got)
		}
	}
}

// waitLogged waits until the process has logged s.
func waitLogged(tb testing.TB, p *process, s string, within time.Duration) {
	tb.Helper()
	for deadline := time.Now().Add(within); !p.logged(s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			p.mu.Lock()
			defer p.mu.Unlock()
			tb.Fatalf("fieldsync did not log %q:\n%s", s, p.stderr)
		}
	}
}

// TestSIGTERMFinishesPushesInFlight stops the real binary with SIGTERM
// while tablets push, two of them in the middle of uploading a change set.
// The uploads in flight finish and are acknowledged; every push that got a
// 200 got all of its answer and is in the database whole; nothing is half
// applied; the process exits 0 within the grace period; the database
// reopens cleanly with its WAL checkpointed and empty.
func TestSIGTERMFinishesPushesInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end shutdown test")
	}
	const grace, fast, slow = 10 * time.Second, 4, 2
	dataDir := t.TempDir()
	// Two workers, so that no name reaches the login rate limit.
	cli(t, "worker-password\n", "user", "add", "--create", "--data", dataDir, "--name", "worker.a", "--role", "field_worker", "--scope", "500240")
	cli(t, "worker-password\n", "user", "add", "--create", "--data", dataDir, "--name", "worker.b", "--role", "field_worker", "--scope", "500240")
	p := startBinary(t, dataDir, "--shutdown-grace", grace.String())
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}

	devices := make([]*storetest.Device, fast+slow)
	tokens := make([]string, len(devices))
	for i := range devices {
		devices[i] = storetest.NewDevice(fmt.Sprintf("tablet-%d", i))
		tokens[i] = httpLogin(t, p.url, []string{"worker.a", "worker.b"}[i%2], "worker-password", devices[i].Actor.DeviceID)
	}

	var mu sync.Mutex
	var all []*shutdownPush
	var wg sync.WaitGroup
	for i := range fast {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				push := &shutdownPush{cs: surveyChangeset(devices[i], 20)}
				push.send(client, p.url, tokens[i], nil, 0)
				mu.Lock()
				all = append(all, push)
				mu.Unlock()
				if push.status == 0 {
					return // the server is going (or gone)
				}
			}
		}()
	}
	// The slow tablets send half of their change set, then wait.
	uploads := make([]*io.PipeWriter, slow)
	rest := make([][]byte, slow)
	slowPushes := make([]*shutdownPush, slow)
	var slowWG sync.WaitGroup
	for k := range slow {
		i := fast + k
		push := &shutdownPush{cs: surveyChangeset(devices[i], 20)}
		b, _ := json.Marshal(push.cs)
		r, w := io.Pipe()
		uploads[k], rest[k], slowPushes[k] = w, b[len(b)/2:], push
		slowWG.Add(1)
		go func() {
			defer slowWG.Done()
			push.send(client, p.url, tokens[i], r, int64(len(b)))
		}()
		if _, err := w.Write(b[:len(b)/2]); err != nil {
			t.Fatal(err)
		}
	}

	time.Sleep(300 * time.Millisecond)
	termAt := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLogged(t, p, "shutting down", 5*time.Second)
	time.Sleep(100 * time.Millisecond) // the listener is closed; the uploads are still coming
	for k, w := range uploads {
		if _, err := w.Write(rest[k]); err != nil {
			t.Fatalf("finishing upload %d: %v", k, err)
		}
		w.Close()
	}
	slowWG.Wait()

	var exitErr error
	select {
	case exitErr = <-p.done:
	case <-time.After(grace + 5*time.Second):
		t.Fatalf("fieldsync still running %s after SIGTERM", time.Since(termAt))
	}
	took := time.Since(termAt)
	wg.Wait()
	if exitErr != nil {
		t.Fatalf("fieldsync exited with %v after SIGTERM", exitErr)
	}
	if took > grace {
		t.Fatalf("fieldsync took %s to stop, more than the grace period %s", took, grace)
	}
	if p.logged("closing the database") || !p.logged("fieldsync stopped") {
		p.mu.Lock()
		defer p.mu.Unlock()
		t.Fatalf("no clean stop:\n%s", p.stderr)
	}
	for k, push := range slowPushes {
		if !push.acked() || len(push.resp.Results) != len(push.cs.Changes) {
			t.Fatalf("upload %d, in flight at SIGTERM: status %d, %v", k, push.status, push.err)
		}
	}

	path := filepath.Join(dataDir, sqlite.FileName)
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Fatalf("the WAL holds %d bytes after a clean shutdown", fi.Size())
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustIntegrityOK(t, db)
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v", mode, err)
	}
	var busy, walPages, copied int
	if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &walPages, &copied); err != nil || busy != 0 {
		t.Fatalf("wal_checkpoint(TRUNCATE): busy %d, %v", busy, err)
	}

	acked, refused := 0, 0
	for _, push := range append(all, slowPushes...) {
		if push.status != 0 && push.status != 200 {
			t.Fatalf("push %s answered %d", push.cs.ChangesetID, push.status)
		}
		if push.status == 200 && push.err != nil {
			t.Fatalf("push %s: the connection broke after its 200: %v", push.cs.ChangesetID, push.err)
		}
		ids := make([]any, len(push.cs.Changes))
		for i, ch := range push.cs.Changes {
			ids[i] = ch.ID
		}
		var present, receipts int
		if err := db.QueryRow(`SELECT count(*) FROM records WHERE id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, ids...).Scan(&present); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT count(*) FROM receipts WHERE changeset_id = ?`, push.cs.ChangesetID).Scan(&receipts); err != nil {
			t.Fatal(err)
		}
		switch {
		case push.acked():
			acked++
			if present != len(ids) || receipts != 1 {
				t.Fatalf("acknowledged %s: %d of %d records, %d receipts", push.cs.ChangesetID, present, len(ids), receipts)
			}
		case present != 0 && (present != len(ids) || receipts != 1):
			t.Fatalf("unacknowledged %s is half applied: %d of %d records, %d receipts", push.cs.ChangesetID, present, len(ids), receipts)
		default:
			refused++
		}
	}
	t.Logf("stopped %s after SIGTERM; %d pushes acknowledged (%d in flight at SIGTERM), %d without an answer",
		took.Round(time.Millisecond), acked, slow, refused)

	store, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("reopening the store: %v", err)
	}
	if err := store.Close(); err != nil {
		t.Fatalf("closing the reopened store: %v", err)
	}
}
