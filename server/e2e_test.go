package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// binary is the fieldsync command built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "fieldsync-e2e")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "fieldsync")
		out, err := exec.Command("go", "build", "-o", binary, "./cmd/fieldsync").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building fieldsync: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// process is a running fieldsync binary.
type process struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
	done   chan error
}

var listenRE = regexp.MustCompile(`fieldsync serving" addr=(\S+)`)

// startBinary runs `fieldsync serve` on a free port over dataDir and waits
// until it listens.
func startBinary(tb testing.TB, dataDir string) *process {
	tb.Helper()
	// The tests push far faster than a tablet: lift the per-device rate.
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data", dataDir, "--push-rate", "100000", "--push-burst", "100000")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &process{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		mu.Lock()
		defer mu.Unlock()
		tb.Fatalf("fieldsync did not start:\n%s", p.stderr)
	}
	tb.Cleanup(func() { cmd.Process.Kill() })
	return p
}

func (p *process) kill(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
	<-p.done
}

var e2eClient = &http.Client{Timeout: 20 * time.Second}

// cli runs the fieldsync binary to completion with stdin and fails the
// test if it does not succeed.
func cli(tb testing.TB, stdin string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("fieldsync %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// httpLogin logs user in on device and returns the access token.
func httpLogin(tb testing.TB, url, user, password, device string) string {
	tb.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": password, "device_id": device})
	resp, err := e2eClient.Post(url+"/v1/auth/token", "application/json", bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 {
		tb.Fatalf("login %s: %d %v", user, resp.StatusCode, err)
	}
	return tr.AccessToken
}

func authed(method, url, token string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return e2eClient.Do(req)
}

func postPush(url, token string, cs syncproto.Changeset) (syncproto.PushResponse, int, error) {
	b, _ := json.Marshal(cs)
	resp, err := authed(http.MethodPost, url+"/v1/sync/push", token, b)
	if err != nil {
		return syncproto.PushResponse{}, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return syncproto.PushResponse{}, 0, err
	}
	var pr syncproto.PushResponse
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &pr); err != nil {
			return pr, resp.StatusCode, err
		}
	}
	return pr, resp.StatusCode, nil
}

func recordExists(tb testing.TB, url, token, entity, id string) bool {
	tb.Helper()
	resp, err := authed(http.MethodGet, url+"/v1/records/"+entity+"/"+id, token, nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case 200:
		return true
	case 404:
		return false
	}
	tb.Fatalf("GET record %s: %d", id, resp.StatusCode)
	return false
}

// TestKilledServerKeepsAcknowledgedPushes runs the real binary, pushes
// from several tablets at once, SIGKILLs the server at random moments and
// restarts it on the same data. Every acknowledged change set must be
// there whole and replay; every unacknowledged one is whole or absent; a
// full pull returns every record exactly once; the database is intact.
func TestKilledServerKeepsAcknowledgedPushes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end crash test")
	}
	const kills, tablets = 6, 4
	dataDir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 11))
	cli(t, "checker-password\n", "user", "add", "--data", dataDir, "--name", "checker", "--role", "admin")
	cli(t, "worker-password\n", "user", "add", "--data", dataDir, "--name", "worker", "--role", "field_worker", "--scope", "500240")
	devices := make([]*storetest.Device, tablets)
	tokens := make([]string, tablets)
	for i := range devices {
		devices[i] = storetest.NewDevice(fmt.Sprintf("tablet-%d", i))
	}
	var checker string
	var mu sync.Mutex
	var all []*pushed
	pending := make([]*pushed, tablets) // the change set each tablet is still trying to push

	newChangeset := func(d *storetest.Device) syncproto.Changeset {
		var changes []syncproto.Change
		for j := 0; j < 5; j++ {
			hh := uuid.NewString()
			changes = append(changes, storetest.Household(hh, storetest.SouthVillage, storetest.T0),
				storetest.HousingInspection(uuid.NewString(), hh, "C", storetest.T0))
		}
		return d.Changeset(changes...)
	}

	for round := 0; round <= kills; round++ {
		p := startBinary(t, dataDir)
		if round == 0 {
			checker = httpLogin(t, p.url, "checker", "checker-password", uuid.NewString())
			for i, d := range devices {
				tokens[i] = httpLogin(t, p.url, "worker", "worker-password", d.Actor.DeviceID)
			}
		}
		// Unacknowledged change sets from the previous round: whole or
		// absent, then retried with the same id until acknowledged.
		for _, pd := range pending {
			if pd == nil {
				continue
			}
			present := 0
			for _, ch := range pd.cs.Changes {
				if recordExists(t, p.url, checker, ch.Entity, ch.ID) {
					present++
				}
			}
			if present != 0 && present != len(pd.cs.Changes) {
				t.Fatalf("round %d: unacknowledged change set %s is half applied (%d of %d)", round, pd.cs.ChangesetID, present, len(pd.cs.Changes))
			}
		}
		// Acknowledged ones replay with the stored answer.
		for _, pd := range all {
			if pd.ack == nil {
				continue
			}
			resp, status, err := postPush(p.url, tokens[0], pd.cs)
			if err == nil && status == 403 {
				// Another tablet's change set: replay it with its own token.
				for i, d := range devices {
					if d.Actor.DeviceID == pd.cs.DeviceID {
						resp, status, err = postPush(p.url, tokens[i], pd.cs)
					}
				}
			}
			if err != nil || status != 200 || !resp.Replayed || resp.Results[0].Version != pd.ack.Results[0].Version {
				t.Fatalf("round %d: acknowledged %s does not replay: %d %v %+v", round, pd.cs.ChangesetID, status, err, resp)
			}
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i, d := range devices {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					pd := pending[i]
					if pd == nil {
						pd = &pushed{cs: newChangeset(d)}
						pending[i] = pd
						all = append(all, pd)
					}
					mu.Unlock()
					resp, status, err := postPush(p.url, tokens[i], pd.cs)
					if err != nil || status != 200 {
						select {
						case <-stop:
							return
						default:
						}
						if err == nil {
							t.Errorf("push %s: status %d", pd.cs.ChangesetID, status)
							return
						}
						time.Sleep(5 * time.Millisecond)
						continue
					}
					mu.Lock()
					pd.ack = &resp
					pending[i] = nil
					mu.Unlock()
					select {
					case <-stop:
						return
					default:
					}
				}
			}()
		}
		if round == kills {
			time.Sleep(200 * time.Millisecond)
			close(stop)
			wg.Wait()
			verifyFinalState(t, p, checker, all, dataDir)
			return
		}
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
		p.kill(t)
		close(stop)
		wg.Wait()
	}
}

// pushed is a change set a test tablet sent, and the server's answer once
// it was acknowledged.
type pushed struct {
	cs  syncproto.Changeset
	ack *syncproto.PushResponse
}

// verifyFinalState pulls everything: each record of every acknowledged
// change set exactly once; then stops the server with SIGTERM (it must exit
// cleanly) and checks the database's integrity.
func verifyFinalState(t *testing.T, p *process, token string, all []*pushed, dataDir string) {
	t.Helper()
	seen := map[string]int{}
	cursor := ""
	for {
		resp, err := authed(http.MethodGet, p.url+"/v1/sync/pull?limit=700&cursor="+cursor, token, nil)
		if err != nil {
			t.Fatal(err)
		}
		var page syncproto.PullResponse
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("pull: %d %v", resp.StatusCode, err)
		}
		for _, r := range page.Records {
			seen[r.ID]++
		}
		cursor = page.Cursor
		if !page.HasMore {
			break
		}
	}
	acked := 0
	for _, pd := range all {
		if pd.ack == nil {
			continue
		}
		acked++
		for _, ch := range pd.cs.Changes {
			if seen[ch.ID] != 1 {
				t.Fatalf("record %s of acknowledged change set %s pulled %d times", ch.ID, pd.cs.ChangesetID, seen[ch.ID])
			}
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("record %s pulled %d times", id, n)
		}
	}
	t.Logf("%d change sets acknowledged, %d records", acked, len(seen))
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("fieldsync exited with %v after SIGTERM", err)
	}
	db, err := openReadOnly(filepath.Join(dataDir, "fieldsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
}
