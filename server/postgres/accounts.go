package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

var _ auth.Accounts = (*Store)(nil)

const userColumns = `name, password_hash, role, scope, disabled, created_at, updated_at, department`

func scanUser(row pgx.Row) (*auth.User, error) {
	var u auth.User
	var scope, created, updated string
	err := row.Scan(&u.Name, &u.PasswordHash, &u.Role, &scope, &u.Disabled, &created, &updated, &u.Department)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, writeError(fmt.Errorf("read user: %w", err))
	}
	if err := json.Unmarshal([]byte(scope), &u.Scope); err != nil {
		return nil, fmt.Errorf("user %s scope: %w", u.Name, err)
	}
	u.CreatedAt, u.UpdatedAt = parseTime(created), parseTime(updated)
	return &u, nil
}

func scanUserRow(row pgx.Row) (auth.User, error) {
	u, err := scanUser(row)
	if err == nil && u == nil {
		err = pgx.ErrNoRows
	}
	if err != nil {
		return auth.User{}, err
	}
	return *u, nil
}

// PutUser creates or updates a user. A new password ends the user's
// sessions: tokens obtained with the old one stop working. A new password
// or role ends their console sessions.
func (s *Store) PutUser(ctx context.Context, u auth.User) error {
	scope, err := json.Marshal(nonNil(u.Scope))
	if err != nil {
		return err
	}
	return s.write(ctx, "user", func(ctx context.Context, tx pgx.Tx) error {
		var oldHash, oldRole string
		if err := tx.QueryRow(ctx, `SELECT password_hash, role FROM users WHERE name = $1`, u.Name).Scan(&oldHash, &oldRole); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("put user: %w", err)
		}
		now := formatTime(s.now())
		if _, err := tx.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role,
			scope = excluded.scope, disabled = excluded.disabled, updated_at = excluded.updated_at, department = excluded.department`,
			u.Name, u.PasswordHash, u.Role, string(scope), u.Disabled, now, now, u.Department); err != nil {
			return fmt.Errorf("put user: %w", err)
		}
		if oldHash != "" && oldHash != u.PasswordHash {
			if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoke_reason = 'password changed'
				WHERE user_name = $2 AND revoked_at IS NULL`, now, u.Name); err != nil {
				return fmt.Errorf("put user: %w", err)
			}
		}
		if oldHash != "" && (oldHash != u.PasswordHash || oldRole != u.Role) {
			if err := endConsoleSessions(ctx, tx, u.Name); err != nil {
				return fmt.Errorf("put user: %w", err)
			}
		}
		return nil
	})
}

// User returns the named user, or nil.
func (s *Store) User(ctx context.Context, name string) (*auth.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE name = $1`, name))
}

// Users lists every user by name.
func (s *Store) Users(ctx context.Context) ([]auth.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	return collect(rows, err, "users", scanUserRow)
}

// SetUserDisabled disables or enables a user; disabling ends their
// sessions, the console's too. An unknown user is ENotFound.
func (s *Store) SetUserDisabled(ctx context.Context, name string, disabled bool, now time.Time) error {
	return s.write(ctx, "user", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET disabled = $1, updated_at = $2 WHERE name = $3`, disabled, formatTime(now), name)
		if err != nil {
			return fmt.Errorf("disable user: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return syncproto.Errorf(syncproto.ENotFound, "no user %q", name)
		}
		if disabled {
			if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoke_reason = 'user disabled'
				WHERE user_name = $2 AND revoked_at IS NULL`, formatTime(now), name); err != nil {
				return fmt.Errorf("disable user: %w", err)
			}
			if err := endConsoleSessions(ctx, tx, name); err != nil {
				return fmt.Errorf("disable user: %w", err)
			}
		}
		return nil
	})
}

// CreateSession stores a new session with its first refresh token. The
// device's claim is checked and made under the write lock, so two users
// logging in at once on a new device id, on any instances, cannot both get
// it: auth.ErrDeviceRevoked for a revoked device, auth.ErrDeviceTaken when
// another user has a session (live or not) on it or pushed from it.
func (s *Store) CreateSession(ctx context.Context, sess auth.Session, refreshHash string) error {
	return s.write(ctx, "login", func(ctx context.Context, tx pgx.Tx) error {
		var revoked, others int64
		if err := tx.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM revoked_devices WHERE device_id = $1),
			(SELECT count(*) FROM sessions WHERE device_id = $1 AND user_name <> $2) +
			(SELECT count(*) FROM devices WHERE device_id = $1 AND user_id <> $2)`,
			sess.DeviceID, sess.User).Scan(&revoked, &others); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		switch {
		case revoked > 0:
			return auth.ErrDeviceRevoked
		case others > 0:
			return auth.ErrDeviceTaken
		}
		created := formatTime(sess.CreatedAt)
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (id, user_name, device_id, created_at, expires_at, last_used_at)
			VALUES ($1, $2, $3, $4, $5, $4)`, sess.ID, sess.User, sess.DeviceID, created, formatTime(sess.ExpiresAt)); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (hash, session_id, current, created_at) VALUES ($1, $2, TRUE, $3)`,
			refreshHash, sess.ID, created); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		// The user's sessions beyond the newest auth.MaxSessionsPerUser go,
		// with their refresh tokens.
		const older = `SELECT id FROM sessions WHERE user_name = $1 ORDER BY pos DESC OFFSET $2`
		if _, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE session_id IN (`+older+`)`,
			sess.User, auth.MaxSessionsPerUser); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE id IN (`+older+`)`, sess.User, auth.MaxSessionsPerUser); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return nil
	})
}

// Refresh rotates a session's refresh token in one transaction. Presenting
// a token that was already rotated revokes the session, unless it is the
// retry of a rotation whose answer was lost (auth.RefreshGrace).
func (s *Store) Refresh(ctx context.Context, sessionID, presented, newHash string, now, expires time.Time) (auth.RefreshOutcome, *auth.Session, error) {
	outcome, sess := auth.RefreshInvalid, (*auth.Session)(nil)
	err := s.write(ctx, "refresh", func(ctx context.Context, tx pgx.Tx) error {
		var err error
		outcome, sess, err = refresh(ctx, tx, sessionID, presented, newHash, now, expires)
		return err
	})
	if err != nil {
		return auth.RefreshInvalid, nil, err
	}
	return outcome, sess, nil
}

func refresh(ctx context.Context, tx pgx.Tx, sessionID, presented, newHash string, now, expires time.Time) (auth.RefreshOutcome, *auth.Session, error) {
	var current bool
	err := tx.QueryRow(ctx, `SELECT current FROM refresh_tokens WHERE hash = $1 AND session_id = $2`, presented, sessionID).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.RefreshInvalid, nil, nil
	}
	if err != nil {
		return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
	}
	var sess auth.Session
	var created, expiresAt string
	var revoked *string
	err = tx.QueryRow(ctx, `SELECT id, user_name, device_id, created_at, expires_at, revoked_at FROM sessions WHERE id = $1`,
		sessionID).Scan(&sess.ID, &sess.User, &sess.DeviceID, &created, &expiresAt, &revoked)
	if err != nil {
		return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = parseTime(created), parseTime(expiresAt)
	if revoked != nil || now.After(sess.ExpiresAt) {
		return auth.RefreshInvalid, nil, nil
	}
	if !current {
		lost, err := lostRotation(ctx, tx, sessionID, presented, now)
		if err != nil {
			return auth.RefreshInvalid, nil, err
		}
		if lost {
			return rotate(ctx, tx, &sess, presented, true, newHash, now, expires)
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoke_reason = 'refresh token reused' WHERE id = $2`,
			formatTime(now), sessionID); err != nil {
			return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
		}
		return auth.RefreshReused, &sess, nil
	}
	return rotate(ctx, tx, &sess, presented, false, newHash, now, expires)
}

// lostRotation reports whether a rotated refresh token is presented again
// because its rotation's answer was lost (as in the SQLite store): the
// session's current token was issued for it, less than auth.RefreshGrace
// ago, and not itself by such a retry.
func lostRotation(ctx context.Context, tx pgx.Tx, sessionID, presented string, now time.Time) (bool, error) {
	var replaces *string
	var viaGrace bool
	var issued string
	err := tx.QueryRow(ctx, `SELECT replaces, via_grace, created_at FROM refresh_tokens WHERE session_id = $1 AND current`,
		sessionID).Scan(&replaces, &viaGrace, &issued)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("refresh: %w", err)
	}
	return replaces != nil && *replaces == presented && !viaGrace && now.Sub(parseTime(issued)) < auth.RefreshGrace, nil
}

// rotate makes newHash the session's only current refresh token, issued
// for the presented one, and extends the session (within its maximum age).
func rotate(ctx context.Context, tx pgx.Tx, sess *auth.Session, presented string, viaGrace bool, newHash string, now, expires time.Time) (auth.RefreshOutcome, *auth.Session, error) {
	sessionID := sess.ID
	if maxExp := sess.CreatedAt.Add(auth.SessionMaxAge); expires.After(maxExp) {
		expires = maxExp
	}
	sess.ExpiresAt = expires
	if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET current = FALSE WHERE session_id = $1 AND current`, sessionID); err != nil {
		return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (hash, session_id, current, created_at, replaces, via_grace)
		VALUES ($1, $2, TRUE, $3, $4, $5)`, newHash, sessionID, formatTime(now), presented, viaGrace); err != nil {
		return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE session_id = $1 AND NOT current AND pos NOT IN (
		SELECT pos FROM refresh_tokens WHERE session_id = $1 AND NOT current ORDER BY pos DESC LIMIT $2)`,
		sessionID, auth.KeptRotatedTokens); err != nil {
		return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE sessions SET expires_at = $1, last_used_at = $2 WHERE id = $3`,
		formatTime(expires), formatTime(now), sessionID); err != nil {
		return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
	}
	return auth.RefreshRotated, sess, nil
}

// Access reads what every authenticated request is checked against: the
// user, whether the session is live, whether the device was revoked.
func (s *Store) Access(ctx context.Context, user, sessionID, device string, now time.Time) (auth.AccessState, error) {
	var st auth.AccessState
	var sessionLive, revoked int64
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM sessions WHERE id = $1 AND user_name = $2 AND device_id = $3 AND revoked_at IS NULL AND expires_at > $4),
		(SELECT count(*) FROM revoked_devices WHERE device_id = $3)`,
		sessionID, user, device, formatTime(now)).Scan(&sessionLive, &revoked)
	if err != nil {
		// Every authenticated request asks: a database restarting or
		// failing over is a 503 with Retry-After, not a 500.
		return st, writeError(fmt.Errorf("access: %w", err))
	}
	st.SessionActive, st.DeviceRevoked = sessionLive == 1, revoked > 0
	if st.User, err = s.User(ctx, user); err != nil {
		return st, err
	}
	return st, nil
}

// RevokeDevice ends every session of a device and refuses its tokens from
// now on.
func (s *Store) RevokeDevice(ctx context.Context, device, by string, now time.Time) error {
	return s.write(ctx, "revoke_device", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO revoked_devices (device_id, revoked_at, revoked_by) VALUES ($1, $2, $3)
			ON CONFLICT (device_id) DO NOTHING`, device, formatTime(now), by); err != nil {
			return fmt.Errorf("revoke device: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoke_reason = 'device revoked'
			WHERE device_id = $2 AND revoked_at IS NULL`, formatTime(now), device); err != nil {
			return fmt.Errorf("revoke device: %w", err)
		}
		return nil
	})
}

// DeviceRevoked reports whether a device was revoked.
func (s *Store) DeviceRevoked(ctx context.Context, device string) (bool, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM revoked_devices WHERE device_id = $1`, device).Scan(&n)
	return n > 0, err
}

// DeviceUsers returns the users who logged in on a device.
func (s *Store) DeviceUsers(ctx context.Context, device string) ([]auth.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE name IN
		(SELECT DISTINCT user_name FROM sessions WHERE device_id = $1) ORDER BY name`, device)
	return collect(rows, err, "device users", scanUserRow)
}
