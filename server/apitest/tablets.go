package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto/client"
	"github.com/google/uuid"
)

// The Go client against an in-process server (real HTTP, real SQLite on
// both sides) whose clock the tests move.

// NewTablet opens a tablet's client on a new device database, on the
// harness's clock and HTTP client, logged in as user.
func NewTablet(t testing.TB, ts *Server, user string, opts client.Options) *client.Client {
	t.Helper()
	if opts.HTTP == nil {
		opts.HTTP = ts.Client()
	}
	if opts.Now == nil {
		opts.Now = ts.Clock.Now
	}
	opts.MinBackoff, opts.MaxBackoff = time.Millisecond, 20*time.Millisecond
	c, err := client.Open(filepath.Join(t.TempDir(), "device.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(context.Background(), ts.URL, user, TestPassword); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// MustSync syncs c, failing the test on an error.
func MustSync(t testing.TB, c *client.Client) client.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := c.Sync(ctx)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return rep
}

// FieldOf is a field of a client record as its JSON text.
func FieldOf(t testing.TB, r client.Record, name string) string {
	t.Helper()
	return string(r.Fields[name])
}

// SeedHousehold pushes a household (and a housing inspection of it) as the
// admin and returns their ids.
func SeedHousehold(t testing.TB, ts *Server) (hh, ins string) {
	t.Helper()
	hh, ins = uuid.NewString(), uuid.NewString()
	d := storetest.NewDevice("admin")
	d.Actor.DeviceID = AdminDevice
	if resp, b := ts.PushJSON(t, d.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0),
		storetest.HousingInspection(ins, hh, "B", storetest.T0))); resp.StatusCode != 200 {
		t.Fatalf("seed: %d %s", resp.StatusCode, b)
	}
	return hh, ins
}

// GetJSON GETs path as token and decodes the answer.
func GetJSON(tb testing.TB, base, token, path string, out any) {
	tb.Helper()
	resp, err := Authed(http.MethodGet, base+path, token, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		tb.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
}

// Authed sends a request with a bearer token through HTTPClient.
func Authed(method, url, token string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return HTTPClient.Do(req)
}

// HTTPClient is the client of tests against a real process: it gives up
// after 20 s, so that a hung server fails the test instead of hanging it.
var HTTPClient = &http.Client{Timeout: 20 * time.Second}

// ClientFrom returns an HTTP client whose connections leave from the
// loopback address ip (127.0.0.x), so that the server sees that address
// as the client's.
func ClientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: d.DialContext,
		MaxIdleConnsPerHost: 64}}
}

// PostLogin sends a login from client and returns the status, the
// Retry-After header and the body.
func PostLogin(tb testing.TB, client *http.Client, url, user, password, device string) (int, string, []byte) {
	tb.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": password, "device_id": device})
	resp, err := client.Post(url+"/v1/auth/token", "application/json", bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), body
}
