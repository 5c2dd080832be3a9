package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/sqlite"
)

// lines parses the JSON log lines.
func (s *logBuffer) lines(tb testing.TB) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			tb.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// waitForRequests waits until n access-log lines were written (the line
// is written once the answer is sent, so the client may see the answer
// first).
func (s *logBuffer) waitForRequests(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(s.String(), `"msg":"request"`) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d request lines logged, want %d:\n%s", strings.Count(s.String(), `"msg":"request"`), n, s.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLogsCarryRequestIDAndNoSecrets logs in (right and wrong password),
// refreshes and calls with a bad token, logging JSON at debug level:
// every line of a request carries its request id — the client's
// X-Request-Id when acceptable, a new one otherwise, echoed in the
// response — and no line holds a password, a token or an Authorization
// header.
func TestLogsCarryRequestIDAndNoSecrets(t *testing.T) {
	logs := &logBuffer{}
	logger, err := NewLogger(logs, LogFormatJSON, "debug")
	if err != nil {
		t.Fatal(err)
	}
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *Config) { cfg.Logger = logger })
	device := uuid.NewString()
	send := func(id, token, path string, body any) (*http.Response, []byte) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out bytes.Buffer
		_, _ = out.ReadFrom(resp.Body)
		return resp, out.Bytes()
	}

	const wrong = "not-the-password-8472"
	resp, body := send("tablet-42.req-0001", "", "/v1/auth/token", map[string]string{"username": "admin", "password": apitest.TestPassword, "device_id": device})
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "tablet-42.req-0001" {
		t.Fatalf("login: %d, X-Request-Id %q: %s", resp.StatusCode, resp.Header.Get("X-Request-Id"), body)
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	refusedIDs := []string{"has space", strings.Repeat("x", 129), "caf\u00e9"}
	for _, id := range refusedIDs {
		resp, _ = send(id, "", "/v1/auth/token", map[string]string{"username": "admin", "password": wrong, "device_id": device})
		got := resp.Header.Get("X-Request-Id")
		if resp.StatusCode != 401 || got == id {
			t.Fatalf("wrong password with request id %q: %d, echoed %q", id, resp.StatusCode, got)
		}
		if _, err := uuid.Parse(got); err != nil {
			t.Fatalf("generated request id %q is not a UUID", got)
		}
	}
	resp, body = send("", "", "/v1/auth/refresh", map[string]string{"refresh_token": tr.RefreshToken})
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	var tr2 TokenResponse
	_ = json.Unmarshal(body, &tr2)
	resp, _ = send("", tr.AccessToken+"x", "/v1/sync/push", map[string]any{})
	if resp.StatusCode != 401 {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}
	resp, _ = send("", tr2.AccessToken, "/v1/sync/push", map[string]any{})
	if resp.StatusCode != 422 {
		t.Fatalf("empty push: %d", resp.StatusCode)
	}
	logs.waitForRequests(t, 7)

	text := logs.String()
	secrets := map[string]string{"password": apitest.TestPassword, "wrong password": wrong, "access token": tr.AccessToken,
		"refresh token": tr.RefreshToken, "second refresh token": tr2.RefreshToken, "Authorization header": "Bearer"}
	for _, part := range []string{tr.RefreshToken, tr2.RefreshToken} {
		if _, secret, ok := strings.Cut(part, "."); ok {
			secrets["refresh secret"] = secret
		}
	}
	for what, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("the log holds the %s:\n%s", what, text)
		}
	}
	// Every line was written while serving a request and carries its id;
	// the login's lines carry the client's.
	byID := map[string][]string{}
	for _, l := range logs.lines(t) {
		id, _ := l["request_id"].(string)
		if id == "" {
			t.Errorf("log line without request_id: %v", l)
		}
		byID[id] = append(byID[id], l["msg"].(string))
	}
	if got := strings.Join(byID["tablet-42.req-0001"], ","); got != "login,request" {
		t.Errorf("lines of the login request: %s", got)
	}
	if len(byID) != 7 {
		t.Errorf("%d request ids in the log, want 7: %v", len(byID), byID)
	}
}

func TestNewLoggerRefusesBadSettings(t *testing.T) {
	for _, c := range [][2]string{{"xml", "info"}, {"json", "loud"}, {"text", "info+2"}, {"", "info"}} {
		if _, err := NewLogger(&bytes.Buffer{}, c[0], c[1]); err == nil {
			t.Errorf("format %q level %q accepted", c[0], c[1])
		}
	}
	for _, c := range [][2]string{{"json", "debug"}, {"text", "WARN"}, {"auto", "error"}} {
		if _, err := NewLogger(&bytes.Buffer{}, c[0], c[1]); err != nil {
			t.Errorf("format %q level %q: %v", c[0], c[1], err)
		}
	}
}
