package auth

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Claims are the claims of a fieldsync access token (PROTOCOL.md: sub,
// role, scope, dev, iat, exp, jti), plus sid, the session it belongs to.
type Claims struct {
	Role  string   `json:"role"`
	Scope []string `json:"scope"`
	Dev   string   `json:"dev"`
	Sid   string   `json:"sid"`
	jwt.RegisteredClaims
}

// NewClaims returns the claims of an access token issued at now.
func NewClaims(user, role string, scope []string, device, session string, now time.Time) Claims {
	return Claims{Role: role, Scope: scope, Dev: device, Sid: session, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Subject: user, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(AccessTTL)),
		ID: uuid.NewString()}}
}

// KeepKeys is how many signing keys stay on disk after a rotation: the
// current one and the ones before it, whose tokens are still valid until
// they expire.
const KeepKeys = 3

// Keyring holds the Ed25519 signing keys of a data directory, in
// DIR/keys/<kid>.pem (0600) with the current key id in DIR/keys/current,
// or of a KeyStore several servers share (OpenSharedKeyring). It notices a
// rotation made by another process (fieldsync key rotate) within
// reloadEvery.
type Keyring struct {
	dir    string
	shared KeyStore // instead of dir, when set (OpenSharedKeyring)
	now    func() time.Time

	mu       sync.RWMutex
	current  string
	keys     map[string]ed25519.PrivateKey
	loadedAt time.Time
}

const reloadEvery = 5 * time.Second

// OpenKeyring loads the keys under dataDir/keys, creating the directory
// and a first key when there is none.
func OpenKeyring(dataDir string, now func() time.Time) (*Keyring, error) {
	if now == nil {
		now = time.Now
	}
	k := &Keyring{dir: filepath.Join(dataDir, "keys"), now: now}
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if _, err := os.Stat(filepath.Join(k.dir, "current")); errors.Is(err, os.ErrNotExist) {
		if _, err := RotateKey(dataDir); err != nil {
			return nil, err
		}
	}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

// RotateKey makes a new signing key the current one and removes keys
// beyond the last KeepKeys. Tokens signed with the previous keys stay valid
// until they expire. It returns the new key id.
func RotateKey(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	kid, der, err := newSigningKey()
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(dir, kid+".pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(dir, "current"), []byte(kid+"\n")); err != nil {
		return "", err
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
	sort.Strings(names) // key ids start with their creation time
	for len(names) > KeepKeys {
		os.Remove(names[0])
		names = names[1:]
	}
	return kid, nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (k *Keyring) load() error {
	if k.shared != nil {
		return k.loadShared()
	}
	cur, err := os.ReadFile(filepath.Join(k.dir, "current"))
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(k.dir, "*.pem"))
	if err != nil {
		return err
	}
	keys := map[string]ed25519.PrivateKey{}
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("key %s is readable by others (mode %v); chmod 600 it", name, fi.Mode().Perm())
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		block, _ := pem.Decode(b)
		if block == nil {
			return fmt.Errorf("key %s: not PEM", name)
		}
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return fmt.Errorf("key %s: %w", name, err)
		}
		priv, ok := key.(ed25519.PrivateKey)
		if !ok {
			return fmt.Errorf("key %s: not an Ed25519 key", name)
		}
		keys[strings.TrimSuffix(filepath.Base(name), ".pem")] = priv
	}
	kid := strings.TrimSpace(string(cur))
	if _, ok := keys[kid]; !ok {
		return fmt.Errorf("keys: current key %q is missing", kid)
	}
	k.mu.Lock()
	k.current, k.keys, k.loadedAt = kid, keys, time.Now()
	k.mu.Unlock()
	return nil
}

// refresh reloads the keys when they were loaded more than reloadEvery ago.
func (k *Keyring) refresh() { k.reloadFor(reloadEvery) }

// unknownKeyReload is how long after a load a token with an unknown key
// id makes the ring load again.
const unknownKeyReload = 100 * time.Millisecond

// reloadFor reloads the keys when they were loaded more than age ago.
func (k *Keyring) reloadFor(age time.Duration) {
	k.mu.RLock()
	stale := time.Since(k.loadedAt) > age
	k.mu.RUnlock()
	if stale {
		_ = k.load() // on error keep the keys we have
	}
}

// Sign returns a signed access token for the claims, with the current key
// id in its header.
func (k *Keyring) Sign(c Claims) (string, error) {
	k.refresh()
	k.mu.RLock()
	kid, key := k.current, k.keys[k.current]
	k.mu.RUnlock()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = kid
	return tok.SignedString(key)
}

// ErrToken is returned for any token that does not verify; the reason is
// logged, never shown.
var ErrToken = errors.New("invalid token")

// Verify parses and verifies an access token: the algorithm must be EdDSA
// (never "none" or another), the key id one of the ring's, the issuer
// fieldsync, and exp, iat, sub, dev and sid present.
func (k *Keyring) Verify(token string) (*Claims, error) {
	// Reload when stale, so that a key removed by rotation stops
	// verifying within reloadEvery even on a server nobody logs in to.
	k.refresh()
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k.mu.RLock()
		key, ok := k.keys[kid]
		k.mu.RUnlock()
		if !ok {
			// A key id not known here may be a rotation made elsewhere
			// (another instance on a shared KeyStore, key rotate):
			// reload now rather than when stale, at most every
			// unknownKeyReload so that made-up ids cost little.
			k.reloadFor(unknownKeyReload)
			k.mu.RLock()
			key, ok = k.keys[kid]
			k.mu.RUnlock()
		}
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		return key.Public(), nil
	}, jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}), jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(k.now), jwt.WithLeeway(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrToken, err)
	}
	if c.Subject == "" || c.Dev == "" || c.Sid == "" {
		return nil, fmt.Errorf("%w: missing sub, dev or sid", ErrToken)
	}
	return &c, nil
}

// Current returns the current key id.
func (k *Keyring) Current() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}
