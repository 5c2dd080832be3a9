package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// problemAt fails the test unless the answer is status with a problem
// document naming path.
func problemAt(tb testing.TB, what string, resp *http.Response, body []byte, status int, path string) {
	tb.Helper()
	var p api.Problem
	_ = json.Unmarshal(body, &p)
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" || len(p.Errors) == 0 || p.Errors[0].Path != path {
		tb.Fatalf("%s: %d %s, want %d naming %s", what, resp.StatusCode, body, status, path)
	}
}

// TestPushRateLimitIsCheckedBeforeTheBody: a device over its push rate
// is refused with 429 before the server reads a byte of the body. The
// second push below announces 900 KB and sends only its first bytes; the
// answer must come while the rest is still unsent (the old handler read
// the whole body, then decoded it, then asked the rate limiter).
func TestPushRateLimitIsCheckedBeforeTheBody(t *testing.T) {
	ts := apitest.MustServeWith(t, &api.RateLimits{PushPerDevice: api.Rate{Every: time.Hour, Burst: 1}})
	cs := apitest.ValidChangeset()
	resp, body := ts.PushJSON(t, cs)
	pushedNew(t, resp, body)

	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/sync/push", pr)
	req.ContentLength = 900_000
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+ts.Login(t, "admin", cs.DeviceID))
	go func() { _, _ = pw.Write([]byte(`{"changeset_id":"`)) }() // and nothing more
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := ts.Client().Do(req)
		if err == nil {
			answered <- resp
		}
	}()
	select {
	case resp := <-answered:
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("over the rate: %d %s", resp.StatusCode, b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer while the body was unsent: the server waits for the body before refusing")
	}
}

// TestPushRefusesRepeatedKeysAndLongLists: a push whose change repeats a
// field ({"village": A, "village": B}) is a 400 naming
// changes[0].fields.village, one whose hazards list is longer than the
// hard cap of a set (here 100,000 items) a 413 naming
// changes[0].fields.hazards; both
// write nothing. (The old server applied the last village, and decoded,
// validated and stored every hazard.)
func TestPushRefusesRepeatedKeysAndLongLists(t *testing.T) {
	ts := apitest.MustServe(t)
	before := ts.Counts(t)
	token := ts.Login(t, "admin", apitest.AdminDevice)
	cs := apitest.ValidChangeset()
	cs.DeviceID = apitest.AdminDevice
	b, _ := json.Marshal(cs)
	village := string(cs.Changes[0].Fields["village"])
	repeated := strings.Replace(string(b), `"village":`+village, `"village":`+village+`,"village":"500240107202"`, 1)
	if repeated == string(b) {
		t.Fatal("the change set has no village to repeat")
	}
	resp, body := ts.DoAs(t, token, http.MethodPost, "/v1/sync/push", "application/json", []byte(repeated))
	problemAt(t, "a repeated field", resp, body, 400, "changes[0].fields.village")

	hazards := make([]string, 100_000)
	for i := range hazards {
		hazards[i] = "roof"
	}
	h, _ := json.Marshal(hazards)
	cs.Changes[1].Fields["hazards"] = h
	b, _ = json.Marshal(cs)
	resp, body = ts.DoAs(t, token, http.MethodPost, "/v1/sync/push", "application/json", b)
	problemAt(t, "100,000 hazards", resp, body, 413, "changes[1].fields.hazards")

	if after := ts.Counts(t); !equalCounts(before, after) {
		t.Fatalf("refused pushes wrote: %v -> %v", before, after)
	}
}

// TestEveryJSONBodyRefusesRepeatedKeys: login, refresh, the missing-photo
// query, a conflict's resolution and a duplicate's merge each refuse a
// repeated key with a 400 naming it, before acting on the body.
func TestEveryJSONBodyRefusesRepeatedKeys(t *testing.T) {
	ts := apitest.MustServe(t)
	id := uuid.NewString()
	token := ts.Login(t, "admin", apitest.AdminDevice)
	for _, c := range []struct{ path, body, want string }{
		{"/v1/auth/token", `{"username":"admin","password":"x","username":"other","device_id":"` + apitest.AdminDevice + `"}`, "username"},
		{"/v1/auth/refresh", `{"refresh_token":"a.b","refresh_token":"c.d"}`, "refresh_token"},
		{"/v1/attachments/missing", `{"hashes":[],"hashes":["` + strings.Repeat("a", 64) + `"]}`, "hashes"},
		{"/v1/conflicts/" + id + "/resolve", `{"choose":"kept","note":"a","note":"b"}`, "note"},
		{"/v1/duplicates/" + id + "/merge", `{"survivor":"` + id + `","survivor":"` + id + `"}`, "survivor"},
	} {
		resp, body := ts.DoAs(t, token, http.MethodPost, c.path, "application/json", []byte(c.body))
		problemAt(t, c.path, resp, body, 400, c.want)
	}
	hashes := `{"hashes":[` + strings.TrimSuffix(strings.Repeat(`"`+strings.Repeat("b", 64)+`",`, syncproto.MaxMissingHashes+1), ",") + `]}`
	resp, body := ts.DoAs(t, token, http.MethodPost, "/v1/attachments/missing", "application/json", []byte(hashes))
	problemAt(t, "too many hashes", resp, body, 413, "hashes")
}
