package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/storetest"
)

// TestLoginsAndRefreshesStoreBoundedRows: however often one account logs
// in or refreshes, what it stores is bounded: the user keeps its newest
// auth.MaxSessionsPerUser sessions (the oldest one's token stops working)
// and a session its newest auth.KeptRotatedTokens rotated tokens, while a
// recent rotated token presented again is still reuse that revokes.
func TestLoginsAndRefreshesStoreBoundedRows(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	ctx := context.Background()
	if err := s.PutUser(ctx, auth.User{Name: "li.na", PasswordHash: "x", Role: "field_worker", Scope: []string{"500240"}}); err != nil {
		t.Fatal(err)
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := s.reader.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var first auth.Session
	for i := 0; i < auth.MaxSessionsPerUser+5; i++ {
		at := storetest.T0.Add(time.Duration(i) * time.Second)
		sess := auth.Session{ID: uuid.NewString(), User: "li.na", DeviceID: uuid.NewString(), CreatedAt: at, ExpiresAt: at.Add(auth.RefreshTTL)}
		_, hash := auth.NewRefreshToken(sess.ID)
		if err := s.CreateSession(ctx, sess, hash); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = sess
		}
	}
	if n := count(`SELECT count(*) FROM sessions WHERE user_name = 'li.na'`); n != auth.MaxSessionsPerUser {
		t.Fatalf("%d sessions after %d logins, want %d", n, auth.MaxSessionsPerUser+5, auth.MaxSessionsPerUser)
	}
	if n := count(`SELECT count(*) FROM refresh_tokens WHERE session_id NOT IN (SELECT id FROM sessions)`); n != 0 {
		t.Fatalf("%d refresh tokens of removed sessions left", n)
	}
	if st, err := s.Access(ctx, "li.na", first.ID, first.DeviceID, storetest.T0.Add(time.Hour)); err != nil || st.SessionActive {
		t.Fatalf("the oldest session after the bound: %+v %v", st, err)
	}
	// A device that pushed stays its user's once its sessions are gone.
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO devices (device_id, user_id, last_seq) VALUES (?, 'li.na', 1)`, first.DeviceID); err != nil {
		t.Fatal(err)
	}
	if err := s.PutUser(ctx, auth.User{Name: "wang.fang", PasswordHash: "x", Role: "field_worker", Scope: []string{"150422"}}); err != nil {
		t.Fatal(err)
	}
	other := auth.Session{ID: uuid.NewString(), User: "wang.fang", DeviceID: first.DeviceID, CreatedAt: storetest.T0, ExpiresAt: storetest.T0.Add(auth.RefreshTTL)}
	if _, h := auth.NewRefreshToken(other.ID); !errors.Is(s.CreateSession(ctx, other, h), auth.ErrDeviceTaken) {
		t.Fatal("another user claimed a device that pushed, once its owner's sessions were gone")
	}

	// One session refreshed many times keeps a bounded list of tokens.
	now := storetest.T0.Add(time.Hour)
	sess := auth.Session{ID: uuid.NewString(), User: "li.na", DeviceID: uuid.NewString(), CreatedAt: now, ExpiresAt: now.Add(auth.RefreshTTL)}
	_, hash := auth.NewRefreshToken(sess.ID)
	if err := s.CreateSession(ctx, sess, hash); err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for i := 0; i < auth.KeptRotatedTokens+10; i++ {
		now = now.Add(2 * auth.RefreshGrace)
		_, next := auth.NewRefreshToken(sess.ID)
		outcome, _, err := s.Refresh(ctx, sess.ID, hash, next, now, now.Add(auth.RefreshTTL))
		if err != nil || outcome != auth.RefreshRotated {
			t.Fatalf("refresh %d: %v %v", i, outcome, err)
		}
		hashes = append(hashes, hash)
		hash = next
	}
	if n := count(`SELECT count(*) FROM refresh_tokens WHERE session_id = ?`, sess.ID); n != auth.KeptRotatedTokens+1 {
		t.Fatalf("%d refresh tokens after %d rotations, want %d", n, auth.KeptRotatedTokens+10, auth.KeptRotatedTokens+1)
	}
	// The oldest rotated token is gone (unknown), a recent one is reuse.
	now = now.Add(2 * auth.RefreshGrace)
	_, next := auth.NewRefreshToken(sess.ID)
	if outcome, _, err := s.Refresh(ctx, sess.ID, hashes[0], next, now, now.Add(auth.RefreshTTL)); err != nil || outcome != auth.RefreshInvalid {
		t.Fatalf("the oldest rotated token: %v %v, want invalid", outcome, err)
	}
	if outcome, _, err := s.Refresh(ctx, sess.ID, hashes[len(hashes)-2], next, now, now.Add(auth.RefreshTTL)); err != nil || outcome != auth.RefreshReused {
		t.Fatalf("a recent rotated token: %v %v, want reuse", outcome, err)
	}
}
