package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
)

// TestLogsCarryRequestIDAndNoSecrets logs in (right and wrong password),
// refreshes and calls with a bad token, logging JSON at debug level:
// every line of a request carries its request id — the client's
// X-Request-Id when acceptable, a new one otherwise, echoed in the
// response — and no line holds a password, a token or an Authorization
// header.
func TestLogsCarryRequestIDAndNoSecrets(t *testing.T) {
	logs := &apitest.LogBuffer{}
	logger, err := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), error(nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.Logger = logger })
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
	var tr api.TokenResponse
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
	var tr2 api.TokenResponse
	_ = json.Unmarshal(body, &tr2)
	resp, _ = send("", tr.AccessToken+"x", "/v1/sync/push", map[string]any{})
	if resp.StatusCode != 401 {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}
	resp, _ = send("", tr2.AccessToken, "/v1/sync/push", map[string]any{})
	if resp.StatusCode != 422 {
		t.Fatalf("empty push: %d", resp.StatusCode)
	}
	logs.WaitForRequests(t, 7)

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
	for _, l := range logs.Lines(t) {
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
