package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestCreateSessionClaimsTheDeviceOnce: users logging in on the same new
// device at the same moment, each through another instance: exactly one
// gets it, the others ErrDeviceTaken, and the device has sessions of one
// user only. A revoked device takes nobody.
func TestCreateSessionClaimsTheDeviceOnce(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	stores := instances(t, 3, clock)
	ctx := context.Background()
	users := []string{"worker.south", "worker.north", "worker.east"}
	for _, u := range users {
		if err := stores[0].PutUser(ctx, auth.User{Name: u, PasswordHash: "x", Role: "field_worker", Scope: []string{"500240"}}); err != nil {
			t.Fatal(err)
		}
	}
	for trial := range 40 {
		dev := uuid.NewString()
		errs := make([]error, len(users))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				sess := auth.Session{ID: uuid.NewString(), User: u, DeviceID: dev, CreatedAt: storetest.T0,
					ExpiresAt: storetest.T0.Add(auth.RefreshTTL)}
				_, hash := auth.NewRefreshToken(sess.ID)
				errs[i] = stores[i].CreateSession(ctx, sess, hash)
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, auth.ErrDeviceTaken):
				t.Fatalf("trial %d, %s: %v", trial, users[i], err)
			}
		}
		owners, err := stores[1].DeviceUsers(ctx, dev)
		if won != 1 || err != nil || len(owners) != 1 {
			t.Fatalf("trial %d: %d sessions created, device users %v (%v); want exactly one", trial, won, owners, err)
		}
		if trial == 0 {
			if err := stores[2].RevokeDevice(ctx, dev, "admin", storetest.T0); err != nil {
				t.Fatal(err)
			}
			sess := auth.Session{ID: uuid.NewString(), User: owners[0].Name, DeviceID: dev, CreatedAt: storetest.T0,
				ExpiresAt: storetest.T0.Add(auth.RefreshTTL)}
			if err := stores[0].CreateSession(ctx, sess, "h"+sess.ID); !errors.Is(err, auth.ErrDeviceRevoked) {
				t.Fatalf("a login on a revoked device: %v", err)
			}
			if revoked, err := stores[1].DeviceRevoked(ctx, dev); err != nil || !revoked {
				t.Fatalf("DeviceRevoked = %v, %v after RevokeDevice", revoked, err)
			}
		}
	}
}

// TestAccountsLifecycle: users are stored and listed; a session is live
// until its user's password changes or the user is disabled; refresh
// rotates, a retried rotation within the grace rotates again, an old token
// presented again is reuse and revokes the session; the stored rows stay
// bounded however often a user logs in or refreshes.
func TestAccountsLifecycle(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	ctx := context.Background()
	li := auth.User{Name: "li.na", PasswordHash: "h1", Role: "field_worker", Scope: []string{"500240"}}
	if err := s.PutUser(ctx, li); err != nil {
		t.Fatal(err)
	}
	if err := s.PutUser(ctx, auth.User{Name: "admin", PasswordHash: "a", Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	if u, err := s.User(ctx, "li.na"); err != nil || u == nil || u.Role != "field_worker" || len(u.Scope) != 1 || u.Scope[0] != "500240" {
		t.Fatalf("User = %+v, %v", u, err)
	}
	if u, err := s.User(ctx, "nobody"); err != nil || u != nil {
		t.Fatalf("an unknown user: %+v, %v; want nil, nil", u, err)
	}
	if us, err := s.Users(ctx); err != nil || len(us) != 2 || us[0].Name != "admin" {
		t.Fatalf("Users = %+v, %v", us, err)
	}
	login := func(at time.Time) (auth.Session, string) {
		t.Helper()
		sess := auth.Session{ID: uuid.NewString(), User: "li.na", DeviceID: uuid.NewString(), CreatedAt: at, ExpiresAt: at.Add(auth.RefreshTTL)}
		_, hash := auth.NewRefreshToken(sess.ID)
		if err := s.CreateSession(ctx, sess, hash); err != nil {
			t.Fatal(err)
		}
		return sess, hash
	}
	live := func(sess auth.Session, at time.Time) bool {
		t.Helper()
		st, err := s.Access(ctx, sess.User, sess.ID, sess.DeviceID, at)
		if err != nil {
			t.Fatal(err)
		}
		return st.SessionActive
	}
	sess, hash := login(storetest.T0)
	if !live(sess, storetest.T0.Add(time.Minute)) {
		t.Fatal("a new session is not live")
	}
	// Rotation, the retry of a lost answer, reuse.
	now := storetest.T0.Add(time.Minute)
	_, second := auth.NewRefreshToken(sess.ID)
	if o, _, err := s.Refresh(ctx, sess.ID, hash, second, now, now.Add(auth.RefreshTTL)); err != nil || o != auth.RefreshRotated {
		t.Fatalf("refresh: %v %v", o, err)
	}
	_, third := auth.NewRefreshToken(sess.ID)
	if o, _, err := s.Refresh(ctx, sess.ID, hash, third, now.Add(time.Second), now.Add(auth.RefreshTTL)); err != nil || o != auth.RefreshRotated {
		t.Fatalf("the retry of a lost rotation within the grace: %v %v, want rotated", o, err)
	}
	_, fourth := auth.NewRefreshToken(sess.ID)
	if o, _, err := s.Refresh(ctx, sess.ID, second, fourth, now.Add(time.Hour), now.Add(auth.RefreshTTL)); err != nil || o != auth.RefreshReused {
		t.Fatalf("a rotated token again: %v %v, want reuse", o, err)
	}
	if live(sess, now.Add(time.Hour)) {
		t.Fatal("the session is live after its refresh token was reused")
	}
	// A new password ends the sessions; disabling too.
	sess, _ = login(storetest.T0)
	li.PasswordHash = "h2"
	if err := s.PutUser(ctx, li); err != nil {
		t.Fatal(err)
	}
	if live(sess, storetest.T0.Add(time.Minute)) {
		t.Fatal("a session is live after its user's password changed")
	}
	sess, _ = login(storetest.T0)
	if err := s.SetUserDisabled(ctx, "li.na", true, storetest.T0); err != nil {
		t.Fatal(err)
	}
	if live(sess, storetest.T0.Add(time.Minute)) {
		t.Fatal("a session is live after its user was disabled")
	}
	var se *syncproto.Error
	if err := s.SetUserDisabled(ctx, "nobody", true, storetest.T0); !errors.As(err, &se) || se.Code != syncproto.ENotFound {
		t.Fatalf("disabling an unknown user: %v, want ENotFound", err)
	}
	if err := s.SetUserDisabled(ctx, "li.na", false, storetest.T0); err != nil {
		t.Fatal(err)
	}
	// Bounded rows.
	for i := range auth.MaxSessionsPerUser + 5 {
		login(storetest.T0.Add(time.Duration(i) * time.Second))
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE user_name = 'li.na'`).Scan(&n); err != nil || n != auth.MaxSessionsPerUser {
		t.Fatalf("%d sessions (%v) after %d logins, want %d", n, err, auth.MaxSessionsPerUser+5, auth.MaxSessionsPerUser)
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM refresh_tokens WHERE session_id NOT IN (SELECT id FROM sessions)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d refresh tokens (%v) of removed sessions left", n, err)
	}
	sess, hash = login(storetest.T0.Add(time.Hour))
	now = storetest.T0.Add(time.Hour)
	for i := range auth.KeptRotatedTokens + 10 {
		now = now.Add(2 * auth.RefreshGrace)
		_, next := auth.NewRefreshToken(sess.ID)
		if o, _, err := s.Refresh(ctx, sess.ID, hash, next, now, now.Add(auth.RefreshTTL)); err != nil || o != auth.RefreshRotated {
			t.Fatalf("refresh %d: %v %v", i, o, err)
		}
		hash = next
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM refresh_tokens WHERE session_id = $1`, sess.ID).Scan(&n); err != nil || n != auth.KeptRotatedTokens+1 {
		t.Fatalf("%d refresh tokens (%v) after %d rotations, want %d", n, err, auth.KeptRotatedTokens+10, auth.KeptRotatedTokens+1)
	}
}
