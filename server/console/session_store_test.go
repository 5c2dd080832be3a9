package console_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/syncproto"
)

// seenAt is the stored last-seen time of the console session whose cookie
// is token, read from the database file as another process would.
func seenAt(t *testing.T, ts *apitest.Server, token string) string {
	t.Helper()
	db, err := apitest.OpenReadOnly(filepath.Join(ts.Dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seen string
	if err := db.QueryRow(`SELECT seen_at FROM console_sessions WHERE token_hash = ?`, auth.ConsoleTokenHash(token)).Scan(&seen); err != nil {
		t.Fatalf("the session's row: %v", err)
	}
	return seen
}

// redirectedToSignIn reports whether a page answered with the way to the
// sign-in form.
func redirectedToSignIn(resp *http.Response) bool {
	return resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/console/login")
}

// TestSessionIsRenewedAtMostOnceAMinute: pages read within a minute of the
// session's last renewal write nothing to it; the first a minute or more
// after renews it, and the idle expiry counts from that renewal.
func TestSessionIsRenewedAtMostOnceAMinute(t *testing.T) {
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.ConsoleIdle = 10 * time.Minute })
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	v := newVisitor(t, ts)
	token := sessionCookie(v.signIn("sup", nil)).Value
	first := seenAt(t, ts, token)
	for range 3 {
		ts.Clock.Advance(15 * time.Second)
		if resp, _ := v.do("GET", "/console/conflicts", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("a page: %d", resp.StatusCode)
		}
	}
	if got := seenAt(t, ts, token); got != first {
		t.Fatalf("pages within a minute of sign-in renewed the session: seen %s, then %s", first, got)
	}
	ts.Clock.Advance(15 * time.Second) // a minute after sign-in
	v.do("GET", "/console/conflicts", nil, nil)
	renewed := seenAt(t, ts, token)
	if want := syncproto.FormatTime(ts.Clock.Now()); renewed != want {
		t.Fatalf("a page a minute after sign-in: seen %s, want %s", renewed, want)
	}
	// 10 idle minutes from the renewal, not from sign-in, end it.
	ts.Clock.Advance(10*time.Minute - time.Second)
	if resp, _ := v.do("GET", "/console/conflicts", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("9m59s after the renewal: %d", resp.StatusCode)
	}
	ts.Clock.Advance(10 * time.Minute)
	if resp, _ := v.do("GET", "/console/conflicts", nil, nil); !redirectedToSignIn(resp) {
		t.Fatalf("10 idle minutes after the last renewal: %d", resp.StatusCode)
	}
}

// TestSessionEndsAtItsMaximumAge: a session used every few minutes still
// ends auth.ConsoleMaxAge after sign-in.
func TestSessionEndsAtItsMaximumAge(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	for elapsed := time.Duration(0); elapsed < auth.ConsoleMaxAge-20*time.Minute; elapsed += 20 * time.Minute {
		ts.Clock.Advance(20 * time.Minute)
		if resp, _ := v.do("GET", "/console/conflicts", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s after sign-in, in use: %d", elapsed+20*time.Minute, resp.StatusCode)
		}
	}
	ts.Clock.Advance(20 * time.Minute)
	if resp, _ := v.do("GET", "/console/conflicts", nil, nil); !redirectedToSignIn(resp) {
		t.Fatalf("%s after sign-in: %d", auth.ConsoleMaxAge, resp.StatusCode)
	}
}

// TestAccountChangesEndConsoleSessions: disabling a user refuses their
// session at the next page (and a post with a 403); a new password or a
// new role ends it too; a new scope keeps it (and takes effect at once).
func TestAccountChangesEndConsoleSessions(t *testing.T) {
	ts := apitest.MustServe(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(u *auth.User)
		keeps  bool
	}{
		{"disabled", func(u *auth.User) { u.Disabled = true }, false},
		{"a new password", func(u *auth.User) { u.PasswordHash, _ = auth.HashPassword("another password") }, false},
		{"a new role", func(u *auth.User) { u.Role = syncproto.RoleViewer }, false},
		{"a new scope", func(u *auth.User) { u.Scope = []string{"500240107"} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
			v := newVisitor(t, ts)
			v.signIn("sup", nil)
			if resp, _ := v.do("GET", "/console/region/500240", nil, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("before: %d", resp.StatusCode)
			}
			u, err := ts.Store.User(ctx, "sup")
			if err != nil || u == nil {
				t.Fatal(u, err)
			}
			tc.change(u)
			if u.Disabled {
				err = ts.Store.SetUserDisabled(ctx, "sup", true, ts.Clock.Now())
			} else {
				err = ts.Store.PutUser(ctx, *u)
			}
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := v.do("GET", "/console/conflicts", nil, nil)
			if tc.keeps {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("after %s: %d, want the page", tc.name, resp.StatusCode)
				}
				if resp, _ := v.do("GET", "/console/region/500240", nil, nil); resp.StatusCode != http.StatusForbidden {
					t.Errorf("after the scope narrowed to a township, the county's page: %d, want 403", resp.StatusCode)
				}
				return
			}
			if !redirectedToSignIn(resp) {
				t.Fatalf("after %s: %d %s, want the sign-in page", tc.name, resp.StatusCode, resp.Header.Get("Location"))
			}
			if resp, _ := v.do("POST", "/console/logout", map[string][]string{"csrf": {v.csrf}}, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("a post after %s: %d, want 403", tc.name, resp.StatusCode)
			}
			if u.Disabled {
				if err := ts.Store.SetUserDisabled(ctx, "sup", false, ts.Clock.Now()); err != nil {
					t.Fatal(err)
				}
				if resp, _ := v.do("GET", "/console/conflicts", nil, nil); !redirectedToSignIn(resp) {
					t.Errorf("enabled again, the old session opened a page: %d", resp.StatusCode)
				}
			}
		})
	}
}

// TestSignInSweepsExpiredSessions: a sign-in removes the sessions that
// have expired (up to auth.ConsoleSweepBatch), and keeps the live ones.
func TestSignInSweepsExpiredSessions(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	for range 3 {
		newVisitor(t, ts).signIn("sup", nil)
	}
	ts.Clock.Advance(auth.ConsoleMaxAge)
	live := newVisitor(t, ts)
	live.signIn("sup", nil)
	live.signIn("sup", nil) // the first of live's sessions stays until it expires
	db, err := apitest.OpenReadOnly(filepath.Join(ts.Dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM console_sessions`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("after the sign-ins: %d sessions stored (%v), want the 2 live ones", n, err)
	}
}

// TestShortIdleSessionLivesWhileUsed: with the shortest idle time
// (--console-idle 1m) a session used every 40 seconds lives on: it is
// renewed more often than once a minute then.
func TestShortIdleSessionLivesWhileUsed(t *testing.T) {
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.ConsoleIdle = time.Minute })
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	for i := range 8 {
		ts.Clock.Advance(40 * time.Second)
		if resp, _ := v.do("GET", "/console/conflicts", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("a page %ds after sign-in, one every 40 s: %d", 40*(i+1), resp.StatusCode)
		}
	}
	ts.Clock.Advance(time.Minute)
	if resp, _ := v.do("GET", "/console/conflicts", nil, nil); !redirectedToSignIn(resp) {
		t.Fatalf("a minute idle: %d", resp.StatusCode)
	}
}
