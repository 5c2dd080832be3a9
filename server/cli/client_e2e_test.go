package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
	"github.com/fieldsync/fieldsync/syncproto/client/faulty"
)

// The Go client against the real binary, through a network that drops
// requests and answers, duplicates, delays and cuts them.

const e2ePassword = "tablet-pass-1234"

// deviceClock is a tablet's own clock, moved by the test.
type deviceClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *deviceClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A little real time passes between edits.
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *deviceClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// edit is one value a tablet set, as it was sent (the last of its offline
// stretch for that field).
type edit struct {
	device, record, entity, field string
	value                         json.RawMessage
}

type simTablet struct {
	c        *client.Client
	net      *faulty.Transport
	clock    *deviceClock
	pushed   int // change sets acknowledged
	replayed int // of which answered as replays (an earlier answer was lost)
	period   map[[2]string]edit
}

// fieldEdits are the fields the simulation edits, per entity, with a
// generator of a value.
var fieldEdits = map[string]map[string]func(r *rand.Rand) any{
	"household": {
		"head_name": func(r *rand.Rand) any { return fmt.Sprintf("户主%d", r.IntN(1000)) },
		"members":   func(r *rand.Rand) any { return 1 + r.IntN(12) },
		// The values a field worker may set: lifted_out is decided by a
		// supervisor on a verified verdict (docs/forms.md, Decided values).
		"status": func(r *rand.Rand) any { return []string{"in_poverty", "relapse_risk"}[r.IntN(2)] },
	},
	"housing_inspection": {
		"grade":      func(r *rand.Rand) any { return []string{"A", "B", "C", "D"}[r.IntN(4)] },
		"renovation": func(r *rand.Rand) any { return []string{"none", "planned", "in_progress", "completed"}[r.IntN(4)] },
		"hazards": func(r *rand.Rand) any {
			all := []string{"roof", "walls", "foundation", "ventilation", "heating_insulation"}
			out := []string{}
			for _, h := range all {
				if r.IntN(3) == 0 {
					out = append(out, h)
				}
			}
			return out
		},
	},
	"water_inspection": {
		"quality_ok":            func(r *rand.Rand) any { return r.IntN(2) == 0 },
		"liters_per_person_day": func(r *rand.Rand) any { return 20 + r.IntN(100) },
		"fetch_minutes":         func(r *rand.Rand) any { return r.IntN(60) },
	},
}

func TestTabletsConvergeThroughAFaultyNetwork(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	if s := os.Getenv("FIELDSYNC_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seeds = []uint64{n}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("replay with: FIELDSYNC_SEED=%d go test ./server/cli -run 'TestTabletsConverge' -v", seed)
				}
			}()
			runConvergence(t, seed)
		})
	}
}

func runConvergence(t *testing.T, seed uint64) {
	data := t.TempDir()
	cli(t, e2ePassword+"\n", "user", "add", "--create", "--data", data, "--name", "boss", "--role", "admin")
	for i := 0; i < 3; i++ {
		cli(t, e2ePassword+"\n", "user", "add", "--create", "--data", data, "--name", fmt.Sprintf("w%d", i), "--role", "field_worker", "--scope", "500240107")
	}
	srv := startBinary(t, data)
	rng := rand.New(rand.NewPCG(seed, 42))
	ctx := context.Background()
	faults := faulty.Faults{DropRequest: 0.08, DropResponse: 0.12, Duplicate: 0.08, CutBody: 0.05, Delay: 0.1, MaxDelay: 20 * time.Millisecond}

	start := time.Now().UTC().Add(-30 * 24 * time.Hour)
	tablets := make([]*simTablet, 3)
	for i := range tablets {
		net := faulty.New(nil, faults, seed*100+uint64(i))
		clock := &deviceClock{t: start.Add(time.Duration(i) * time.Second)}
		c, err := client.Open(filepath.Join(t.TempDir(), "device.db"), client.Options{HTTP: &http.Client{Transport: net},
			Now: clock.Now, MinBackoff: time.Millisecond, MaxBackoff: 30 * time.Millisecond, RequestTimeout: 5 * time.Second,
			BatchSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Login(ctx, srv.url, fmt.Sprintf("w%d", i), e2ePassword); err != nil {
			t.Fatalf("seed %d: login w%d: %v", seed, i, err)
		}
		tablets[i] = &simTablet{c: c, net: net, clock: clock, period: map[[2]string]edit{}}
	}
	var sent []edit
	sync := func(tab *simTablet) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		rep, err := tab.c.Sync(sctx)
		tab.pushed += rep.Pushed
		tab.replayed += rep.Replayed
		if err != nil {
			t.Fatalf("seed %d: sync of %s: %v (report %+v)", seed, tab.c.DeviceID(), err, rep)
		}
		for _, e := range tab.period {
			sent = append(sent, e)
		}
		tab.period = map[[2]string]edit{}
	}
	set := func(tab *simTablet, entity, id, field string, v any) {
		t.Helper()
		if err := tab.c.Update(ctx, entity, id, client.Fields{field: v}); err != nil {
			t.Fatalf("seed %d: edit: %v", seed, err)
		}
		b, _ := json.Marshal(v)
		tab.period[[2]string{id, field}] = edit{device: tab.c.DeviceID(), record: id, entity: entity, field: field, value: b}
	}

	// Day 0: the first tablet registers the households; everyone syncs.
	first := tablets[0]
	for h := 0; h < 5; h++ {
		hh, err := first.c.Create(ctx, "household", client.Fields{"village": storetest.SouthVillage, "head_name": fmt.Sprintf("户主%d", h),
			"registration_no": fmt.Sprintf("S%d-%d", seed, h), "members": 4, "categories": []string{"registered_poor"}, "status": "in_poverty"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := first.c.Create(ctx, "housing_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-10-01",
			"grade": "B", "ventilation": "adequate"}); err != nil {
			t.Fatal(err)
		}
		if _, err := first.c.Create(ctx, "water_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-10-01",
			"source": "well", "quality_ok": true, "liters_per_person_day": 60, "fetch_minutes": 10, "reliability_pct": 95}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tab := range tablets {
		sync(tab)
	}

	// Four days offline, each tablet editing the households it holds,
	// then syncing in a random order, some twice.
	for day := 1; day <= 4; day++ {
		for _, tab := range tablets {
			tab.clock.advance(24*time.Hour + time.Duration(rng.IntN(3600))*time.Second)
			records, err := tab.c.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			for n := 0; n < 12; n++ {
				r := records[rng.IntN(len(records))]
				fields := fieldEdits[r.Entity]
				names := make([]string, 0, len(fields))
				for f := range fields {
					names = append(names, f)
				}
				sort.Strings(names)
				f := names[rng.IntN(len(names))]
				set(tab, r.Entity, r.ID, f, fields[f](rng))
			}
			if rng.IntN(2) == 0 { // a new inspection of a household it holds
				var hh string
				for _, r := range records {
					if r.Entity == "household" {
						hh = r.ID
					}
				}
				id, err := tab.c.Create(ctx, "housing_inspection", client.Fields{"household_id": hh,
					"inspected_on": "2026-11-0" + strconv.Itoa(day), "grade": "C", "ventilation": "inadequate"})
				if err != nil {
					t.Fatal(err)
				}
				tab.period[[2]string{id, "grade"}] = edit{device: tab.c.DeviceID(), record: id, entity: "housing_inspection",
					field: "grade", value: json.RawMessage(`"C"`)}
			}
		}
		for _, i := range rng.Perm(len(tablets)) {
			sync(tablets[i])
			if rng.IntN(3) == 0 {
				sync(tablets[rng.IntN(len(tablets))])
			}
		}
	}
	// Two more rounds, faults still on: every push reaches every tablet.
	for round := 0; round < 2; round++ {
		for _, i := range rng.Perm(len(tablets)) {
			sync(tablets[i])
		}
	}

	var injected faulty.Counts
	replayed := 0
	for _, tab := range tablets {
		replayed += tab.replayed
		c := tab.net.Counts()
		injected.DroppedRequests += c.DroppedRequests
		injected.DroppedResponses += c.DroppedResponses
		injected.Duplicated += c.Duplicated
		injected.CutBodies += c.CutBodies
	}
	t.Logf("seed %d: %d edits sent; faults injected: %+v; %d change sets acknowledged only on a retry", seed, len(sent), injected, replayed)
	if replayed == 0 || injected.DroppedResponses == 0 || injected.DroppedRequests == 0 || injected.Duplicated == 0 || injected.CutBodies == 0 {
		t.Fatalf("seed %d: the network was not faulty enough to test anything: %+v", seed, injected)
	}

	admin := httpLogin(t, srv.url, "boss", e2ePassword, uuid.NewString())
	// 1. Every tablet's copy equals the server's.
	server := map[string]syncproto.Record{}
	cursor := ""
	for {
		var page syncproto.PullResponse
		apitest.GetJSON(t, srv.url, admin, "/v1/sync/pull?limit=100&cursor="+url.QueryEscape(cursor), &page)
		for _, r := range page.Records {
			server[r.ID] = r
		}
		cursor = page.Cursor
		if !page.HasMore {
			break
		}
	}
	for i, tab := range tablets {
		records, err := tab.c.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(records) != len(server) {
			t.Fatalf("seed %d: tablet %d holds %d records, the server %d", seed, i, len(records), len(server))
		}
		for _, r := range records {
			s := server[r.ID]
			if r.Pending || r.Version != s.Version || r.Deleted != s.Deleted || !sameFields(r.Fields, s.Fields) {
				t.Fatalf("seed %d: tablet %d has %s v%d %s (pending %v), the server v%d %s", seed, i, r.ID, r.Version,
					fieldsText(r.Fields), r.Pending, s.Version, fieldsText(s.Fields))
			}
		}
		if st, _ := tab.c.Status(ctx); st.Pending != 0 || st.Refused != 0 {
			refused, _ := tab.c.Refused(ctx)
			t.Fatalf("seed %d: tablet %d status %+v; refused %+v", seed, i, st, refused)
		}
	}

	// 2. The server applied each change set once: one receipt per change
	// set a tablet had acknowledged, and no record has two versions from
	// one change set.
	for i, tab := range tablets {
		ids := map[string]bool{}
		cur := ""
		for {
			var page struct {
				Receipts []struct {
					ChangesetID string `json:"changeset_id"`
				} `json:"receipts"`
				Cursor  string `json:"cursor"`
				HasMore bool   `json:"has_more"`
			}
			apitest.GetJSON(t, srv.url, admin, "/v1/devices/"+tab.c.DeviceID()+"/receipts?limit=100&cursor="+url.QueryEscape(cur), &page)
			for _, r := range page.Receipts {
				if ids[r.ChangesetID] {
					t.Fatalf("seed %d: change set %s has two receipts", seed, r.ChangesetID)
				}
				ids[r.ChangesetID] = true
			}
			cur = page.Cursor
			if !page.HasMore {
				break
			}
		}
		if len(ids) != tab.pushed {
			t.Fatalf("seed %d: tablet %d had %d change sets acknowledged, the server holds %d receipts", seed, i, tab.pushed, len(ids))
		}
	}
	type history struct {
		Versions []struct {
			Version     int64                            `json:"version"`
			Device      string                           `json:"device"`
			ChangesetID string                           `json:"changeset_id"`
			Changes     map[string]syncproto.FieldChange `json:"changes"`
		} `json:"versions"`
		Conflicts []struct {
			Field    string          `json:"field"`
			Device   string          `json:"device"`
			Incoming json.RawMessage `json:"incoming"`
		} `json:"conflicts"`
	}
	histories := map[string]history{}
	for id, r := range server {
		var h history
		apitest.GetJSON(t, srv.url, admin, "/v1/records/"+r.Entity+"/"+id+"/history", &h)
		seen := map[string]bool{}
		for n, v := range h.Versions {
			if v.Version != int64(n+1) {
				t.Fatalf("seed %d: %s versions %d after %d", seed, id, v.Version, n)
			}
			if v.ChangesetID != "" && seen[v.ChangesetID] {
				t.Fatalf("seed %d: change set %s applied twice to %s", seed, v.ChangesetID, id)
			}
			seen[v.ChangesetID] = true
		}
		histories[id] = h
	}

	// 3. No edit is lost: each value sent is in the record's history (a
	// version that wrote it) or in a recorded conflict.
	for _, e := range sent {
		h, ok := histories[e.record]
		if !ok {
			t.Fatalf("seed %d: record %s edited by %s is not on the server", seed, e.record, e.device)
		}
		found := false
		for _, v := range h.Versions {
			if ch, ok := v.Changes[e.field]; ok && jsonEqual(ch.After, e.value) {
				found = true
			}
		}
		for _, cf := range h.Conflicts {
			if cf.Field == e.field && cf.Device == e.device && jsonEqual(cf.Incoming, e.value) {
				found = true
			}
		}
		if !found {
			t.Fatalf("seed %d: %s's edit %s.%s = %s is neither in the history nor in a conflict", seed, e.device, e.record, e.field, e.value)
		}
	}
}

// jsonEqual compares two JSON values; lists of strings (set fields,
// which the server keeps in a canonical order) compare as sets.
func jsonEqual(a, b json.RawMessage) bool {
	var xs, ys []string
	if json.Unmarshal(a, &xs) == nil && json.Unmarshal(b, &ys) == nil && xs != nil && ys != nil {
		sort.Strings(xs)
		sort.Strings(ys)
		return fmt.Sprint(xs) == fmt.Sprint(ys)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

func sameFields(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !jsonEqual(v, b[k]) {
			return false
		}
	}
	return true
}

// A client process killed right after an edit returned finds the edit in
// its outbox when it starts again, and pushes it.
func TestClientKilledAfterAnEditPushesItOnRestart(t *testing.T) {
	data := t.TempDir()
	cli(t, e2ePassword+"\n", "user", "add", "--create", "--data", data, "--name", "w", "--role", "field_worker", "--scope", "500240107")
	srv := startBinary(t, data)
	tabDir := t.TempDir()
	cli(t, e2ePassword+"\n", "device", "login", "--dir", tabDir, "--server", srv.url, "--user", "w")

	// The child: a test process that creates a household through the
	// client, says so, and waits to be killed.
	cmd := exec.Command(os.Args[0], "-test.run=^TestClientChildProcess$")
	cmd.Env = append(os.Environ(), "FIELDSYNC_CHILD_DEVICE="+filepath.Join(tabDir, "device.db"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("child: %v", err)
	}
	var id string
	if _, err := fmt.Sscanf(line, "created %s", &id); err != nil {
		cmd.Process.Kill()
		t.Fatalf("child said %q", line)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	status := cli(t, "", "device", "status", "--dir", tabDir)
	if !bytes.Contains([]byte(status), []byte("pending changes     1")) {
		t.Fatalf("status after the kill:\n%s", status)
	}
	cli(t, "", "device", "sync", "--dir", tabDir)
	admin := uuid.NewString()
	cli(t, e2ePassword+"\n", "user", "add", "--create", "--data", data, "--name", "boss", "--role", "admin")
	tok := httpLogin(t, srv.url, "boss", e2ePassword, admin)
	var rec syncproto.Record
	apitest.GetJSON(t, srv.url, tok, "/v1/records/household/"+id, &rec)
	if string(rec.Fields["head_name"]) != `"written before the kill"` {
		t.Fatalf("the household on the server: %+v", rec)
	}
}

// TestClientChildProcess is the child of the test above; it does nothing
// in a normal run.
func TestClientChildProcess(t *testing.T) {
	path := os.Getenv("FIELDSYNC_CHILD_DEVICE")
	if path == "" {
		t.Skip("the child process of TestClientKilledAfterAnEditPushesItOnRestart")
	}
	c, err := client.Open(path, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Create(context.Background(), "household", client.Fields{"village": storetest.SouthVillage,
		"head_name": "written before the kill", "members": 2})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("created %s\n", id)
	select {} // killed here, before any sync
}
