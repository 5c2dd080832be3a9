package sqlite

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/storetest"
)

// Item 8 of issue 14: the device's claim is checked and made in the
// session's own write transaction. Many trials of two users creating a
// session on the same new device at the same moment, against a real
// SQLite file: exactly one gets it, the other ErrDeviceTaken, and the
// device has sessions of one user only.
func TestCreateSessionClaimsTheDeviceOnce(t *testing.T) {
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	ctx := context.Background()
	users := []string{"worker.south", "worker.north", "worker.east"}
	for _, u := range users {
		if err := s.PutUser(ctx, auth.User{Name: u, PasswordHash: "x", Role: "field_worker", Scope: []string{"500240"}}); err != nil {
			t.Fatal(err)
		}
	}
	const trials = 200
	for trial := 0; trial < trials; trial++ {
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
				errs[i] = s.CreateSession(ctx, sess, hash)
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
		owners, err := s.DeviceUsers(ctx, dev)
		if won != 1 || err != nil || len(owners) != 1 {
			t.Fatalf("trial %d: %d sessions created, device users %v (%v); want exactly one", trial, won, owners, err)
		}
		// The owner logs in again on it; a revoked device takes nobody.
		sess := auth.Session{ID: uuid.NewString(), User: owners[0].Name, DeviceID: dev, CreatedAt: storetest.T0,
			ExpiresAt: storetest.T0.Add(auth.RefreshTTL)}
		if err := s.CreateSession(ctx, sess, "h"+sess.ID); err != nil {
			t.Fatalf("trial %d: the owner's second login: %v", trial, err)
		}
		if trial == 0 {
			if err := s.RevokeDevice(ctx, dev, "admin", storetest.T0); err != nil {
				t.Fatal(err)
			}
			sess.ID = uuid.NewString()
			if err := s.CreateSession(ctx, sess, "h"+sess.ID); !errors.Is(err, auth.ErrDeviceRevoked) {
				t.Fatalf("a login on a revoked device: %v", err)
			}
		}
	}
}
