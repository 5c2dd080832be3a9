package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Item 3 of issue 14: wrong passwords count per (user, address) and per
// address, and only failures count. Nobody's failures elsewhere refuse a
// correct password from an address without failures.
func TestNobodyCanLockAUserOut(t *testing.T) {
	// The default bursts, refilled slowly enough that the test's own
	// duration (hashes under -race on busy cores) refills nothing.
	rates := api.DefaultRateLimits
	rates.LoginPerUser.Every, rates.LoginPerAddress.Every = time.Hour, time.Hour
	ts := apitest.MustServeWith(t, &rates)
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240")
	attacker, other, user := apitest.ClientFrom("127.0.0.2"), apitest.ClientFrom("127.0.0.3"), apitest.ClientFrom("127.0.0.1")
	dev := uuid.NewString()

	// Wrong passwords for li.na from 127.0.0.2: refused, then limited there.
	for i := 0; i < api.DefaultRateLimits.LoginPerUser.Burst; i++ {
		if st, _, b := apitest.PostLogin(t, attacker, ts.URL, "li.na", "wrong password", uuid.NewString()); st != 401 {
			t.Fatalf("wrong password %d: %d %s", i, st, b)
		}
	}
	st, retry, b := apitest.PostLogin(t, attacker, ts.URL, "li.na", "wrong password", uuid.NewString())
	if st != 429 || retry == "" || retry == "0" {
		t.Fatalf("beyond the failures per user and address: %d Retry-After %q %s", st, retry, b)
	}
	// … while li.na's correct password from her own address still works,
	// every time, whatever 127.0.0.2 keeps sending.
	for i := 0; i < 3; i++ {
		apitest.PostLogin(t, attacker, ts.URL, "li.na", "wrong password", uuid.NewString())
		if st, _, b := apitest.PostLogin(t, user, ts.URL, "li.na", apitest.TestPassword, dev); st != 200 {
			t.Fatalf("the user's correct login was refused after another address's failures: %d %s", st, b)
		}
	}
	// The real user logs in many times in a row: successes are not counted.
	for i := 0; i < 2*api.DefaultRateLimits.LoginPerUser.Burst; i++ {
		if st, _, b := apitest.PostLogin(t, user, ts.URL, "li.na", apitest.TestPassword, dev); st != 200 {
			t.Fatalf("correct login %d refused: %d %s", i, st, b)
		}
	}
	// Failures per address, whatever the name: 127.0.0.3 tries invented
	// names until its address is limited; li.na is not.
	for i := 0; i < api.DefaultRateLimits.LoginPerAddress.Burst; i++ {
		if st, _, b := apitest.PostLogin(t, other, ts.URL, fmt.Sprintf("guess%d", i), "wrong password", uuid.NewString()); st != 401 {
			t.Fatalf("invented name %d: %d %s", i, st, b)
		}
	}
	st, retry, _ = apitest.PostLogin(t, other, ts.URL, "guess-more", "wrong password", uuid.NewString())
	if st != 429 || retry == "" {
		t.Fatalf("beyond the failures per address: %d Retry-After %q", st, retry)
	}
	// The limited address is refused before its password is looked at,
	// even a correct one: that address has failures.
	if st, _, _ := apitest.PostLogin(t, other, ts.URL, "li.na", apitest.TestPassword, dev); st != 429 {
		t.Fatalf("a limited address got %d", st)
	}
	if st, _, b := apitest.PostLogin(t, user, ts.URL, "li.na", apitest.TestPassword, dev); st != 200 {
		t.Fatalf("the user's correct login was refused after a third address's failures: %d %s", st, b)
	}
}

// Item 2 of issue 14: beyond the hashes in flight for the whole process,
// a login is answered 503 with Retry-After before its password is hashed.
func TestLoginBeyondTheHashBoundIs503(t *testing.T) {
	gate := auth.NewHashGate(1, 4, 50*time.Millisecond)
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.HashGate = gate })
	ts.AddUser(t, "li.na", syncproto.RoleFieldWorker, "500240")
	release, refused, _ := gate.Enter(context.Background(), "the test holds the only slot")
	if refused != auth.GateAdmitted {
		t.Fatal("the empty gate refused")
	}
	st, retry, b := apitest.PostLogin(t, ts.Client(), ts.URL, "li.na", apitest.TestPassword, uuid.NewString())
	p := api.Problem{}
	_ = json.Unmarshal(b, &p)
	if st != 503 || retry == "" || retry == "0" || p.Status != 503 {
		t.Fatalf("login with every hash slot taken: %d Retry-After %q %s", st, retry, b)
	}
	release()
	if st, _, b := apitest.PostLogin(t, ts.Client(), ts.URL, "li.na", apitest.TestPassword, uuid.NewString()); st != 200 {
		t.Fatalf("login with the slot free again: %d %s", st, b)
	}
}

// Item 7 of issue 14: the grace re-rotation of a lost answer retires the
// successor it replaces, so two holders of one refresh token cannot both
// keep refreshing: the second use of the first successor is reuse, and the
// session ends.
func TestRefreshTokenIsUsedOnce(t *testing.T) {
	ts := apitest.MustServe(t)
	first := ts.LoginResponse(t, "admin", apitest.TestPassword, uuid.NewString(), 200)
	refresh := func(tok string) (int, api.TokenResponse) {
		b, _ := json.Marshal(map[string]string{"refresh_token": tok})
		resp, body := ts.DoAs(t, "", "POST", "/v1/auth/refresh", "application/json", b)
		var tr api.TokenResponse
		_ = json.Unmarshal(body, &tr)
		return resp.StatusCode, tr
	}
	// Two holders of R0: one refreshes (R1), the other within the grace (R2).
	st, r1 := refresh(first.RefreshToken)
	if st != 200 {
		t.Fatalf("first refresh: %d", st)
	}
	ts.Clock.Advance(auth.RefreshGrace / 4)
	st, r2 := refresh(first.RefreshToken)
	if st != 200 {
		t.Fatalf("the retry of a lost answer within the grace: %d", st)
	}
	// R1 was retired by that retry: presenting it is reuse, within the
	// grace too, and the whole session ends, R2 and its access token with it.
	ts.Clock.Advance(auth.RefreshGrace / 4)
	if st, _ := refresh(r1.RefreshToken); st != 401 {
		t.Fatalf("the retired successor refreshed: %d", st)
	}
	if st, _ := refresh(r2.RefreshToken); st != 401 {
		t.Fatalf("the session survived the reuse: %d", st)
	}
	if resp, _ := ts.DoAs(t, r2.AccessToken, "GET", "/v1/sync/pull", "", nil); resp.StatusCode != 401 {
		t.Fatalf("an access token of the revoked session: %d", resp.StatusCode)
	}

	// One holder, no loss: each token refreshes once and the chain goes on.
	tok := ts.LoginResponse(t, "admin", apitest.TestPassword, uuid.NewString(), 200).RefreshToken
	for i := 0; i < 3; i++ {
		st, next := refresh(tok)
		if st != 200 {
			t.Fatalf("refresh %d of a chain: %d", i, st)
		}
		tok = next.RefreshToken
	}
}

// Item 8 of issue 14: two users of different counties logging in at the
// same moment on a new device id; exactly one gets it, in every trial.
func TestDeviceIDBelongsToOneUserUnderRaces(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker.south", syncproto.RoleFieldWorker, "500240")
	ts.AddUser(t, "worker.north", syncproto.RoleFieldWorker, "150422")
	const trials = 30
	for trial := 0; trial < trials; trial++ {
		dev := uuid.NewString()
		var wg sync.WaitGroup
		status := map[string]int{}
		var mu sync.Mutex
		start := make(chan struct{})
		for _, u := range []string{"worker.south", "worker.north"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				st, _, _ := apitest.PostLogin(t, ts.Client(), ts.URL, u, apitest.TestPassword, dev)
				mu.Lock()
				status[u] = st
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		if (status["worker.south"] == 200) == (status["worker.north"] == 200) ||
			status["worker.south"]+status["worker.north"] != 200+403 {
			t.Fatalf("trial %d: %v, want one 200 and one 403", trial, status)
		}
	}
}
