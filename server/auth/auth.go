// Package auth is fieldsync's identity: users and their password hashes,
// signed access tokens (JWT, EdDSA, with key ids so that keys rotate),
// rotating refresh tokens bound to a device, and rate limits. It talks to
// the database only through the Accounts contract, and imports no store,
// HTTP framework or other adapter.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Token lifetimes. Access tokens are short so that a stolen one is of
// little use (revocation is checked on every request anyway); refresh
// tokens are long and slide with use, because field teams are offline for
// days and must sync on their return without typing a password.
const (
	AccessTTL  = 15 * time.Minute
	RefreshTTL = 30 * 24 * time.Hour
	// SessionMaxAge bounds a session however often it is refreshed: after
	// it, the worker logs in again.
	SessionMaxAge = 180 * 24 * time.Hour
	// RefreshGrace is how long after a rotation the token it replaced may
	// be presented once more, as the retry of a refresh whose response was
	// lost, and rotate again instead of revoking the session.
	RefreshGrace = time.Minute
)

// Bounds on what one account's logins and refreshes can store, so that no
// client, even with a valid password, can fill the disk with them: a user
// keeps its newest MaxSessionsPerUser sessions (a login beyond removes the
// oldest, live or ended, with its refresh tokens: a tablet holding one logs
// in again), and a session keeps its current refresh token and the newest
// KeptRotatedTokens it rotated out (an older one presented again is
// unknown, a plain 401, instead of reuse).
const (
	MaxSessionsPerUser = 100
	KeptRotatedTokens  = 20
)

// Issuer is the iss claim of fieldsync tokens.
const Issuer = "fieldsync"

// User is an account.
type User struct {
	Name         string
	PasswordHash string
	Role         string
	// Scope lists division-code prefixes; admins have every region.
	Scope     []string
	Disabled  bool
	CreatedAt time.Time
	UpdatedAt time.Time
	// Department is the department the user belongs to (a name of the
	// form set's departments.json), or "".
	Department string
}

// Actor returns the actor this user acts as on device.
func (u User) Actor(device string) syncproto.Actor {
	return syncproto.Actor{UserID: u.Name, DeviceID: device, Role: u.Role, Scope: u.Scope,
		AllRegions: u.Role == syncproto.RoleAdmin, Department: u.Department}
}

// Session is one login of a user on a device.
type Session struct {
	ID        string
	User      string
	DeviceID  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// RefreshOutcome is what presenting a refresh token found.
type RefreshOutcome int

// Refresh outcomes.
const (
	RefreshRotated RefreshOutcome = iota // the current token: replaced by a new one
	RefreshReused                        // a rotated token: the session is now revoked
	RefreshInvalid                       // unknown, expired, or of a revoked session
)

// AccessState is what a request's token is checked against on every call.
type AccessState struct {
	User          *User // nil when the user no longer exists
	SessionActive bool
	DeviceRevoked bool
}

// Accounts is the contract of the account store.
type Accounts interface {
	// PutUser creates or updates a user. A new password ends the user's
	// sessions; the same password (a change of role or scope) keeps them.
	// A new password or a new role ends the user's console sessions.
	PutUser(ctx context.Context, u User) error
	// User returns the named user, or nil.
	User(ctx context.Context, name string) (*User, error)
	// Users lists every user by name.
	Users(ctx context.Context) ([]User, error)
	// SetUserDisabled disables or enables a user; a disabled user's
	// sessions end, the console's too. It returns ENotFound for an unknown user.
	SetUserDisabled(ctx context.Context, name string, disabled bool, now time.Time) error
	// CreateSession stores a new session and its first refresh token hash.
	// It checks and claims the device in one write transaction: it returns
	// ErrDeviceRevoked for a revoked device and ErrDeviceTaken when another
	// user has ever had a session on it, and stores nothing then.
	CreateSession(ctx context.Context, s Session, refreshHash string) error
	// Refresh presents the hash of a refresh token of session sessionID; if
	// it is the session's current one it is replaced by newHash and the
	// session's expiry slides to expires. The token the current one was
	// issued for, presented within RefreshGrace of that rotation and only
	// once, rotates too (the retry of a lost answer) and retires the current
	// one; any other rotated token is RefreshReused and revokes the session.
	Refresh(ctx context.Context, sessionID, presentedHash, newHash string, now, expires time.Time) (RefreshOutcome, *Session, error)
	// Access returns the state a token of user, session and device is
	// checked against.
	Access(ctx context.Context, user, sessionID, device string, now time.Time) (AccessState, error)
	// RevokeDevice ends every session of a device and refuses its tokens.
	RevokeDevice(ctx context.Context, device, by string, now time.Time) error
	// DeviceRevoked reports whether a device was revoked.
	DeviceRevoked(ctx context.Context, device string) (bool, error)
	// DeviceUsers returns the users who logged in on a device.
	DeviceUsers(ctx context.Context, device string) ([]User, error)
	// ConsoleSessions are the web console's sessions (console.go).
	ConsoleSessions
}

// Errors of CreateSession.
var (
	// ErrDeviceRevoked: the device was revoked; nobody may log in on it.
	ErrDeviceRevoked = errors.New("device revoked")
	// ErrDeviceTaken: another user logged in on the device first. A device
	// id belongs to one user, so that nobody else can push as that tablet
	// or shield it from its supervisor's revocation.
	ErrDeviceTaken = errors.New("device registered to another user")
)

// ValidRoles are the roles a user may have.
var ValidRoles = []string{syncproto.RoleFieldWorker, syncproto.RoleSupervisor, syncproto.RoleAdmin, syncproto.RoleViewer}

// CheckUser validates a user's name, role and scope: names are 1–64
// characters of letters, digits, '.', '_' and '-'; field workers and
// supervisors (and viewers) need at least one scope prefix of 2–12 digits.
func CheckUser(name, role string, scope []string) error {
	if name == "" || len(name) > 64 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return fmt.Errorf("name must be 1-64 letters, digits, '.', '_' or '-'")
	}
	ok := false
	for _, r := range ValidRoles {
		ok = ok || r == role
	}
	if !ok {
		return fmt.Errorf("role must be one of %s", strings.Join(ValidRoles, ", "))
	}
	for _, p := range scope {
		if len(p) < 2 || len(p) > 12 || !schema.IsDigits(p) {
			return fmt.Errorf("scope %q must be a division-code prefix of 2 to 12 digits", p)
		}
	}
	if role != syncproto.RoleAdmin && len(scope) == 0 {
		return errors.New("a field worker, supervisor or viewer needs a scope (--scope 500240,150422)")
	}
	return nil
}

// NewRefreshToken returns a refresh token for a session ("<session>.<secret>")
// and the hash under which it is stored.
func NewRefreshToken(sessionID string) (token, hash string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	secret := base64.RawURLEncoding.EncodeToString(b)
	return sessionID + "." + secret, HashRefresh(secret)
}

// SplitRefreshToken returns the session id and the hash of the secret of a
// refresh token, or ok=false when it is not shaped like one.
func SplitRefreshToken(token string) (sessionID, hash string, ok bool) {
	sid, secret, found := strings.Cut(token, ".")
	if !found || len(sid) != 36 || len(secret) != 43 {
		return "", "", false
	}
	return sid, HashRefresh(secret), true
}

// HashRefresh is the stored form of a refresh secret.
func HashRefresh(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
