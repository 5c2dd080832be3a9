package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// testServer is a real HTTP server over a real SQLite file, with a real
// keyring and accounts: admin, and per test whatever users it adds.
type testServer struct {
	*httptest.Server
	store *sqlite.Store
	push  *syncproto.PushService // the server's, for pushes past HTTP and its cursor codec
	clock *storetest.Clock
	dir   string

	mu     sync.Mutex
	tokens map[string]string // user+device -> access token

	photos *attachments.Store
}

const testPassword = "correct horse battery"

func mustServe(tb testing.TB) *testServer {
	return mustServeWith(tb, &RateLimits{})
}

func mustServeWith(tb testing.TB, rates *RateLimits) *testServer {
	tb.Helper()
	return mustServeConfig(tb, sqlite.Options{}, func(cfg *Config) { cfg.Rates = rates })
}

// mustOpenPhotos opens a photo store in dir, failing the test if it cannot.
func mustOpenPhotos(tb testing.TB, dir string, opts attachments.Options) *attachments.Store {
	tb.Helper()
	photos, err := attachments.Open(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return photos
}

// mustServeConfig is mustServe with the store opened with opts (the clock
// is the test's) and the server's configuration changed by configure (nil
// for none).
func mustServeConfig(tb testing.TB, opts sqlite.Options, configure func(*Config)) *testServer {
	tb.Helper()
	clock := storetest.NewClock(storetest.T0)
	dir := tb.TempDir()
	opts.Now = clock.Now
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, sqlite.FileName), opts)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := auth.OpenKeyring(dir, clock.Now)
	if err != nil {
		tb.Fatal(err)
	}
	limits := DefaultLimits
	limits.MaxBodyBytes = 1 << 20
	limits.MaxChanges = 200
	photos := mustOpenPhotos(tb, filepath.Join(dir, AttachmentsDir), attachments.Options{Now: clock.Now})
	cfg := Config{Store: store, Accounts: store, Keys: keys, Limits: limits, Now: clock.Now, Rates: &RateLimits{}, Attachments: photos}
	if configure != nil {
		configure(&cfg)
	}
	srv := New(cfg)
	ts := httptest.NewServer(srv)
	tb.Cleanup(func() { ts.Close(); store.Close() })
	t := &testServer{Server: ts, store: store, push: srv.push, photos: cfg.Attachments, clock: clock, dir: dir, tokens: map[string]string{}}
	t.addUser(tb, "admin", syncproto.RoleAdmin)
	return t
}

// addUser creates a user with testPassword.
func (ts *testServer) addUser(tb testing.TB, name, role string, scope ...string) {
	tb.Helper()
	hash, err := auth.HashPassword(testPassword)
	if err != nil {
		tb.Fatal(err)
	}
	if err := ts.store.PutUser(context.Background(), auth.User{Name: name, PasswordHash: hash, Role: role, Scope: scope}); err != nil {
		tb.Fatal(err)
	}
}

// login returns an access token of user on device (cached).
func (ts *testServer) login(tb testing.TB, user, device string) string {
	tb.Helper()
	ts.mu.Lock()
	tok, ok := ts.tokens[user+"/"+device]
	ts.mu.Unlock()
	if ok {
		return tok
	}
	tr := ts.loginResponse(tb, user, testPassword, device, 200)
	ts.mu.Lock()
	ts.tokens[user+"/"+device] = tr.AccessToken
	ts.mu.Unlock()
	return tr.AccessToken
}

func (ts *testServer) loginResponse(tb testing.TB, user, password, device string, wantStatus int) tokenResponse {
	tb.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": password, "device_id": device})
	resp, body := ts.doAs(tb, "", http.MethodPost, "/v1/auth/token", "application/json", b)
	if resp.StatusCode != wantStatus {
		tb.Fatalf("login %s: %d %s", user, resp.StatusCode, body)
	}
	var tr tokenResponse
	_ = json.Unmarshal(body, &tr)
	return tr
}

const adminDevice = "0193a000-0000-7000-8000-0000000000ad"

// do sends a request as the admin.
func (ts *testServer) do(tb testing.TB, method, path, contentType string, body []byte) (*http.Response, []byte) {
	tb.Helper()
	return ts.doAs(tb, ts.login(tb, "admin", adminDevice), method, path, contentType, body)
}

// doAs sends a request with a bearer token (none when token is empty).
func (ts *testServer) doAs(tb testing.TB, token, method, path, contentType string, body []byte) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// pushJSON pushes a change set as the admin logged in on its device.
func (ts *testServer) pushJSON(tb testing.TB, cs syncproto.Changeset) (*http.Response, []byte) {
	tb.Helper()
	b, err := json.Marshal(cs)
	if err != nil {
		tb.Fatal(err)
	}
	return ts.doAs(tb, ts.login(tb, "admin", cs.DeviceID), http.MethodPost, "/v1/sync/push", "application/json", b)
}

// counts returns the number of rows of every table, to prove that a
// request wrote nothing.
func (ts *testServer) counts(tb testing.TB) map[string]int {
	tb.Helper()
	db, err := openReadOnly(ts.store.Path())
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	out := map[string]int{}
	for _, table := range []string{"records", "changes", "receipts", "devices", "conflicts", "quarantine"} {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
			tb.Fatal(err)
		}
		out[table] = n
	}
	return out
}

func validChangeset() syncproto.Changeset {
	d := storetest.NewDevice("li.na")
	hh := uuid.NewString()
	return d.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0),
		storetest.HousingInspection(uuid.NewString(), hh, "C", storetest.T0))
}

func TestPushAndPullOverHTTP(t *testing.T) {
	ts := mustServe(t)
	cs := validChangeset()
	resp, body := ts.pushJSON(t, cs)
	if resp.StatusCode != 200 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	var pr syncproto.PushResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Replayed || len(pr.Results) != 2 || pr.Results[1].Status != "applied" || pr.Results[1].Version != 1 {
		t.Fatalf("push response %s", body)
	}
	resp, again := ts.pushJSON(t, cs)
	var rp syncproto.PushResponse
	_ = json.Unmarshal(again, &rp)
	if resp.StatusCode != 200 || !rp.Replayed {
		t.Fatalf("replay: %d %s", resp.StatusCode, again)
	}
	if want := strings.Replace(string(body), `"replayed":false`, `"replayed":true`, 1); want != string(again) {
		t.Fatalf("replay body differs:\n%s\n%s", body, again)
	}
	resp, body = ts.do(t, http.MethodGet, "/v1/sync/pull?limit=1", "", nil)
	var page syncproto.PullResponse
	if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("pull: %d %s", resp.StatusCode, body)
	}
	if len(page.Records) != 1 || !page.HasMore || page.Records[0].Entity != "household" {
		t.Fatalf("first page %s", body)
	}
	_, body = ts.do(t, http.MethodGet, "/v1/sync/pull?limit=5&cursor="+page.Cursor, "", nil)
	_ = json.Unmarshal(body, &page)
	if len(page.Records) != 1 || page.HasMore || page.Records[0].Entity != "housing_inspection" {
		t.Fatalf("second page %s", body)
	}
	resp, body = ts.do(t, http.MethodGet, "/v1/records/housing_inspection/"+cs.Changes[1].ID+"/history", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"grade":{"before":null,"after":"C"}`) {
		t.Fatalf("history: %d %s", resp.StatusCode, body)
	}
}

func TestServiceEndpoints(t *testing.T) {
	ts := mustServe(t)
	cases := []struct {
		name, method, path string
		status             int
		contains           string
		contentType        string
	}{
		{"healthz", "GET", "/healthz", 200, `"ok"`, "application/json"},
		{"readyz", "GET", "/readyz", 200, `"ready"`, "application/json"},
		{"schema", "GET", "/v1/schema", 200, `"schema_version":1`, "application/json"},
		{"schema has policies", "GET", "/v1/schema", 200, `"policy":"safety_first"`, "application/json"},
		{"unknown path", "GET", "/v1/nope", 404, `"status":404`, "application/problem+json"},
		{"wrong method", "DELETE", "/v1/sync/push", 405, `"status":405`, "application/problem+json"},
		{"unknown entity record", "GET", "/v1/records/school/" + uuid.NewString(), 404, `path.entity`, "application/problem+json"},
		{"traversal record id", "GET", "/v1/records/household/..%2F..%2Fetc", 404, `path.id`, "application/problem+json"},
		{"missing record", "GET", "/v1/records/household/" + uuid.NewString(), 404, `no record`, "application/problem+json"},
		{"bad limit", "GET", "/v1/sync/pull?limit=-1", 422, `query.limit`, "application/problem+json"},
		{"absurd limit", "GET", "/v1/sync/pull?limit=99999999999999999999", 422, `query.limit`, "application/problem+json"},
		{"forged cursor", "GET", "/v1/sync/pull?cursor=AAAA", 422, `"path":"cursor"`, "application/problem+json"},
		{"cursor ahead", "GET", "/v1/sync/pull?cursor=" + ts.push.Cursors().Encode(syncproto.Cursor{Seq: 99}), 422, `ahead`, "application/problem+json"},
		{"unknown parameter", "GET", "/v1/sync/pull?since=1", 400, `query.since`, "application/problem+json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.do(t, c.method, c.path, "", nil)
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.contains) {
				t.Fatalf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.contentType) {
				t.Fatalf("content type %q, want %s", ct, c.contentType)
			}
		})
	}
}

// TestBadPushesWriteNothing sends hostile and malformed pushes: each gets
// a documented 4xx problem with the offending path, and the database is
// unchanged.
func TestBadPushesWriteNothing(t *testing.T) {
	ts := mustServe(t)
	good := validChangeset()
	goodJSON, _ := json.Marshal(good)
	replace := func(from, to string) []byte {
		if !strings.Contains(string(goodJSON), from) {
			t.Fatalf("fixture lacks %q", from)
		}
		return []byte(strings.Replace(string(goodJSON), from, to, 1))
	}
	tooMany := good
	tooMany.Changes = nil
	for i := 0; i < 201; i++ {
		tooMany.Changes = append(tooMany.Changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	}
	tooManyJSON, _ := json.Marshal(tooMany)
	dup := good
	dup.Changes = []syncproto.Change{good.Changes[0], good.Changes[0]}
	dupJSON, _ := json.Marshal(dup)
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	hundredThousand := []byte(`{"changeset_id":"` + good.ChangesetID + `","device_id":"` + good.DeviceID +
		`","device_seq":1,"schema_version":1,"changes":[` +
		strings.TrimSuffix(strings.Repeat(`{"entity":"household","id":"x","op":"delete","base_version":1,"at":"2026-11-20T08:00:00Z"},`, 100000), ",") + `]}`)

	cases := []struct {
		name        string
		body        []byte
		contentType string
		status      int
		path        string
	}{
		{"malformed json", []byte(`{"changeset_id": "x",`), "application/json", 400, "$"},
		{"truncated json", goodJSON[:len(goodJSON)/2], "application/json", 400, "$"},
		{"empty body", nil, "application/json", 400, "$"},
		{"not an object", []byte(`[1,2,3]`), "application/json", 400, "$"},
		{"wrong type", replace(`"device_seq":1`, `"device_seq":"one"`), "application/json", 400, "device_seq"},
		{"huge number", replace(`"device_seq":1`, `"device_seq":123456789012345678901234567890`), "application/json", 400, "device_seq"},
		{"NaN-like string", replace(`"device_seq":1`, `"device_seq":"NaN"`), "application/json", 400, "device_seq"},
		{"infinity-like number", replace(`"base_version":0`, `"base_version":1e999`), "application/json", 400, "changes[0].base_version"},
		{"100,000 changes", hundredThousand, "application/json", 413, ""},
		{"sql in changeset id", replace(`"changeset_id":"`+good.ChangesetID+`"`, `"changeset_id":"1' OR '1'='1"`), "application/json", 422, "changeset_id"},
		{"deeply nested", replace(`"head_name":"陈秀英"`, `"head_name":`+deep), "application/json", 400, ""},
		{"invalid utf8", replace(`陈秀英`, "\xff\xfe"), "application/json", 400, "$"},
		{"wrong content type", goodJSON, "text/plain", 400, "header.Content-Type"},
		{"unknown entity", replace(`"entity":"household"`, `"entity":"school"`), "application/json", 422, "changes[0].entity"},
		{"path traversal id", replace(`"id":"`+good.Changes[0].ID+`"`, `"id":"../../../etc/passwd"`), "application/json", 422, "changes[0].id"},
		{"sql in id", replace(`"id":"`+good.Changes[0].ID+`"`, `"id":"'; DROP TABLE records; --"`), "application/json", 422, "changes[0].id"},
		{"duplicate record ids", dupJSON, "application/json", 422, "changes[1].id"},
		{"too many changes", tooManyJSON, "application/json", 413, "changes"},
		{"oversized body", replace(`"head_name":"陈秀英"`, `"head_name":"`+strings.Repeat("x", 2<<20)+`"`), "application/json", 413, ""},
	}
	before := ts.counts(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ts.do(t, http.MethodPost, "/v1/sync/push", c.contentType, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p Problem
			if err := json.Unmarshal(body, &p); err != nil || p.Status != c.status || p.Type == "" || p.Title == "" {
				t.Fatalf("problem %s (%v)", body, err)
			}
			if c.path != "" {
				found := false
				for _, e := range p.Errors {
					found = found || e.Path == c.path
				}
				if !found {
					t.Fatalf("problem %s lacks path %s", body, c.path)
				}
			}
		})
	}
	if after := ts.counts(t); !equalCounts(before, after) {
		t.Fatalf("bad pushes wrote: before %v after %v", before, after)
	}
	if resp, _ := ts.do(t, http.MethodGet, "/healthz", "", nil); resp.StatusCode != 200 {
		t.Fatal("server unhealthy after bad input")
	}
}

// TestInvalidFieldsAreQuarantined: schema violations inside a valid change
// set are rejected per change, kept in quarantine, and the rest applies.
func TestInvalidFieldsAreQuarantined(t *testing.T) {
	ts := mustServe(t)
	d := storetest.NewDevice("li.na")
	hh := uuid.NewString()
	cases := map[string]syncproto.Change{
		"fields.grade":        storetest.Upsert("housing_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": hh, "grade": "E", "inspected_on": "2026-11-20", "ventilation": "adequate"}),
		"fields.colour":       storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{"village": storetest.SouthVillage, "head_name": "x", "colour": "red"}),
		"fields.members":      storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{"village": storetest.SouthVillage, "head_name": "x", "members": 1e300}),
		"fields.household_id": storetest.Upsert("water_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": uuid.NewString(), "inspected_on": "2026-11-20"}),
		"fields.village":      storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{"village": "5002401072", "head_name": "x"}),
		"fields.head_name":    storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{"village": storetest.SouthVillage}),
		"fields.quality_ok":   storetest.Upsert("water_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": hh, "inspected_on": "2026-11-20", "quality_ok": "NaN"}),
	}
	changes := []syncproto.Change{storetest.Household(hh, storetest.SouthVillage, storetest.T0)}
	var wantPaths []string
	for path, ch := range cases {
		changes = append(changes, ch)
		wantPaths = append(wantPaths, path)
	}
	resp, body := ts.pushJSON(t, d.Changeset(changes...))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var pr syncproto.PushResponse
	_ = json.Unmarshal(body, &pr)
	if pr.Results[0].Status != "applied" {
		t.Fatalf("valid household not applied: %+v", pr.Results[0])
	}
	for i, path := range wantPaths {
		r := pr.Results[i+1]
		if r.Status != "rejected" || len(r.Errors) == 0 || r.Errors[0].Path != path {
			t.Errorf("%s: %+v", path, r)
		}
	}
	c := ts.counts(t)
	if c["records"] != 1 || c["quarantine"] != len(cases) {
		t.Fatalf("counts %v", c)
	}
}

func equalCounts(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

func openReadOnly(path string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
}

// TestHistoryShowsConflictsWithoutVersion: a manual conflict makes no new
// version, yet it must be visible in the record's history.
func TestHistoryShowsConflictsWithoutVersion(t *testing.T) {
	ts := mustServe(t)
	a, b := storetest.NewDevice("li.na"), storetest.NewDevice("zhao.lei")
	hh := uuid.NewString()
	if resp, body := ts.pushJSON(t, a.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0))); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	a.Push(t, ts.push, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 6}))
	resp := b.Push(t, ts.push, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 7}))
	if resp.Results[0].Status != "conflict" {
		t.Fatalf("%+v", resp.Results[0])
	}
	_, body := ts.do(t, http.MethodGet, "/v1/records/household/"+hh+"/history", "", nil)
	var h struct {
		Versions  []json.RawMessage `json:"versions"`
		Conflicts []struct {
			ConflictID string          `json:"conflict_id"`
			State      string          `json:"state"`
			Incoming   json.RawMessage `json:"incoming"`
		} `json:"conflicts"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Versions) != 2 || len(h.Conflicts) != 1 || h.Conflicts[0].ConflictID != resp.Results[0].Conflicts[0].ConflictID ||
		h.Conflicts[0].State != "open" || string(h.Conflicts[0].Incoming) != "7" {
		t.Fatalf("history %s", body)
	}
}
