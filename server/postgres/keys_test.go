package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/postgres/pgtest"
	"github.com/fieldsync/fieldsync/server/storetest"
)

// TestSigningKeysAreShared opens key rings on two stores of one database
// (two instances): they start with one first key though they open at
// once, a token signed at one verifies at the other, a rotation made
// through either is current for a ring opened after it and a token signed
// with the new key verifies at once at a ring loaded before it, and only
// the last auth.KeepKeys keys are kept.
func TestSigningKeysAreShared(t *testing.T) {
	url := pgtest.DB(t)
	clock := storetest.NewClock(time.Now())
	a, b := mustOpenURL(t, url, clock), mustOpenURL(t, url, clock)
	ctx := context.Background()
	rings := make([]*auth.Keyring, 2)
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := auth.OpenSharedKeyring(ctx, s, nil)
			if err != nil {
				t.Error(err)
			}
			rings[i] = r
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ra, rb := rings[0], rings[1]
	if ra.Current() != rb.Current() {
		t.Fatalf("two first keys: %s and %s", ra.Current(), rb.Current())
	}
	claims := func() auth.Claims {
		return auth.NewClaims("worker.xituo", "field_worker", []string{"500240107"}, "dev-1", "sid-1", time.Now())
	}
	tok, err := ra.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rb.Verify(tok); err != nil || c.Subject != "worker.xituo" {
		t.Fatalf("a token of A at B: %v", err)
	}
	kid, err := auth.RotateSharedKey(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := auth.OpenSharedKeyring(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Current() != kid {
		t.Fatalf("after the rotation the current key is %s, want %s", rc.Current(), kid)
	}
	fresh, err := rc.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	// ra loaded before the rotation: the new key id makes it load again
	// (once its keys are older than the 100 ms that bounds how often an
	// unknown key id reloads).
	time.Sleep(150 * time.Millisecond)
	if _, err := ra.Verify(fresh); err != nil {
		t.Fatalf("a token of the rotated key at a ring loaded before: %v", err)
	}
	if _, err := rb.Verify(tok); err != nil {
		t.Fatalf("a token of the previous key after one rotation: %v", err)
	}
	for range auth.KeepKeys {
		if _, err := auth.RotateSharedKey(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	_, keys, err := a.SigningKeys(ctx)
	if err != nil || len(keys) != auth.KeepKeys {
		t.Fatalf("%d keys kept (%v), want %d", len(keys), err, auth.KeepKeys)
	}
	rd, err := auth.OpenSharedKeyring(ctx, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Verify(tok); !errors.Is(err, auth.ErrToken) {
		t.Fatalf("a token of a key rotated out verifies: %v", err)
	}
}
