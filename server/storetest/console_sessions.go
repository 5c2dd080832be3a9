package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

// consoleSession stores a new console session of user at now, idle after
// idle and over after maxAge, and returns it.
func consoleSession(t *testing.T, a auth.Accounts, user string, now time.Time, idle, maxAge time.Duration) auth.ConsoleSession {
	t.Helper()
	cs := auth.ConsoleSession{TokenHash: auth.ConsoleTokenHash(auth.NewConsoleToken()), User: user, CreatedAt: now, SeenAt: now,
		IdleExpiresAt: now.Add(idle), ExpiresAt: now.Add(maxAge)}
	if err := a.CreateConsoleSession(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

// liveConsole reports whether ConsoleSession finds the session live at now.
func liveConsole(t *testing.T, a auth.Accounts, cs auth.ConsoleSession, now time.Time) bool {
	t.Helper()
	got, err := a.ConsoleSession(context.Background(), cs.TokenHash, now)
	if err != nil {
		t.Fatal(err)
	}
	if got != nil && (got.User != cs.User || !got.CreatedAt.Equal(cs.CreatedAt) || !got.ExpiresAt.Equal(cs.ExpiresAt)) {
		t.Fatalf("console session read back as %+v, stored %+v", got, cs)
	}
	return got != nil
}

// testConsoleSessions: a console session is found by its token's hash
// while live, with what was stored; it ends at its idle expiry unless
// touched, and at its absolute expiry however it is touched; a touch never
// moves the idle expiry past the absolute one nor brings back an ended
// session; EndConsoleSession ends it (and an unknown one is no error); a
// user keeps the newest auth.MaxConsoleSessionsPerUser sessions.
func testConsoleSessions(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	a := mustAccounts(t, s)
	ctx := context.Background()
	idle, maxAge := 30*time.Minute, 2*time.Hour

	if got, err := a.ConsoleSession(ctx, auth.ConsoleTokenHash("nobody's"), T0); err != nil || got != nil {
		t.Fatalf("an unknown console session: %+v, %v", got, err)
	}
	cs := consoleSession(t, a, "amy", T0, idle, maxAge)
	got, err := a.ConsoleSession(ctx, cs.TokenHash, T0.Add(time.Minute))
	if err != nil || got == nil {
		t.Fatalf("a new console session: %+v, %v", got, err)
	}
	if got.TokenHash != cs.TokenHash || got.User != "amy" || !got.CreatedAt.Equal(T0) || !got.SeenAt.Equal(T0) ||
		!got.IdleExpiresAt.Equal(T0.Add(idle)) || !got.ExpiresAt.Equal(T0.Add(maxAge)) {
		t.Fatalf("console session read back as %+v, stored %+v", got, cs)
	}
	if liveConsole(t, a, cs, T0.Add(idle)) {
		t.Fatal("a console session outlived its idle expiry")
	}

	// Touched before its idle expiry, it lives on from the touch.
	seen := T0.Add(20 * time.Minute)
	if err := a.TouchConsoleSession(ctx, cs.TokenHash, seen, seen.Add(idle)); err != nil {
		t.Fatal(err)
	}
	if !liveConsole(t, a, cs, T0.Add(idle+time.Minute)) {
		t.Fatal("a touched console session ended at its old idle expiry")
	}
	if got, _ := a.ConsoleSession(ctx, cs.TokenHash, seen); got == nil || !got.SeenAt.Equal(seen) || !got.IdleExpiresAt.Equal(seen.Add(idle)) {
		t.Fatalf("after a touch at %s: %+v", seen, got)
	}
	if liveConsole(t, a, cs, seen.Add(idle)) {
		t.Fatal("a touched console session outlived its new idle expiry")
	}

	// Touched however late, it ends at its absolute expiry.
	late := T0.Add(maxAge - 10*time.Minute)
	if err := a.TouchConsoleSession(ctx, cs.TokenHash, late, late.Add(idle)); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.ConsoleSession(ctx, cs.TokenHash, late); got == nil || !got.IdleExpiresAt.Equal(T0.Add(maxAge)) {
		t.Fatalf("a touch moved the idle expiry past the absolute one: %+v", got)
	}
	if !liveConsole(t, a, cs, T0.Add(maxAge-time.Millisecond)) || liveConsole(t, a, cs, T0.Add(maxAge)) {
		t.Fatal("a console session did not end exactly at its absolute expiry")
	}

	// Signing out ends it; a touch afterwards does not bring it back.
	other := consoleSession(t, a, "amy", T0, idle, maxAge)
	if err := a.EndConsoleSession(ctx, other.TokenHash); err != nil {
		t.Fatal(err)
	}
	if err := a.TouchConsoleSession(ctx, other.TokenHash, T0.Add(time.Minute), T0.Add(time.Minute+idle)); err != nil {
		t.Fatal(err)
	}
	if liveConsole(t, a, other, T0.Add(time.Minute)) {
		t.Fatal("an ended console session is live")
	}
	if err := a.EndConsoleSession(ctx, other.TokenHash); err != nil {
		t.Fatalf("ending an ended console session: %v", err)
	}

	// A user keeps the newest MaxConsoleSessionsPerUser; another user's
	// are not counted.
	bob := consoleSession(t, a, "bob", T0, idle, maxAge)
	var zed []auth.ConsoleSession
	for i := range auth.MaxConsoleSessionsPerUser + 1 {
		zed = append(zed, consoleSession(t, a, "zed", T0.Add(time.Duration(i)*time.Second), idle, maxAge))
	}
	now := T0.Add(time.Minute)
	if liveConsole(t, a, zed[0], now) {
		t.Fatalf("the oldest of %d console sessions of one user was kept", len(zed))
	}
	for i, z := range zed[1:] {
		if !liveConsole(t, a, z, now) {
			t.Fatalf("console session %d of %d ended", i+2, len(zed))
		}
	}
	if !liveConsole(t, a, bob, now) {
		t.Fatal("another user's sign-ins ended bob's console session")
	}
}

// testConsoleSessionsEndWithTheUser: PutUser with a new password or a new
// role ends the user's console sessions, with the same password and role
// (a new scope) it keeps them; SetUserDisabled ends them, and enabling the
// user again does not bring them back; other users' stay.
func testConsoleSessionsEndWithTheUser(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	a := mustAccounts(t, s)
	ctx := context.Background()
	now := T0.Add(time.Minute)
	put := func(u auth.User) {
		t.Helper()
		if err := a.PutUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	amy := auth.User{Name: "amy", PasswordHash: "h1", Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	put(amy)
	put(auth.User{Name: "bob", PasswordHash: "hb", Role: syncproto.RoleSupervisor, Scope: []string{"500240"}})
	bob := consoleSession(t, s.(auth.Accounts), "bob", T0, time.Hour, 12*time.Hour)

	for _, step := range []struct {
		name  string
		do    func()
		keeps bool
	}{
		{"a new scope", func() { amy.Scope = []string{"150422"}; put(amy) }, true},
		{"the same user again", func() { put(amy) }, true},
		{"a new role", func() { amy.Role = syncproto.RoleViewer; put(amy) }, false},
		{"a new password", func() { amy.PasswordHash = "h2"; put(amy) }, false},
		{"disabling", func() {
			if err := a.SetUserDisabled(ctx, "amy", true, now); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		cs := consoleSession(t, a, "amy", T0, time.Hour, 12*time.Hour)
		step.do()
		if got := liveConsole(t, a, cs, now); got != step.keeps {
			t.Errorf("after %s, amy's console session live = %v, want %v", step.name, got, step.keeps)
		}
	}
	ended := consoleSession(t, a, "amy", T0, time.Hour, 12*time.Hour)
	if err := a.SetUserDisabled(ctx, "amy", true, now); err != nil {
		t.Fatal(err)
	}
	if err := a.SetUserDisabled(ctx, "amy", false, now); err != nil {
		t.Fatal(err)
	}
	if liveConsole(t, a, ended, now) {
		t.Error("enabling a user again brought back a console session that disabling ended")
	}
	if !liveConsole(t, a, bob, now) {
		t.Error("amy's changes ended bob's console session")
	}
}

// testConsoleSessionSweep: SweepConsoleSessions removes only expired
// sessions (idle or absolutely), at most limit per call, and says how many.
func testConsoleSessionSweep(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	a := mustAccounts(t, s)
	ctx := context.Background()
	var live []auth.ConsoleSession
	for i := range 3 {
		consoleSession(t, a, fmt.Sprintf("idle%d", i), T0, 10*time.Minute, time.Hour)
		consoleSession(t, a, fmt.Sprintf("old%d", i), T0, time.Hour, 20*time.Minute) // idle clamped to the absolute
		live = append(live, consoleSession(t, a, fmt.Sprintf("live%d", i), T0, time.Hour, 2*time.Hour))
	}
	now := T0.Add(30 * time.Minute)
	for _, want := range []int{4, 2, 0} {
		n, err := a.SweepConsoleSessions(ctx, now, 4)
		if err != nil || n != want {
			t.Fatalf("sweep of at most 4: %d, %v; want %d", n, err, want)
		}
	}
	for _, cs := range live {
		if !liveConsole(t, a, cs, now) {
			t.Fatalf("the sweep removed %s's live console session", cs.User)
		}
	}
}
