package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/postgres/pgtest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// startInstances starts n fieldsync serve binaries on the PostgreSQL
// database store, each with a data directory of its own and all with the
// photo directory photos.
func startInstances(t *testing.T, n int, store, photos string) []*process {
	t.Helper()
	ps := make([]*process, n)
	for i := range ps {
		ps[i] = startBinary(t, t.TempDir(), "--store", store, "--photos", photos)
	}
	return ps
}

// tokenKeyID is the kid of an access token's header.
func tokenKeyID(tb testing.TB, token string) string {
	tb.Helper()
	head, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		tb.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(head, &h); err != nil {
		tb.Fatal(err)
	}
	return h.Kid
}

// pullAll follows the cursor from cursor to the end at the servers of
// urls in turn (page i at urls[i%len(urls)]), limit records a page, and
// returns the records and the last cursor.
func pullAll(tb testing.TB, urls []string, token, cursor string, limit int) ([]syncproto.Record, string) {
	tb.Helper()
	var all []syncproto.Record
	for i := 0; ; i++ {
		resp, err := apitest.Authed(http.MethodGet, fmt.Sprintf("%s/v1/sync/pull?limit=%d&cursor=%s", urls[i%len(urls)], limit, cursor), token, nil)
		if err != nil {
			tb.Fatal(err)
		}
		var page syncproto.PullResponse
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			tb.Fatalf("pull at %s: %d %v", urls[i%len(urls)], resp.StatusCode, err)
		}
		all = append(all, page.Records...)
		cursor = page.Cursor
		if !page.HasMore {
			return all, cursor
		}
	}
}

// serverChecksum is GET /v1/sync/checksum at url.
func serverChecksum(tb testing.TB, url, token string) syncproto.ChecksumResponse {
	tb.Helper()
	resp, err := apitest.Authed(http.MethodGet, url+"/v1/sync/checksum", token, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var sum syncproto.ChecksumResponse
	if err := json.NewDecoder(resp.Body).Decode(&sum); err != nil || resp.StatusCode != 200 {
		tb.Fatalf("checksum at %s: %d %v", url, resp.StatusCode, err)
	}
	return sum
}

var rotatedRE = regexp.MustCompile(`new signing key (\S+) is current`)

// TestInstancesOnOnePostgresServeAsOne runs three real binaries on one
// PostgreSQL database and one photo directory: a tablet's token from
// instance A works at B and C; a pull cursor from one continues at the
// others; a photo uploaded at A downloads at C; the same change set sent
// to A and B at once is applied once (one answer replayed, every record at
// version 1); after key rotate --store, every instance signs with the new
// key within its reload and verifies a token of the new key made at
// another at once, and a token of the previous key stays valid; an upload
// cut at A resumes at B from the bytes A kept.
func TestInstancesOnOnePostgresServeAsOne(t *testing.T) {
	c := pgtest.Shared(t)
	store, drop, err := c.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drop() })
	const password = "a-long-password"
	cli(t, password+"\n", "user", "add", "--store", store, "--name", "worker.xituo", "--role", "field_worker", "--scope", "500240107")
	ps := startInstances(t, 3, store, t.TempDir())
	a, b, cc := ps[0], ps[1], ps[2]
	urls := []string{a.url, b.url, cc.url}

	dev := storetest.NewDevice("worker.xituo", "500240107")
	token := httpLogin(t, a.url, "worker.xituo", password, dev.Actor.DeviceID)
	photo, hash := apitest.PhotoPNG(t, 1, 24)
	if st := apitest.NewPhotoClient(a.url, token, http.DefaultClient).Upload(t, hash, photo, 1<<20); st != http.StatusCreated {
		t.Fatalf("upload at A: %d", st)
	}
	cs := surveyChangeset(dev, 5)
	cs.Changes[1].Fields["photos"] = json.RawMessage(`["` + hash + `"]`)

	// The same change set at A and B at once.
	answers := make([]syncproto.PushResponse, 2)
	var wg sync.WaitGroup
	for i, url := range urls[:2] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, status, err := postPush(url, token, cs)
			if err != nil || status != 200 {
				t.Errorf("push at %s: %d %v", url, status, err)
			}
			answers[i] = resp
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if answers[0].Replayed == answers[1].Replayed {
		t.Fatalf("the change set sent twice at once: replayed %v and %v, want one applied and one replayed",
			answers[0].Replayed, answers[1].Replayed)
	}
	for _, ans := range answers {
		if len(ans.Results) != len(cs.Changes) {
			t.Fatalf("results: %+v", ans.Results)
		}
		for _, r := range ans.Results {
			if r.Status != syncproto.StatusApplied || r.Version != 1 {
				t.Fatalf("results: %+v", ans.Results)
			}
		}
	}

	// Pages of 3 records, each page at the next instance: every record
	// once, at version 1; the checksum at C equals the pull.
	records, _ := pullAll(t, urls, token, "", 3)
	var sum syncproto.Checksum
	seen := map[string]bool{}
	for _, r := range records {
		if seen[r.ID] || r.Version != 1 {
			t.Fatalf("record %s pulled twice or at version %d", r.ID, r.Version)
		}
		seen[r.ID] = true
		sum.Add(r.ID, r.Version)
	}
	if len(seen) != len(cs.Changes) {
		t.Fatalf("pulled %d records, want %d", len(seen), len(cs.Changes))
	}
	if got := serverChecksum(t, cc.url, token); got.Checksum != sum.String() || got.Count != sum.Count {
		t.Fatalf("checksum at C %+v, pull %s of %d", got, sum.String(), sum.Count)
	}

	resp, body := apitest.NewPhotoClient(cc.url, token, http.DefaultClient).Get(t, hash, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, photo) {
		t.Fatalf("the photo uploaded at A, at C: %d, %d bytes", resp.StatusCode, len(body))
	}
	// An upload cut at A resumes at B from the bytes A kept.
	second, hash2 := apitest.PhotoPNG(t, 2, 24)
	half := int64(len(second) / 2)
	if resp, body, err := apitest.NewPhotoClient(a.url, token, http.DefaultClient).Put(hash2, 0, int64(len(second)),
		bytes.NewReader(second[:half]), half); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("first half at A: %v %s", err, body)
	}
	atB := apitest.NewPhotoClient(b.url, token, http.DefaultClient)
	if offset, _ := atB.Status(t, hash2); offset != half {
		t.Fatalf("B holds %d bytes of the upload begun at A, want %d", offset, half)
	}
	if st := atB.Upload(t, hash2, second, 1<<20); st != http.StatusCreated {
		t.Fatalf("the rest at B: %d", st)
	}

	// A rotation made on the database.
	before := tokenKeyID(t, token)
	m := rotatedRE.FindStringSubmatch(cli(t, "", "key", "rotate", "--store", store))
	if m == nil {
		t.Fatal("key rotate --store printed no key id")
	}
	kid := m[1]
	for _, p := range ps {
		var fresh string
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			fresh = httpLogin(t, p.url, "worker.xituo", password, dev.Actor.DeviceID)
			if tokenKeyID(t, fresh) == kid {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s signs with %s after the rotation to %s", p.url, tokenKeyID(t, fresh), kid)
			}
		}
		for _, url := range urls {
			if sum := serverChecksum(t, url, fresh); sum.Count != int64(len(cs.Changes)) {
				t.Fatalf("checksum at %s with the new key's token: %+v", url, sum)
			}
		}
	}
	if tokenKeyID(t, token) != before {
		t.Fatal("the old token changed")
	}
	for _, url := range urls {
		serverChecksum(t, url, token) // the previous key's token still verifies
	}
}

// defaultInstanceKills is how many times
// TestInstancesSurviveKillsAndAPostgresRestart kills an instance.
const defaultInstanceKills = 6

// TestInstancesSurviveKillsAndAPostgresRestart: four tablets push to
// three instances on one PostgreSQL (each push to the next instance,
// another one after a failure, the same change set id until
// acknowledged); instances are SIGKILLed and started again, and
// PostgreSQL itself is restarted (pg_ctl restart --mode immediate) while
// the pushes go on. Then: every acknowledged change set is there whole,
// replays with its answer, and nothing is applied twice (every record
// pulled once, at version 1); an unacknowledged one is whole or absent;
// each tablet's pull equals the checksum of each instance.
func TestInstancesSurviveKillsAndAPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end crash test")
	}
	c := pgtest.ForTest(t)
	store, drop, err := c.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drop() })
	const password = "worker-password"
	cli(t, password+"\n", "user", "add", "--store", store, "--name", "worker", "--role", "field_worker", "--scope", "500240")
	photos := t.TempDir()
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var mu sync.Mutex // guards ps, all, pending
	ps := make([]*process, len(dirs))
	for i, d := range dirs {
		ps[i] = startBinary(t, d, "--store", store, "--photos", photos)
	}
	const tablets = 4
	devices := make([]*storetest.Device, tablets)
	tokens := make([]string, tablets)
	tokenOf := map[string]string{} // device id -> access token
	for i := range devices {
		devices[i] = storetest.NewDevice(fmt.Sprintf("tablet-%d", i))
		tokens[i] = httpLogin(t, ps[i%len(ps)].url, "worker", password, devices[i].Actor.DeviceID)
		tokenOf[devices[i].Actor.DeviceID] = tokens[i]
	}
	var all []*pushed
	pending := make([]*pushed, tablets)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	failures := 0
	for i, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				pd := pending[i]
				if pd == nil {
					pd = &pushed{cs: surveyChangeset(d, 4)}
					pending[i], all = pd, append(all, pd)
				}
				url := ps[n%len(ps)].url
				mu.Unlock()
				resp, status, err := postPush(url, tokens[i], pd.cs)
				if err != nil || status != 200 {
					if err == nil && status != http.StatusServiceUnavailable {
						t.Errorf("push %s at %s: status %d", pd.cs.ChangesetID, url, status)
						mu.Lock()
						for _, p := range ps {
							if p.url == url {
								p.mu.Lock()
								for _, l := range strings.Split(p.stderr.String(), "\n") {
									if strings.Contains(l, "ERROR") || strings.Contains(l, "status=500") {
										t.Log(l)
									}
								}
								p.mu.Unlock()
							}
						}
						mu.Unlock()
						return
					}
					mu.Lock()
					failures++
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				pd.ack, pending[i] = &resp, nil
				mu.Unlock()
			}
		}()
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for k := range defaultInstanceKills {
		time.Sleep(time.Duration(150+rng.IntN(250)) * time.Millisecond)
		if k == defaultInstanceKills/2 {
			if err := c.RestartImmediate(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		i := rng.IntN(len(ps))
		mu.Lock()
		victim := ps[i]
		mu.Unlock()
		victim.kill(t)
		again := startBinary(t, dirs[i], "--store", store, "--photos", photos)
		mu.Lock()
		ps[i] = again
		mu.Unlock()
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	urls := []string{ps[0].url, ps[1].url, ps[2].url}
	acked, cut := 0, 0
	want := map[string]bool{}
	for _, pd := range all {
		if pd.ack == nil {
			cut++
			continue
		}
		acked++
		resp, status, err := postPush(urls[acked%len(urls)], tokenOf[pd.cs.DeviceID], pd.cs)
		if err != nil || status != 200 || !resp.Replayed || resp.Results[0].Version != pd.ack.Results[0].Version {
			t.Fatalf("acknowledged %s does not replay: %d %v %+v", pd.cs.ChangesetID, status, err, resp)
		}
		for _, ch := range pd.cs.Changes {
			want[ch.ID] = true
		}
	}
	if acked < 10 {
		t.Fatalf("only %d change sets acknowledged", acked)
	}
	for i := range devices {
		records, _ := pullAll(t, urls, tokens[i], "", 500)
		var sum syncproto.Checksum
		seen := map[string]int{}
		for _, r := range records {
			seen[r.ID]++
			if seen[r.ID] > 1 || r.Version != 1 {
				t.Fatalf("record %s pulled %d times, at version %d", r.ID, seen[r.ID], r.Version)
			}
			sum.Add(r.ID, r.Version)
		}
		for id := range want {
			if seen[id] != 1 {
				t.Fatalf("record %s of an acknowledged change set is missing", id)
			}
		}
		// An unacknowledged change set: whole or absent.
		for _, pd := range all {
			if pd.ack != nil {
				continue
			}
			present := 0
			for _, ch := range pd.cs.Changes {
				present += seen[ch.ID]
			}
			if present != 0 && present != len(pd.cs.Changes) {
				t.Fatalf("unacknowledged %s half applied: %d of %d", pd.cs.ChangesetID, present, len(pd.cs.Changes))
			}
		}
		for _, url := range urls {
			if got := serverChecksum(t, url, tokens[i]); got.Checksum != sum.String() || got.Count != sum.Count {
				t.Fatalf("tablet %d: checksum at %s %+v, pull %s of %d", i, url, got, sum.String(), sum.Count)
			}
		}
	}
	t.Logf("%d instance kills and a PostgreSQL restart: %d change sets acknowledged, %d unacknowledged at the end, %d refused pushes retried",
		defaultInstanceKills-1, acked, cut, failures)
}
