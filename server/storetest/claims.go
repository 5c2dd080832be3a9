package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/auth"
)

// testConcurrentLoginsClaimTheDeviceOnce: the device's claim is checked
// and made in the session's own write transaction. Many trials of three
// users creating a session on the same new device at the same moment:
// exactly one gets it, the others ErrDeviceTaken, and the device has
// sessions of one user only; its owner logs in on it again, and once the
// device is revoked nobody does.
func testConcurrentLoginsClaimTheDeviceOnce(t *testing.T, open Opener) {
	a := mustAccounts(t, open(t, NewClock(T0)))
	ctx := context.Background()
	users := []string{"worker.south", "worker.north", "worker.east"}
	for _, u := range users {
		if err := a.PutUser(ctx, auth.User{Name: u, PasswordHash: "x", Role: "field_worker", Scope: []string{"500240"}}); err != nil {
			t.Fatal(err)
		}
	}
	for trial := range 100 {
		dev := uuid.NewString()
		errs := make([]error, len(users))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				sess := auth.Session{ID: uuid.NewString(), User: u, DeviceID: dev, CreatedAt: T0, ExpiresAt: T0.Add(auth.RefreshTTL)}
				_, hash := auth.NewRefreshToken(sess.ID)
				errs[i] = a.CreateSession(ctx, sess, hash)
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
		owners, err := a.DeviceUsers(ctx, dev)
		if won != 1 || err != nil || len(owners) != 1 {
			t.Fatalf("trial %d: %d sessions created, device users %v (%v); want exactly one", trial, won, owners, err)
		}
		sess := auth.Session{ID: uuid.NewString(), User: owners[0].Name, DeviceID: dev, CreatedAt: T0, ExpiresAt: T0.Add(auth.RefreshTTL)}
		if err := a.CreateSession(ctx, sess, "h"+sess.ID); err != nil {
			t.Fatalf("trial %d: the owner's second login: %v", trial, err)
		}
		if trial == 0 {
			if err := a.RevokeDevice(ctx, dev, "admin", T0); err != nil {
				t.Fatal(err)
			}
			sess.ID = uuid.NewString()
			if err := a.CreateSession(ctx, sess, "h"+sess.ID); !errors.Is(err, auth.ErrDeviceRevoked) {
				t.Fatalf("a login on a revoked device: %v", err)
			}
		}
	}
}
