package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// KeyStore keeps a Keyring's signing keys where several servers share
// them (the PostgreSQL database of serve --store), instead of a data
// directory's keys/: a token signed by one instance verifies at every
// other, and a rotation made anywhere is seen by all within reloadEvery.
type KeyStore interface {
	// SigningKeys returns the current key's id and every kept key, each as
	// PKCS #8 DER by its id; current is "" when the store holds none.
	SigningKeys(ctx context.Context) (current string, keys map[string][]byte, err error)
	// AddSigningKey stores the key kid and makes it current, keeping the
	// newest keep keys and removing older ones. With onlyIfNone it stores
	// nothing when the store holds a key already (two servers starting at
	// once on an empty store make one first key, not two).
	AddSigningKey(ctx context.Context, kid string, pkcs8 []byte, keep int, onlyIfNone bool) error
}

// keyTimeout bounds a read of a KeyStore on the request path.
const keyTimeout = 5 * time.Second

// OpenSharedKeyring loads the signing keys of ks, making a first key when
// it holds none.
func OpenSharedKeyring(ctx context.Context, ks KeyStore, now func() time.Time) (*Keyring, error) {
	if now == nil {
		now = time.Now
	}
	kid, der, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	if err := ks.AddSigningKey(ctx, kid, der, KeepKeys, true); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	k := &Keyring{shared: ks, now: now}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

// RotateSharedKey makes a new signing key the current one of ks and
// removes keys beyond the last KeepKeys, as RotateKey does in a data
// directory. It returns the new key id.
func RotateSharedKey(ctx context.Context, ks KeyStore) (string, error) {
	kid, der, err := newSigningKey()
	if err != nil {
		return "", err
	}
	if err := ks.AddSigningKey(ctx, kid, der, KeepKeys, false); err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	return kid, nil
}

// newSigningKey makes an Ed25519 key and its id (its creation time, then
// a random suffix).
func newSigningKey() (kid string, pkcs8 []byte, err error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", nil, err
	}
	return time.Now().UTC().Format("20060102T150405.000000000") + "-" + uuid.NewString()[:8], der, nil
}

// loadShared reads the keys of the shared store.
func (k *Keyring) loadShared() error {
	ctx, cancel := context.WithTimeout(context.Background(), keyTimeout)
	defer cancel()
	cur, ders, err := k.shared.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	keys := map[string]ed25519.PrivateKey{}
	for kid, der := range ders {
		key, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("key %s: %w", kid, err)
		}
		priv, ok := key.(ed25519.PrivateKey)
		if !ok {
			return fmt.Errorf("key %s: not an Ed25519 key", kid)
		}
		keys[kid] = priv
	}
	if _, ok := keys[cur]; !ok {
		return fmt.Errorf("keys: current key %q is missing", cur)
	}
	k.mu.Lock()
	k.current, k.keys, k.loadedAt = cur, keys, time.Now()
	k.mu.Unlock()
	return nil
}
