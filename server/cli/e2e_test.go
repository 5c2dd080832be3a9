package cli

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/postgres/pgtest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The fieldsync command, built once, by the first test that runs it (the
// tests of the commands in process build nothing), into a directory that
// TestMain removes at the end.
var (
	binaryDir   string
	binaryOnce  sync.Once
	binaryFile  string
	binaryError error
)

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "fieldsync-e2e")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binaryDir = dir
		// The PostgreSQL cluster the tests that need one share
		// (pgtest.Shared), if one of them started it.
		defer pgtest.StopShared()
		return m.Run()
	}()
	os.Exit(code)
}

// fieldsyncBinary is the path of the fieldsync command, built on first use;
// a failed build fails the test.
func fieldsyncBinary(tb testing.TB) string {
	tb.Helper()
	binaryOnce.Do(func() {
		path := filepath.Join(binaryDir, "fieldsync")
		out, err := exec.Command("go", "build", "-o", path, "../cmd/fieldsync").CombinedOutput()
		if err != nil {
			binaryError = fmt.Errorf("building fieldsync: %v\n%s", err, out)
			return
		}
		binaryFile = path
	})
	if binaryError != nil {
		tb.Fatal(binaryError)
	}
	return binaryFile
}

// process is a running fieldsync binary.
type process struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex // guards stderr
	stderr *bytes.Buffer
	done   chan error
}

// logged reports whether the process has logged a line containing s.
func (p *process) logged(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Contains(p.stderr.String(), s)
}

var listenRE = regexp.MustCompile(`fieldsync serving" addr=(\S+)`)

// startBinary runs `fieldsync serve` on a free port over dataDir, with
// extra flags if any, and waits until it listens.
func startBinary(tb testing.TB, dataDir string, extra ...string) *process {
	tb.Helper()
	// The tests push far faster than a tablet: lift the per-device rate.
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", dataDir, "--push-rate", "100000", "--push-burst", "100000",
		"--log-format", "text"}
	cmd := exec.Command(fieldsyncBinary(tb), append(args, extra...)...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &process{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
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
		p.mu.Lock()
		defer p.mu.Unlock()
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

// cli runs the fieldsync binary to completion with stdin and fails the
// test if it does not succeed.
func cli(tb testing.TB, stdin string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(fieldsyncBinary(tb), args...)
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
	return login(tb, url, user, password, device).AccessToken
}

func postPush(url, token string, cs syncproto.Changeset) (syncproto.PushResponse, int, error) {
	b, _ := json.Marshal(cs)
	resp, err := apitest.Authed(http.MethodPost, url+"/v1/sync/push", token, b)
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
	resp, err := apitest.Authed(http.MethodGet, url+"/v1/records/"+entity+"/"+id, token, nil)
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

// surveyChangeset is the device's next change set: n new households, each
// with its housing inspection, spread over 40 villages of 西沱镇 as a
// survey team's would be. Every household has a head of its own, so that
// none is a suspected duplicate of another: the duplicate check reads the
// households of the village, and a long run piling thousands of namesakes
// into one village would slow down as it grows.
func surveyChangeset(d *storetest.Device, n int) syncproto.Changeset {
	var changes []syncproto.Change
	for range n {
		hh := uuid.NewString()
		village := fmt.Sprintf("500240107%03d", 201+rand.IntN(40))
		changes = append(changes, storetest.Upsert("household", hh, 0, storetest.T0, map[string]any{
			"village": village, "head_name": "户主 " + hh[:8], "members": 4}),
			storetest.HousingInspection(uuid.NewString(), hh, "C", storetest.T0))
	}
	return d.Changeset(changes...)
}

// defaultCrashKills is how many times TestKilledServerKeepsAcknowledgedPushes
// kills the server in an ordinary test run (CI).
const defaultCrashKills = 20

// crashKills is defaultCrashKills, or FIELDSYNC_CRASH_KILLS for a longer
// campaign run by hand, for example:
//
//	FIELDSYNC_CRASH_KILLS=200 go test -race -count=1 -timeout 1h -run TestKilledServer -v ./server
func crashKills(tb testing.TB) int {
	v := os.Getenv("FIELDSYNC_CRASH_KILLS")
	if v == "" {
		return defaultCrashKills
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("FIELDSYNC_CRASH_KILLS=%q: want a whole number of kills, at least 1", v)
	}
	return n
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
	const tablets = 4
	kills := crashKills(t)
	began := time.Now()
	dataDir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 11))
	cli(t, "checker-password\n", "user", "add", "--create", "--data", dataDir, "--name", "checker", "--role", "admin")
	cli(t, "worker-password\n", "user", "add", "--create", "--data", dataDir, "--name", "worker", "--role", "field_worker", "--scope", "500240")
	devices := make([]*storetest.Device, tablets)
	tokens := map[string]string{} // device id -> access token
	for i := range devices {
		devices[i] = storetest.NewDevice(fmt.Sprintf("tablet-%d", i))
	}
	var checker string
	var loggedIn time.Time
	var mu sync.Mutex
	var all []*pushed
	pending := make([]*pushed, tablets) // the change set each tablet is still trying to push
	verified := 0                       // all[:verified] were replayed after a restart
	// Change sets cut by a kill before their answer: committed whole, or absent.
	cutWhole, cutAbsent := 0, 0

	for round := 0; round <= kills; round++ {
		p := startBinary(t, dataDir)
		// Access tokens live 15 minutes; a long campaign logs in again.
		// (Each restart also resets the login rate limits.)
		if time.Since(loggedIn) > 10*time.Minute {
			checker = httpLogin(t, p.url, "checker", "checker-password", uuid.NewString())
			for _, d := range devices {
				tokens[d.Actor.DeviceID] = httpLogin(t, p.url, "worker", "worker-password", d.Actor.DeviceID)
			}
			loggedIn = time.Now()
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
			if present == 0 {
				cutAbsent++
			} else {
				cutWhole++
			}
		}
		// Those acknowledged since the last restart replay with the stored
		// answer, and so do a few older ones (the final pull checks every
		// record of every one).
		var replay []*pushed
		for i, pd := range all {
			if pd.ack != nil && (i >= verified || rng.IntN(len(all)) < 8) {
				replay = append(replay, pd)
			}
		}
		for _, pd := range replay {
			resp, status, err := postPush(p.url, tokens[pd.cs.DeviceID], pd.cs)
			if err != nil || status != 200 || !resp.Replayed || resp.Results[0].Version != pd.ack.Results[0].Version {
				t.Fatalf("round %d: acknowledged %s does not replay: %d %v %+v", round, pd.cs.ChangesetID, status, err, resp)
			}
		}
		verified = len(all)
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
						pd = &pushed{cs: surveyChangeset(d, 5)}
						pending[i] = pd
						all = append(all, pd)
					}
					mu.Unlock()
					resp, status, err := postPush(p.url, tokens[d.Actor.DeviceID], pd.cs)
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
			acked, records := verifyFinalState(t, p, checker, all, dataDir)
			t.Logf("%d kills survived: %d change sets acknowledged, %d records verified; %d unacknowledged at a kill (%d committed whole, %d absent); in %s",
				kills, acked, records, cutWhole+cutAbsent, cutWhole, cutAbsent, time.Since(began).Round(time.Second))
			return
		}
		time.Sleep(time.Duration(30+rng.IntN(121)) * time.Millisecond)
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
// cleanly) and checks the database's integrity. It returns how many change
// sets were acknowledged and how many records were pulled.
func verifyFinalState(t *testing.T, p *process, token string, all []*pushed, dataDir string) (acked, records int) {
	t.Helper()
	seen := map[string]int{}
	cursor := ""
	for {
		resp, err := apitest.Authed(http.MethodGet, p.url+"/v1/sync/pull?limit=700&cursor="+cursor, token, nil)
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
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("fieldsync exited with %v after SIGTERM", err)
	}
	mustIntegrityOK(t, openDB(t, filepath.Join(dataDir, "fieldsync.db")))
	return acked, len(seen)
}
