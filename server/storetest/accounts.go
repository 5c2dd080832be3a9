package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

// login creates a session of user on device at now and returns it with
// its first refresh token's hash.
func login(t *testing.T, a auth.Accounts, user, device string, now time.Time) (auth.Session, string, error) {
	t.Helper()
	sess := auth.Session{ID: uuid.NewString(), User: user, DeviceID: device, CreatedAt: now, ExpiresAt: now.Add(auth.RefreshTTL)}
	_, hash := auth.NewRefreshToken(sess.ID)
	return sess, hash, a.CreateSession(context.Background(), sess, hash)
}

// active reports whether a session's tokens are accepted at now (Access).
func active(t *testing.T, a auth.Accounts, sess auth.Session, now time.Time) bool {
	t.Helper()
	st, err := a.Access(context.Background(), sess.User, sess.ID, sess.DeviceID, now)
	if err != nil {
		t.Fatal(err)
	}
	return st.SessionActive
}

// testUsers: PutUser creates and updates a user, User returns it (nil for
// an unknown name), Users lists every user by name; SetUserDisabled
// disables (ending the user's sessions) and enables, and is ENotFound for
// an unknown user; a new password ends the user's sessions, the same
// password with another role or scope keeps them.
func testUsers(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	a := mustAccounts(t, s)
	ctx := context.Background()
	if u, err := a.User(ctx, "amy"); err != nil || u != nil {
		t.Fatalf("an unknown user: %+v, %v", u, err)
	}
	if list, err := a.Users(ctx); err != nil || len(list) != 0 {
		t.Fatalf("users of a new store: %v, %v", list, err)
	}
	for _, u := range []auth.User{
		{Name: "zed", PasswordHash: "h-zed", Role: syncproto.RoleFieldWorker, Scope: []string{"500240107"}},
		{Name: "amy", PasswordHash: "h-amy", Role: syncproto.RoleSupervisor, Scope: []string{"500240", "150422"}},
		{Name: "admin", PasswordHash: "h-admin", Role: syncproto.RoleAdmin},
	} {
		if err := a.PutUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	list, err := a.Users(ctx)
	var names []string
	for _, u := range list {
		names = append(names, u.Name)
	}
	if err != nil || !slices.Equal(names, []string{"admin", "amy", "zed"}) {
		t.Fatalf("users %v, %v; want them by name", names, err)
	}
	u, err := a.User(ctx, "amy")
	if err != nil || u == nil || u.PasswordHash != "h-amy" || u.Role != syncproto.RoleSupervisor || !slices.Equal(u.Scope, []string{"500240", "150422"}) || u.Disabled {
		t.Fatalf("user amy %+v, %v", u, err)
	}
	if u, _ := a.User(ctx, "admin"); u == nil || len(u.Scope) != 0 {
		t.Fatalf("an admin %+v", u)
	}

	sess, _, err := login(t, a, "amy", uuid.NewString(), T0)
	if err != nil {
		t.Fatal(err)
	}
	// Another role and scope, the same password: updated, sessions kept.
	if err := a.PutUser(ctx, auth.User{Name: "amy", PasswordHash: "h-amy", Role: syncproto.RoleFieldWorker, Scope: []string{"500240107"}}); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.User(ctx, "amy"); u.Role != syncproto.RoleFieldWorker || !slices.Equal(u.Scope, []string{"500240107"}) {
		t.Fatalf("updated user %+v", u)
	}
	if list, _ := a.Users(ctx); len(list) != 3 {
		t.Fatalf("an update added a user: %d users", len(list))
	}
	if !active(t, a, sess, T0.Add(time.Minute)) {
		t.Fatal("a change of role and scope ended the session")
	}
	// A new password ends them.
	if err := a.PutUser(ctx, auth.User{Name: "amy", PasswordHash: "h-amy-2", Role: syncproto.RoleFieldWorker, Scope: []string{"500240107"}}); err != nil {
		t.Fatal(err)
	}
	if active(t, a, sess, T0.Add(time.Minute)) {
		t.Fatal("a session outlived a new password")
	}

	sess, _, err = login(t, a, "zed", uuid.NewString(), T0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetUserDisabled(ctx, "zed", true, T0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.User(ctx, "zed"); !u.Disabled {
		t.Fatalf("disabled user %+v", u)
	}
	if active(t, a, sess, T0.Add(2*time.Minute)) {
		t.Fatal("a disabled user's session is still active")
	}
	if err := a.SetUserDisabled(ctx, "zed", false, T0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.User(ctx, "zed"); u.Disabled {
		t.Fatalf("enabled user %+v", u)
	}
	if err := a.SetUserDisabled(ctx, "nobody", true, T0); syncproto.ErrorCode(err) != syncproto.ENotFound {
		t.Fatalf("disabling an unknown user: %v", err)
	}
}

// testSessions: CreateSession claims the device for its user (a second
// user's login on it is ErrDeviceTaken and stores nothing, the owner logs
// in again); Access tells a live session from one of another device, an
// expired one or an unknown user; RevokeDevice ends the device's sessions
// and refuses new ones (ErrDeviceRevoked), DeviceRevoked says so;
// DeviceUsers lists who logged in on a device; a user keeps only the newest
// auth.MaxSessionsPerUser sessions.
func testSessions(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	a := mustAccounts(t, s)
	ctx := context.Background()
	for _, name := range []string{"amy", "zed"} {
		if err := a.PutUser(ctx, auth.User{Name: name, PasswordHash: "h", Role: syncproto.RoleFieldWorker, Scope: []string{"500240"}}); err != nil {
			t.Fatal(err)
		}
	}
	dev := uuid.NewString()
	sess, _, err := login(t, a, "amy", dev, T0)
	if err != nil {
		t.Fatal(err)
	}
	now := T0.Add(time.Minute)
	st, err := a.Access(ctx, "amy", sess.ID, dev, now)
	if err != nil || st.User == nil || st.User.Name != "amy" || !st.SessionActive || st.DeviceRevoked {
		t.Fatalf("access of a live session %+v, %v", st, err)
	}
	if st, _ := a.Access(ctx, "amy", sess.ID, uuid.NewString(), now); st.SessionActive {
		t.Fatal("a session is active on another device")
	}
	if active(t, a, sess, sess.ExpiresAt.Add(time.Second)) {
		t.Fatal("an expired session is active")
	}
	if st, err := a.Access(ctx, "gone", sess.ID, dev, now); err != nil || st.User != nil || st.SessionActive {
		t.Fatalf("access of an unknown user %+v, %v", st, err)
	}

	taken, _, err := login(t, a, "zed", dev, now)
	if !errors.Is(err, auth.ErrDeviceTaken) {
		t.Fatalf("another user's login on a claimed device: %v", err)
	}
	if active(t, a, taken, now) {
		t.Fatal("a refused login stored its session")
	}
	if _, _, err := login(t, a, "amy", dev, now); err != nil {
		t.Fatalf("the owner's second login: %v", err)
	}
	users, err := a.DeviceUsers(ctx, dev)
	if err != nil || len(users) != 1 || users[0].Name != "amy" {
		t.Fatalf("device users %+v, %v", users, err)
	}
	if users, err := a.DeviceUsers(ctx, uuid.NewString()); err != nil || len(users) != 0 {
		t.Fatalf("users of an unknown device %+v, %v", users, err)
	}

	if revoked, err := a.DeviceRevoked(ctx, dev); err != nil || revoked {
		t.Fatalf("revoked before RevokeDevice: %v, %v", revoked, err)
	}
	if err := a.RevokeDevice(ctx, dev, "admin", now); err != nil {
		t.Fatal(err)
	}
	if revoked, err := a.DeviceRevoked(ctx, dev); err != nil || !revoked {
		t.Fatalf("revoked after RevokeDevice: %v, %v", revoked, err)
	}
	if st, _ := a.Access(ctx, "amy", sess.ID, dev, now.Add(time.Second)); st.SessionActive || !st.DeviceRevoked {
		t.Fatalf("access on a revoked device %+v", st)
	}
	refused, _, err := login(t, a, "amy", dev, now.Add(time.Minute))
	if !errors.Is(err, auth.ErrDeviceRevoked) {
		t.Fatalf("a login on a revoked device: %v", err)
	}
	if active(t, a, refused, now.Add(time.Minute)) {
		t.Fatal("a refused login on a revoked device stored its session")
	}
	if err := a.RevokeDevice(ctx, dev, "admin", now.Add(time.Hour)); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}

	// The newest MaxSessionsPerUser sessions of a user are kept.
	var first auth.Session
	for i := range auth.MaxSessionsPerUser + 1 {
		at := T0.Add(time.Duration(i) * time.Second)
		sess, _, err := login(t, a, "zed", uuid.NewString(), at)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = sess
		}
	}
	if active(t, a, first, T0.Add(time.Hour)) {
		t.Fatalf("the oldest of %d sessions is still active", auth.MaxSessionsPerUser+1)
	}
}

// testRefresh: Refresh rotates the current refresh token (the session's
// expiry slides, within auth.SessionMaxAge); the token it replaced,
// presented again within auth.RefreshGrace and once, rotates too (the
// retry of a lost answer) and retires the current one; any other rotated
// token is reuse and revokes the session; an unknown token, another
// session's, or one of an expired or revoked session is invalid.
func testRefresh(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	a := mustAccounts(t, s)
	ctx := context.Background()
	if err := a.PutUser(ctx, auth.User{Name: "amy", PasswordHash: "h", Role: syncproto.RoleFieldWorker, Scope: []string{"500240"}}); err != nil {
		t.Fatal(err)
	}
	refresh := func(sess auth.Session, presented string, now time.Time) (auth.RefreshOutcome, string, *auth.Session) {
		t.Helper()
		_, next := auth.NewRefreshToken(sess.ID)
		outcome, got, err := a.Refresh(ctx, sess.ID, presented, next, now, now.Add(auth.RefreshTTL))
		if err != nil {
			t.Fatal(err)
		}
		return outcome, next, got
	}
	sess, h0, err := login(t, a, "amy", uuid.NewString(), T0)
	if err != nil {
		t.Fatal(err)
	}
	now := T0.Add(time.Hour)
	outcome, h1, got := refresh(sess, h0, now)
	if outcome != auth.RefreshRotated || got == nil || got.ID != sess.ID || got.User != "amy" || !got.ExpiresAt.Equal(now.Add(auth.RefreshTTL)) {
		t.Fatalf("rotation: %v %+v", outcome, got)
	}
	if !active(t, a, sess, sess.ExpiresAt.Add(30*time.Minute)) {
		t.Fatal("the session's expiry did not slide")
	}
	// The answer was lost: h0 again, within the grace, rotates once more
	// and retires h1.
	outcome, h2, _ := refresh(sess, h0, now.Add(auth.RefreshGrace/2))
	if outcome != auth.RefreshRotated {
		t.Fatalf("the retry of a lost answer: %v", outcome)
	}
	if outcome, _, _ := refresh(sess, h1, now.Add(auth.RefreshGrace/2)); outcome != auth.RefreshReused {
		t.Fatalf("the retired successor: %v, want reuse", outcome)
	}
	if active(t, a, sess, now.Add(auth.RefreshGrace)) {
		t.Fatal("reuse did not revoke the session")
	}
	if outcome, _, _ := refresh(sess, h2, now.Add(auth.RefreshGrace)); outcome != auth.RefreshInvalid {
		t.Fatalf("the current token of a revoked session: %v", outcome)
	}

	// The retry rotates once: the same token a third time is reuse.
	sess, h0, _ = login(t, a, "amy", sess.DeviceID, now)
	if outcome, _, _ := refresh(sess, h0, now); outcome != auth.RefreshRotated {
		t.Fatal(outcome)
	}
	if outcome, _, _ := refresh(sess, h0, now.Add(time.Second)); outcome != auth.RefreshRotated {
		t.Fatalf("the retry of a lost answer: %v", outcome)
	}
	if outcome, _, _ := refresh(sess, h0, now.Add(2*time.Second)); outcome != auth.RefreshReused {
		t.Fatalf("the replaced token a third time, within the grace: %v, want reuse", outcome)
	}

	// Past the grace, the replaced token is reuse.
	sess, h0, _ = login(t, a, "amy", sess.DeviceID, now)
	outcome, h1, _ = refresh(sess, h0, now.Add(time.Minute))
	if outcome != auth.RefreshRotated {
		t.Fatal(outcome)
	}
	if outcome, _, _ := refresh(sess, h0, now.Add(time.Minute+2*auth.RefreshGrace)); outcome != auth.RefreshReused {
		t.Fatalf("a rotated token after the grace: %v, want reuse", outcome)
	}
	if outcome, _, _ := refresh(sess, h1, now.Add(time.Minute+2*auth.RefreshGrace)); outcome != auth.RefreshInvalid {
		t.Fatalf("after reuse: %v", outcome)
	}

	// Unknown, another session's, expired; the expiry capped by the
	// session's maximum age.
	sess, h0, _ = login(t, a, "amy", sess.DeviceID, now)
	other, otherHash, _ := login(t, a, "amy", sess.DeviceID, now)
	if outcome, _, _ := refresh(sess, "unknown", now); outcome != auth.RefreshInvalid {
		t.Fatalf("an unknown token: %v", outcome)
	}
	if outcome, _, _ := refresh(sess, otherHash, now); outcome != auth.RefreshInvalid {
		t.Fatalf("another session's token: %v", outcome)
	}
	if outcome, _, _ := refresh(other, otherHash, other.ExpiresAt.Add(time.Second)); outcome != auth.RefreshInvalid {
		t.Fatalf("a token of an expired session: %v", outcome)
	}
	// A session kept alive until near its maximum age (refreshed all
	// along; here made with that expiry) slides no further than it.
	sess.ExpiresAt = sess.CreatedAt.Add(auth.SessionMaxAge)
	sess.ID = uuid.NewString()
	_, h0 = auth.NewRefreshToken(sess.ID)
	if err := a.CreateSession(ctx, sess, h0); err != nil {
		t.Fatal(err)
	}
	late := sess.CreatedAt.Add(auth.SessionMaxAge - time.Hour)
	_, next := auth.NewRefreshToken(sess.ID)
	outcome, got, err = a.Refresh(ctx, sess.ID, h0, next, late, late.Add(auth.RefreshTTL))
	if err != nil || outcome != auth.RefreshRotated || !got.ExpiresAt.Equal(sess.CreatedAt.Add(auth.SessionMaxAge)) {
		t.Fatalf("a rotation near the maximum age: %v %+v %v", outcome, got, err)
	}
}
