package api_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// editPayload returns token with its claims changed by edit and the
// original signature kept.
func editPayload(tb testing.TB, token string, edit func(map[string]any)) string {
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var claims map[string]any
	_ = json.Unmarshal(raw, &claims)
	edit(claims)
	b, _ := json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestEveryBadTokenIs401(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240")
	ts.AddUser(t, "gone", syncproto.RoleFieldWorker, "500240")
	lostDevice := uuid.NewString()
	good := ts.Login(t, "li.na", uuid.NewString())
	lost := ts.Login(t, "li.na", lostDevice)
	disabledUser := ts.Login(t, "gone", uuid.NewString())
	expiring := ts.Login(t, "li.na", uuid.NewString())
	kid := func() string {
		b, _ := os.ReadFile(filepath.Join(ts.Dir, "keys", "current"))
		return strings.TrimSpace(string(b))
	}()
	claims := auth.NewClaims("li.na", syncproto.RoleAdmin, nil, uuid.NewString(), uuid.NewString(), storetest.T0)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	forged.Header["kid"] = kid
	otherSigned, _ := forged.SignedString(otherKey)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	hs.Header["kid"] = kid
	hsSigned, _ := hs.SignedString([]byte(kid))

	if resp, body := ts.DoAs(t, good, "GET", "/v1/sync/pull", "", nil); resp.StatusCode != 200 {
		t.Fatalf("a valid token was refused: %d %s", resp.StatusCode, body)
	}
	// Revoke the lost tablet and disable a user before trying their tokens.
	if resp, body := ts.Do(t, "POST", "/v1/devices/"+lostDevice+"/revoke", "", nil); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if err := ts.Store.SetUserDisabled(context.Background(), "gone", true, storetest.T0); err != nil {
		t.Fatal(err)
	}

	cases := map[string]string{
		"no token":              "",
		"malformed token":       "not.a.jwt",
		"garbage":               "Zm9v",
		"alg none":              none,
		"signed by another key": otherSigned,
		"hs256 with the key id": hsSigned,
		"edited role claim":     editPayload(t, good, func(c map[string]any) { c["role"] = "admin" }),
		"edited scope claim":    editPayload(t, good, func(c map[string]any) { c["scope"] = []string{"15"} }),
		"edited subject":        editPayload(t, good, func(c map[string]any) { c["sub"] = "admin" }),
		"revoked device":        lost,
		"disabled user":         disabledUser,
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			resp, body := ts.DoAs(t, tok, "GET", "/v1/sync/pull", "", nil)
			p := apitest.MustProblem(t, resp, body, 401)
			if revoked := p.Type == "/problems/device_revoked"; revoked != (name == "revoked device") {
				t.Fatalf("problem type %s for %s", p.Type, name)
			}
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatal("401 without WWW-Authenticate: Bearer")
			}
		})
	}
	t.Run("expired token", func(t *testing.T) {
		ts.Clock.Advance(auth.AccessTTL + time.Minute)
		resp, body := ts.DoAs(t, expiring, "GET", "/v1/sync/pull", "", nil)
		apitest.MustProblem(t, resp, body, 401)
	})
	t.Run("wrong scheme", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.URL+"/v1/schema", nil)
		req.Header.Set("Authorization", "Basic YWRtaW46eA==")
		resp, err := ts.Client().Do(req)
		if err != nil || resp.StatusCode != 401 {
			t.Fatalf("%v %v", resp, err)
		}
		resp.Body.Close()
	})
}

func TestLogin(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240107")
	dev := uuid.NewString()
	tr := ts.LoginResponse(t, "li.na", apitest.TestPassword, dev, 200)
	if tr.TokenType != "Bearer" || tr.ExpiresIn != int(auth.AccessTTL.Seconds()) || tr.RefreshToken == "" {
		t.Fatalf("token response %+v", tr)
	}
	var claims auth.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(tr.AccessToken, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Subject != "li.na" || claims.Role != syncproto.RoleFieldWorker || claims.Dev != dev ||
		strings.Join(claims.Scope, ",") != "500240107" || claims.ID == "" || claims.IssuedAt == nil || claims.ExpiresAt == nil {
		t.Fatalf("claims %+v", claims)
	}
	for name, body := range map[string]string{
		"wrong password": `{"username":"li.na","password":"wrong password","device_id":"` + dev + `"}`,
		"unknown user":   `{"username":"nobody","password":"` + apitest.TestPassword + `","device_id":"` + dev + `"}`,
	} {
		resp, b := ts.DoAs(t, "", "POST", "/v1/auth/token", "application/json", []byte(body))
		p := apitest.MustProblem(t, resp, b, 401)
		if strings.Contains(p.Detail, "nobody") || strings.Contains(string(b), apitest.TestPassword) {
			t.Fatalf("%s: problem leaks input: %s", name, b)
		}
	}
	resp, b := ts.DoAs(t, "", "POST", "/v1/auth/token", "application/json", []byte(`{"username":"li.na","password":"x","device_id":"tablet-1"}`))
	if p := apitest.MustProblem(t, resp, b, 422); p.Errors[0].Path != "device_id" {
		t.Fatalf("%s", b)
	}
}

func TestLoginAndPushRateLimits(t *testing.T) {
	ts := apitest.MustServeWith(t, &api.RateLimits{LoginPerUser: api.Rate{Every: time.Hour, Burst: 3},
		LoginPerAddress: api.Rate{Every: time.Hour, Burst: 100}, PushPerDevice: api.Rate{Every: time.Hour, Burst: 2}})
	dev := uuid.NewString()
	body := []byte(`{"username":"admin","password":"wrong password","device_id":"` + dev + `"}`)
	for i := 0; i < 3; i++ {
		resp, b := ts.DoAs(t, "", "POST", "/v1/auth/token", "application/json", body)
		apitest.MustProblem(t, resp, b, 401)
	}
	resp, b := ts.DoAs(t, "", "POST", "/v1/auth/token", "application/json", body)
	apitest.MustProblem(t, resp, b, 429)
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("429 without Retry-After: %q", ra)
	}

	ts2 := apitest.MustServeWith(t, &api.RateLimits{PushPerDevice: api.Rate{Every: time.Hour, Burst: 2}})
	d := storetest.NewDevice("admin")
	for i := 0; i < 2; i++ {
		if resp, b := ts2.PushJSON(t, d.Changeset(storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))); resp.StatusCode != 200 {
			t.Fatalf("push %d: %d %s", i, resp.StatusCode, b)
		}
	}
	resp, b = ts2.PushJSON(t, d.Changeset(storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0)))
	apitest.MustProblem(t, resp, b, 429)
}

func TestRefreshRotatesAndReuseRevokes(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240")
	dev := uuid.NewString()
	first := ts.LoginResponse(t, "li.na", apitest.TestPassword, dev, 200)
	refresh := func(tok string) (*http.Response, []byte) {
		b, _ := json.Marshal(map[string]string{"refresh_token": tok})
		return ts.DoAs(t, "", "POST", "/v1/auth/refresh", "application/json", b)
	}
	// A week offline later, the tablet refreshes without a password.
	ts.Clock.Advance(7 * 24 * time.Hour)
	resp, body := refresh(first.RefreshToken)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh after a week: %d %s", resp.StatusCode, body)
	}
	var second api.TokenResponse
	_ = json.Unmarshal(body, &second)
	if second.RefreshToken == first.RefreshToken || second.AccessToken == "" {
		t.Fatal("refresh did not rotate")
	}
	if r, b := ts.DoAs(t, second.AccessToken, "GET", "/v1/sync/pull", "", nil); r.StatusCode != 200 {
		t.Fatalf("new access token: %d %s", r.StatusCode, b)
	}
	// The old refresh token again, after the grace for a lost response:
	// refused, and the whole session ends.
	ts.Clock.Advance(auth.RefreshGrace + time.Second)
	resp, body = refresh(first.RefreshToken)
	apitest.MustProblem(t, resp, body, 401)
	resp, body = refresh(second.RefreshToken)
	apitest.MustProblem(t, resp, body, 401)
	resp, body = ts.DoAs(t, second.AccessToken, "GET", "/v1/sync/pull", "", nil)
	apitest.MustProblem(t, resp, body, 401)
	// Garbage is a 401 with a path.
	resp, body = refresh("nope")
	if p := apitest.MustProblem(t, resp, body, 401); p.Errors[0].Path != "refresh_token" {
		t.Fatalf("%s", body)
	}
}

// A refresh whose response was lost is retried with the same token: within
// auth.RefreshGrace it rotates again (the tablet is not logged out), once;
// a second retry, or an older token, is reuse and ends the session.
func TestRefreshRetriedAfterALostResponse(t *testing.T) {
	ts := apitest.MustServe(t)
	dev := uuid.NewString()
	first := ts.LoginResponse(t, "admin", apitest.TestPassword, dev, 200)
	refresh := func(tok string) (*http.Response, []byte) {
		b, _ := json.Marshal(map[string]string{"refresh_token": tok})
		return ts.DoAs(t, "", "POST", "/v1/auth/refresh", "application/json", b)
	}
	if resp, body := refresh(first.RefreshToken); resp.StatusCode != 200 { // the response is "lost"
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	ts.Clock.Advance(auth.RefreshGrace / 2)
	resp, body := refresh(first.RefreshToken)
	if resp.StatusCode != 200 {
		t.Fatalf("retry within the grace: %d %s", resp.StatusCode, body)
	}
	var retried api.TokenResponse
	_ = json.Unmarshal(body, &retried)
	if r, b := ts.DoAs(t, retried.AccessToken, "GET", "/v1/sync/pull", "", nil); r.StatusCode != 200 {
		t.Fatalf("token from the retried refresh: %d %s", r.StatusCode, b)
	}
	// The same old token a second time is reuse, even within the grace.
	resp, body = refresh(first.RefreshToken)
	apitest.MustProblem(t, resp, body, 401)
	resp, body = refresh(retried.RefreshToken)
	apitest.MustProblem(t, resp, body, 401)
}

func TestRefreshTokenExpires(t *testing.T) {
	ts := apitest.MustServe(t)
	tr := ts.LoginResponse(t, "admin", apitest.TestPassword, uuid.NewString(), 200)
	ts.Clock.Advance(auth.RefreshTTL + time.Hour)
	b, _ := json.Marshal(map[string]string{"refresh_token": tr.RefreshToken})
	resp, body := ts.DoAs(t, "", "POST", "/v1/auth/refresh", "application/json", b)
	apitest.MustProblem(t, resp, body, 401)
}

func TestScopeAndRoles(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker.south", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup.south", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "sup.north", syncproto.RoleSupervisor, "150422")
	admin := storetest.NewDevice("admin")
	south, north, moving, ins := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	if resp, b := ts.PushJSON(t, admin.Changeset(storetest.Household(south, storetest.SouthVillage, storetest.T0),
		storetest.Household(north, storetest.NorthVillage, storetest.T0),
		storetest.Household(moving, storetest.SouthVillage, storetest.T0),
		storetest.HousingInspection(ins, moving, "D", storetest.T0))); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	workerDev := storetest.NewDevice("worker.south")
	worker := ts.Login(t, "worker.south", workerDev.Actor.DeviceID)
	supSouth := ts.Login(t, "sup.south", uuid.NewString())
	supNorth := ts.Login(t, "sup.north", uuid.NewString())

	pullAll := func(token, cursor string) (map[string]syncproto.Record, string) {
		got := map[string]syncproto.Record{}
		for {
			resp, body := ts.DoAs(t, token, "GET", "/v1/sync/pull?limit=2&cursor="+cursor, "", nil)
			var page syncproto.PullResponse
			if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 {
				t.Fatalf("pull: %d %s", resp.StatusCode, body)
			}
			for _, r := range page.Records {
				got[r.ID] = r
			}
			cursor = page.Cursor
			if !page.HasMore {
				return got, cursor
			}
		}
	}
	got, cursor := pullAll(worker, "")
	if len(got) != 3 || got[north].ID != "" {
		t.Fatalf("worker pulled %v", got)
	}

	// Pushing outside the scope: 403, nothing written.
	before := ts.Counts(t)
	body, _ := json.Marshal(workerDev.Changeset(storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0),
		storetest.Upsert("household", north, 1, storetest.T0, map[string]any{"members": 2})))
	resp, b := ts.DoAs(t, worker, "POST", "/v1/sync/push", "application/json", body)
	if p := apitest.MustProblem(t, resp, b, 403); p.Errors[0].Path != "changes[1]" {
		t.Fatalf("%s", b)
	}
	body, _ = json.Marshal(workerDev.Changeset(storetest.Upsert("water_inspection", uuid.NewString(), 0, storetest.T0,
		map[string]any{"household_id": north, "inspected_on": "2026-11-20", "source": "well"})))
	resp, b = ts.DoAs(t, worker, "POST", "/v1/sync/push", "application/json", body)
	apitest.MustProblem(t, resp, b, 403)
	// Another device's id in the body: 403.
	other := storetest.NewDevice("x").Changeset(storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	body, _ = json.Marshal(other)
	resp, b = ts.DoAs(t, worker, "POST", "/v1/sync/push", "application/json", body)
	if p := apitest.MustProblem(t, resp, b, 403); p.Errors[0].Path != "device_id" {
		t.Fatalf("%s", b)
	}
	if after := ts.Counts(t); !equalCounts(before, after) {
		t.Fatalf("refused pushes wrote: %v → %v", before, after)
	}

	// Field workers may not use supervisor endpoints.
	for _, path := range []string{"/v1/records/household/" + south, "/v1/records/household/" + south + "/history"} {
		resp, b := ts.DoAs(t, worker, "GET", path, "", nil)
		apitest.MustProblem(t, resp, b, 403)
	}
	resp, b = ts.DoAs(t, worker, "POST", "/v1/devices/"+workerDev.Actor.DeviceID+"/revoke", "", nil)
	apitest.MustProblem(t, resp, b, 403)

	// A supervisor of county A sees nothing of county B.
	if resp, b := ts.DoAs(t, supSouth, "GET", "/v1/records/household/"+south, "", nil); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	resp, b = ts.DoAs(t, supNorth, "GET", "/v1/records/household/"+south, "", nil)
	apitest.MustProblem(t, resp, b, 403)
	resp, b = ts.DoAs(t, supNorth, "POST", "/v1/devices/"+workerDev.Actor.DeviceID+"/revoke", "", nil)
	apitest.MustProblem(t, resp, b, 403)
	if got, _ := pullAll(supNorth, ""); len(got) != 1 || got[north].ID == "" {
		t.Fatalf("northern supervisor pulled %v", got)
	}

	// A household moved out of the worker's villages by a later edit: the
	// worker's next pull tells it to drop the household and its inspection.
	if resp, b := ts.PushJSON(t, admin.Changeset(storetest.Upsert("household", moving, 1, storetest.T0,
		map[string]any{"village": "500240112201"}))); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	got, _ = pullAll(worker, cursor)
	if len(got) != 2 || !got[moving].Removed || !got[ins].Removed {
		t.Fatalf("after the move the worker pulled %+v", got)
	}
	// The supervisor of the county still has it.
	if resp, b := ts.DoAs(t, supSouth, "GET", "/v1/records/household/"+moving, "", nil); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	// The supervisor of the south may revoke the worker's tablet.
	if resp, b := ts.DoAs(t, supSouth, "POST", "/v1/devices/"+workerDev.Actor.DeviceID+"/revoke", "", nil); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	resp, b = ts.DoAs(t, worker, "GET", "/v1/sync/pull", "", nil)
	apitest.MustProblem(t, resp, b, 401)
	ts.LoginResponse(t, "worker.south", apitest.TestPassword, workerDev.Actor.DeviceID, 401)
}

func TestChangeLogRecordsTheAuthenticatedIdentity(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240")
	d := storetest.NewDevice("someone-else")
	tok := ts.Login(t, "li.na", d.Actor.DeviceID)
	hh := uuid.NewString()
	body, _ := json.Marshal(d.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0)))
	if resp, b := ts.DoAs(t, tok, "POST", "/v1/sync/push", "application/json", body); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	hist, err := ts.Store.History(context.Background(), hh)
	if err != nil || len(hist) != 1 || hist[0].UserID != "li.na" || hist[0].DeviceID != d.Actor.DeviceID {
		t.Fatalf("history %+v %v", hist, err)
	}
}

func TestKeyRotationKeepsOldTokensValid(t *testing.T) {
	ts := apitest.MustServe(t)
	old := ts.Login(t, "admin", uuid.NewString())
	kid, err := auth.RotateKey(ts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5100 * time.Millisecond) // the keyring notices a rotation within 5 s
	fresh := ts.LoginResponse(t, "admin", apitest.TestPassword, uuid.NewString(), 200)
	tok, _, err := jwt.NewParser().ParseUnverified(fresh.AccessToken, &auth.Claims{})
	if err != nil || tok.Header["kid"] != kid {
		t.Fatalf("new token kid %v, want %s (%v)", tok.Header["kid"], kid, err)
	}
	for _, tk := range []string{old, fresh.AccessToken} {
		if resp, b := ts.DoAs(t, tk, "GET", "/v1/schema", "", nil); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	}
	names, _ := filepath.Glob(filepath.Join(ts.Dir, "keys", "*.pem"))
	for _, n := range names {
		if fi, _ := os.Stat(n); fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v", n, fi.Mode().Perm())
		}
	}
}

func TestDeviceBelongsToItsFirstUser(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "victim", syncproto.RoleFieldWorker, "500240")
	ts.AddUser(t, "mallory", syncproto.RoleFieldWorker, "150422")
	dev := uuid.NewString()
	ts.Login(t, "victim", dev)
	body, _ := json.Marshal(map[string]string{"username": "mallory", "password": apitest.TestPassword, "device_id": dev})
	resp, b := ts.DoAs(t, "", "POST", "/v1/auth/token", "application/json", body)
	if p := apitest.MustProblem(t, resp, b, 403); p.Errors[0].Path != "device_id" {
		t.Fatalf("%s", b)
	}
	// The same user logs in again on the same tablet.
	ts.LoginResponse(t, "victim", apitest.TestPassword, dev, 200)
	// An upper-case device id in the body is the same device.
	d := &storetest.Device{Actor: syncproto.Actor{DeviceID: dev}}
	cs := d.Changeset(storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	cs.DeviceID = strings.ToUpper(cs.DeviceID)
	body, _ = json.Marshal(cs)
	if resp, b := ts.DoAs(t, ts.Login(t, "victim", dev), "POST", "/v1/sync/push", "application/json", body); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestLoginBodiesAreBounded(t *testing.T) {
	ts := apitest.MustServe(t)
	long := strings.Repeat("n", 100)
	body := []byte(`{"username":"` + long + `","password":"whatever1","device_id":"` + uuid.NewString() + `"}`)
	resp, b := ts.DoAs(t, "", "POST", "/v1/auth/token", "application/json", body)
	apitest.MustProblem(t, resp, b, 401)
	huge := []byte(`{"username":"` + strings.Repeat("n", 20<<10) + `","password":"x","device_id":"x"}`)
	resp, b = ts.DoAs(t, "", "POST", "/v1/auth/token", "application/json", huge)
	apitest.MustProblem(t, resp, b, 413)
}

func TestPasswordChangeEndsSessions(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240")
	tr := ts.LoginResponse(t, "li.na", apitest.TestPassword, uuid.NewString(), 200)
	hash, _ := auth.HashPassword("a brand new password")
	if err := ts.Store.PutUser(context.Background(), auth.User{Name: "li.na", PasswordHash: hash, Role: syncproto.RoleFieldWorker, Scope: []string{"500240"}}); err != nil {
		t.Fatal(err)
	}
	resp, body := ts.DoAs(t, tr.AccessToken, "GET", "/v1/sync/pull", "", nil)
	apitest.MustProblem(t, resp, body, 401)
	b, _ := json.Marshal(map[string]string{"refresh_token": tr.RefreshToken})
	resp, body = ts.DoAs(t, "", "POST", "/v1/auth/refresh", "application/json", b)
	apitest.MustProblem(t, resp, body, 401)
}

// TestRemovedKeyStopsVerifying: once rotation removes a key, tokens it
// signed fail within the keyring's reload interval, logins or not.
func TestRemovedKeyStopsVerifying(t *testing.T) {
	ts := apitest.MustServe(t)
	old := ts.Login(t, "admin", uuid.NewString())
	for i := 0; i < 3; i++ {
		if _, err := auth.RotateKey(ts.Dir); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5100 * time.Millisecond)
	resp, body := ts.DoAs(t, old, "GET", "/v1/schema", "", nil)
	apitest.MustProblem(t, resp, body, 401)
}
