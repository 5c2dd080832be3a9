// Package apitest is the test harness of fieldsync's HTTP API: a real
// router (api.New) over a real SQLite file in a temporary directory, with
// a real keyring, real accounts and a photo store, and a clock the test
// sets. The tests of api, cli and syncproto/client use it, and the helpers
// that speak the API as a tablet or a supervisor would.
//
// It may import anything of fieldsync; nothing but tests imports it.
package apitest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/google/uuid"
)

// Server is a real HTTP server over a real SQLite file, with a real
// keyring and accounts: admin, and per test whatever users it adds.
type Server struct {
	*httptest.Server
	Store *sqlite.Store
	// Push is a push service over the store with the server's schema and
	// clock: for pushes past HTTP, and its cursor codec.
	Push  *syncproto.PushService
	Clock *storetest.Clock
	Dir   string

	mu     sync.Mutex
	tokens map[string]string // user+device -> access token

	Photos *attachments.Store
}

// TestPassword is the password of every user the harness adds.
const TestPassword = "correct horse battery"

// MustServe starts a harness server with no rate limits, failing the test
// if it cannot.
func MustServe(tb testing.TB) *Server {
	return MustServeWith(tb, &api.RateLimits{})
}

// MustServeWith is MustServe with the given rate limits.
func MustServeWith(tb testing.TB, rates *api.RateLimits) *Server {
	tb.Helper()
	return MustServeConfig(tb, sqlite.Options{}, func(cfg *api.Config) { cfg.Rates = rates })
}

// MustOpenPhotos opens a photo store in dir, failing the test if it cannot.
func MustOpenPhotos(tb testing.TB, dir string, opts attachments.Options) *attachments.Store {
	tb.Helper()
	photos, err := attachments.Open(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return photos
}

// MustServeConfig is MustServe with the store opened with opts (the clock
// is the test's) and the server's configuration changed by configure (nil
// for none).
func MustServeConfig(tb testing.TB, opts sqlite.Options, configure func(*api.Config)) *Server {
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
	limits := api.DefaultLimits
	limits.MaxBodyBytes = 1 << 20
	limits.MaxChanges = 200
	photos := MustOpenPhotos(tb, filepath.Join(dir, "attachments"), attachments.Options{Now: clock.Now})
	cfg := api.Config{Store: store, Accounts: store, Keys: keys, Limits: limits, Now: clock.Now, Rates: &api.RateLimits{}, Attachments: photos,
		Version: Version}
	if configure != nil {
		configure(&cfg)
	}
	ts := httptest.NewServer(api.New(cfg))
	tb.Cleanup(func() { ts.Close(); store.Close() })
	// The harness's own push takes the forms as api.New does: the
	// built-in set when the configuration names none.
	popts := syncproto.PushOptions{Schema: cfg.Schema, Catalog: cfg.Catalog, Now: cfg.Now}
	if popts.Schema == nil && popts.Catalog == nil {
		popts.Catalog = schema.BuiltIn()
	}
	// The store keeps the coverage aggregates, as serve has it do.
	sch := popts.Schema
	if popts.Catalog != nil {
		sch = popts.Catalog.Latest()
	}
	if err := store.KeepSummaries(context.Background(), survey.NewSummarizer(sch), clock.Now()); err != nil {
		tb.Fatal(err)
	}
	// And the households' verdicts (a roll-up read judges the few pending
	// itself: the harness runs no background refresher).
	if j, err := syncproto.NewVerdictJudge(sch); err == nil {
		if err := store.KeepVerdicts(context.Background(), j, clock.Now()); err != nil {
			tb.Fatal(err)
		}
	}
	push := syncproto.NewPushService(store, popts)
	t := &Server{Server: ts, Store: store, Push: push, Photos: cfg.Attachments, Clock: clock, Dir: dir, tokens: map[string]string{}}
	t.AddUser(tb, "admin", syncproto.RoleAdmin)
	return t
}

// addUser creates a user with TestPassword.
func (ts *Server) AddUser(tb testing.TB, name, role string, scope ...string) {
	tb.Helper()
	hash, err := auth.HashPassword(TestPassword)
	if err != nil {
		tb.Fatal(err)
	}
	if err := ts.Store.PutUser(context.Background(), auth.User{Name: name, PasswordHash: hash, Role: role, Scope: scope}); err != nil {
		tb.Fatal(err)
	}
}

// login returns an access token of user on device (cached).
func (ts *Server) Login(tb testing.TB, user, device string) string {
	tb.Helper()
	ts.mu.Lock()
	tok, ok := ts.tokens[user+"/"+device]
	ts.mu.Unlock()
	if ok {
		return tok
	}
	tr := ts.LoginResponse(tb, user, TestPassword, device, 200)
	ts.mu.Lock()
	ts.tokens[user+"/"+device] = tr.AccessToken
	ts.mu.Unlock()
	return tr.AccessToken
}

// LoginResponse logs user in on device with password and fails the test
// unless the answer has wantStatus; it returns the token answer.
func (ts *Server) LoginResponse(tb testing.TB, user, password, device string, wantStatus int) api.TokenResponse {
	tb.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": password, "device_id": device})
	resp, body := ts.DoAs(tb, "", http.MethodPost, "/v1/auth/token", "application/json", b)
	if resp.StatusCode != wantStatus {
		tb.Fatalf("login %s: %d %s", user, resp.StatusCode, body)
	}
	var tr api.TokenResponse
	_ = json.Unmarshal(body, &tr)
	return tr
}

// AdminDevice is the device the harness's admin logs in on.
const AdminDevice = "0193a000-0000-7000-8000-0000000000ad"

// do sends a request as the admin.
func (ts *Server) Do(tb testing.TB, method, path, contentType string, body []byte) (*http.Response, []byte) {
	tb.Helper()
	return ts.DoAs(tb, ts.Login(tb, "admin", AdminDevice), method, path, contentType, body)
}

// doAs sends a request with a bearer token (none when token is empty).
func (ts *Server) DoAs(tb testing.TB, token, method, path, contentType string, body []byte) (*http.Response, []byte) {
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
func (ts *Server) PushJSON(tb testing.TB, cs syncproto.Changeset) (*http.Response, []byte) {
	tb.Helper()
	b, err := json.Marshal(cs)
	if err != nil {
		tb.Fatal(err)
	}
	return ts.DoAs(tb, ts.Login(tb, "admin", cs.DeviceID), http.MethodPost, "/v1/sync/push", "application/json", b)
}

// counts returns the number of rows of every table, to prove that a
// request wrote nothing.
func (ts *Server) Counts(tb testing.TB) map[string]int {
	tb.Helper()
	db, err := OpenReadOnly(ts.Store.Path())
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

// ValidChangeset is a change set of a new household in the south and its
// housing inspection, from a new device of li.na.
func ValidChangeset() syncproto.Changeset {
	d := storetest.NewDevice("li.na")
	hh := uuid.NewString()
	return d.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0),
		storetest.HousingInspection(uuid.NewString(), hh, "C", storetest.T0))
}

// OpenReadOnly opens an SQLite file read-only, to look at what a request
// wrote.
func OpenReadOnly(path string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
}

// MustProblem decodes a problem answer and fails the test unless it has
// status and the problem media type.
func MustProblem(tb testing.TB, resp *http.Response, body []byte, status int) api.Problem {
	tb.Helper()
	if resp.StatusCode != status {
		tb.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("content type %q: %s", ct, body)
	}
	var p api.Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Status != status {
		tb.Fatalf("problem %s: %v", body, err)
	}
	return p
}

// snapshot requests GET /v1/snapshot?query with token and fails the test
// unless it answers 200.
func (ts *Server) Snapshot(tb testing.TB, token, query string) (*http.Response, []byte) {
	tb.Helper()
	resp, body := ts.DoAs(tb, token, http.MethodGet, "/v1/snapshot?"+query, "", nil)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("snapshot ?%s: %d %s", query, resp.StatusCode, body)
	}
	if resp.Header.Get("X-Snapshot-Cursor") == "" {
		tb.Fatalf("snapshot ?%s without %s", query, "X-Snapshot-Cursor")
	}
	return resp, body
}

// NDJSONRecords decodes an NDJSON body: one record per line.
func NDJSONRecords(tb testing.TB, body []byte) map[string]syncproto.Record {
	tb.Helper()
	out := map[string]syncproto.Record{}
	for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		if line == "" {
			continue
		}
		var r syncproto.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			tb.Fatalf("ndjson line %q: %v", line, err)
		}
		out[r.ID] = r
	}
	return out
}

// MustPush pushes a change set as the admin and fails the test unless it
// is accepted and no change is rejected.
func (ts *Server) MustPush(tb testing.TB, cs syncproto.Changeset) {
	tb.Helper()
	resp, body := ts.PushJSON(tb, cs)
	mustAccept(tb, resp, body)
}

// mustAccept fails the test unless a push answered 200 with no change
// rejected.
func mustAccept(tb testing.TB, resp *http.Response, body []byte) {
	tb.Helper()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	var pr syncproto.PushResponse
	_ = json.Unmarshal(body, &pr)
	for _, r := range pr.Results {
		if r.Status == syncproto.StatusRejected {
			tb.Fatalf("push rejected %s: %v", r.ID, r.Errors)
		}
	}
}

// Beside is a server over the same store, clock and directory as ts but
// with other's router (another configuration of the API), with tokens of
// its own.
func (ts *Server) Beside(other *httptest.Server) *Server {
	return &Server{Server: other, Store: ts.Store, Push: ts.Push, Clock: ts.Clock, Dir: ts.Dir, Photos: ts.Photos, tokens: map[string]string{}}
}

// Version is the version the harness's servers report (api.Config.Version).
const Version = "apitest"
