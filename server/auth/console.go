package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"
)

// The web console's sessions, kept in the store beside the tablets' so that
// a restart signs nobody out and every instance on one database knows them.
// The browser holds a random token in its cookie; the store holds only the
// token's SHA-256 (ConsoleTokenHash), so that a copy of the database opens
// no session. The CSRF token of a session's forms is derived from the
// token (ConsoleCSRF) and stored nowhere.
const (
	// ConsoleMaxAge bounds a console session however busy it is: after
	// it, the supervisor signs in again.
	ConsoleMaxAge = 12 * time.Hour
	// ConsoleSeenEvery is how stale a session's last-seen time may get
	// before a request writes it again: a page view writes nothing when
	// the session was seen less than this long ago, so its idle expiry
	// may come up to this much earlier than idle after the last request.
	ConsoleSeenEvery = time.Minute
	// MaxConsoleSessionsPerUser is how many console sessions one user
	// keeps: a sign-in beyond ends the oldest.
	MaxConsoleSessionsPerUser = 20
	// ConsoleSweepBatch is how many expired console sessions one sweep
	// removes at most.
	ConsoleSweepBatch = 100
)

// ConsoleSession is one signed-in browser of the web console as the store
// keeps it.
type ConsoleSession struct {
	// TokenHash is ConsoleTokenHash of the cookie's token; the token
	// itself is never stored.
	TokenHash string
	User      string
	CreatedAt time.Time
	// SeenAt is the last request that renewed the session (at most
	// ConsoleSeenEvery stale).
	SeenAt time.Time
	// IdleExpiresAt is SeenAt plus the idle limit, never after ExpiresAt.
	IdleExpiresAt time.Time
	// ExpiresAt is CreatedAt plus the absolute limit.
	ExpiresAt time.Time
}

// Live reports whether the session is still valid at now.
func (s ConsoleSession) Live(now time.Time) bool {
	return now.Before(s.IdleExpiresAt) && now.Before(s.ExpiresAt)
}

// NewConsoleToken returns a new console session token: 32 random bytes,
// URL-safe.
func NewConsoleToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// ConsoleTokenHash is the stored form of a console session token (hex
// SHA-256: the token is 256 random bits, so a slow hash adds nothing).
func ConsoleTokenHash(token string) string {
	sum := sha256.Sum256([]byte("fieldsync console session\x00" + token))
	return hex.EncodeToString(sum[:])
}

// ConsoleCSRF is the CSRF token of the forms of the session whose token is
// token: an HMAC of a fixed label under the token, so that it is known to
// whoever holds the cookie's token and cannot be computed from the stored
// hash.
func ConsoleCSRF(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("fieldsync console csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ConsoleSessions is the store of the console's sessions, part of Accounts.
// Besides its own methods, PutUser ends a user's console sessions when
// their password or role changes, and SetUserDisabled when it disables
// them.
type ConsoleSessions interface {
	// CreateConsoleSession stores a new session. The user's sessions
	// beyond the newest MaxConsoleSessionsPerUser end.
	CreateConsoleSession(ctx context.Context, s ConsoleSession) error
	// ConsoleSession returns the session of tokenHash if it is live at
	// now (Live), or nil: unknown, ended or expired.
	ConsoleSession(ctx context.Context, tokenHash string, now time.Time) (*ConsoleSession, error)
	// TouchConsoleSession records a request of the session at seen and
	// moves its idle expiry to idleExpires. A session that has ended
	// stays ended (and it is no error).
	TouchConsoleSession(ctx context.Context, tokenHash string, seen, idleExpires time.Time) error
	// EndConsoleSession ends a session (signing out); an unknown one is
	// no error.
	EndConsoleSession(ctx context.Context, tokenHash string) error
	// SweepConsoleSessions removes at most limit sessions that have
	// expired at now and returns how many it removed.
	SweepConsoleSessions(ctx context.Context, now time.Time, limit int) (int, error)
}
