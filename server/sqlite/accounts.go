package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

var _ auth.Accounts = (*Store)(nil)

const userColumns = `name, password_hash, role, scope, disabled, created_at, updated_at, department`

func scanUser(row rowScanner) (*auth.User, error) {
	var u auth.User
	var scope, created, updated string
	err := row.Scan(&u.Name, &u.PasswordHash, &u.Role, &scope, &u.Disabled, &created, &updated, &u.Department)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read user: %w", err)
	}
	if err := json.Unmarshal([]byte(scope), &u.Scope); err != nil {
		return nil, fmt.Errorf("user %s scope: %w", u.Name, err)
	}
	u.CreatedAt, u.UpdatedAt = parseTime(created), parseTime(updated)
	return &u, nil
}

// scanUserRow reads one user row for collect.
func scanUserRow(row rowScanner) (auth.User, error) {
	u, err := scanUser(row)
	if err != nil {
		return auth.User{}, err
	}
	return *u, nil
}

// PutUser creates or updates a user. A new password ends the user's
// sessions: tokens obtained with the old one stop working. A new password
// or role ends their console sessions.
func (s *Store) PutUser(ctx context.Context, u auth.User) error {
	return writeError(s.putUserTx(ctx, u))
}

func (s *Store) putUserTx(ctx context.Context, u auth.User) error {
	scope, err := json.Marshal(nonNil(u.Scope))
	if err != nil {
		return err
	}
	tx, err := s.beginWrite(ctx, "user")
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var oldHash, oldRole string
	if err := tx.QueryRowContext(ctx, `SELECT password_hash, role FROM users WHERE name = ?`, u.Name).Scan(&oldHash, &oldRole); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("put user: %w", err)
	}
	now := formatTime(s.now())
	_, err = tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role,
		scope = excluded.scope, disabled = excluded.disabled, updated_at = excluded.updated_at, department = excluded.department`,
		u.Name, u.PasswordHash, u.Role, string(scope), u.Disabled, now, now, u.Department)
	if err != nil {
		return fmt.Errorf("put user: %w", err)
	}
	if oldHash != "" && oldHash != u.PasswordHash {
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = 'password changed'
			WHERE user_name = ? AND revoked_at IS NULL`, now, u.Name); err != nil {
			return fmt.Errorf("put user: %w", err)
		}
	}
	if oldHash != "" && (oldHash != u.PasswordHash || oldRole != u.Role) {
		if err := endConsoleSessions(ctx, tx, u.Name); err != nil {
			return fmt.Errorf("put user: %w", err)
		}
	}
	return s.commit(tx)
}

// User returns the named user, or nil.
func (s *Store) User(ctx context.Context, name string) (*auth.User, error) {
	return scanUser(s.reader.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
}

// Users lists every user by name.
func (s *Store) Users(ctx context.Context) ([]auth.User, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	return collect(rows, err, "users", scanUserRow)
}

// SetUserDisabled disables or enables a user; disabling ends their
// sessions, the console's too.
func (s *Store) SetUserDisabled(ctx context.Context, name string, disabled bool, now time.Time) error {
	return writeError(s.setUserDisabledTx(ctx, name, disabled, now))
}

func (s *Store) setUserDisabledTx(ctx context.Context, name string, disabled bool, now time.Time) error {
	tx, err := s.beginWrite(ctx, "user")
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE users SET disabled = ?, updated_at = ? WHERE name = ?`, disabled, formatTime(now), name)
	if err != nil {
		return fmt.Errorf("disable user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return syncproto.Errorf(syncproto.ENotFound, "no user %q", name)
	}
	if disabled {
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = 'user disabled'
			WHERE user_name = ? AND revoked_at IS NULL`, formatTime(now), name); err != nil {
			return fmt.Errorf("disable user: %w", err)
		}
		if err := endConsoleSessions(ctx, tx, name); err != nil {
			return fmt.Errorf("disable user: %w", err)
		}
	}
	return s.commit(tx)
}

// CreateSession stores a new session with its first refresh token. The
// device's claim is checked and made in the same write transaction, so two
// users logging in at once on a new device id cannot both get it: it
// returns auth.ErrDeviceRevoked for a revoked device and
// auth.ErrDeviceTaken when another user has a session (live or not) on it.
func (s *Store) CreateSession(ctx context.Context, sess auth.Session, refreshHash string) error {
	return writeError(s.createSessionTx(ctx, sess, refreshHash))
}

func (s *Store) createSessionTx(ctx context.Context, sess auth.Session, refreshHash string) error {
	tx, err := s.beginWrite(ctx, "login")
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var revoked, others int
	if err := tx.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM revoked_devices WHERE device_id = ?),
		(SELECT count(*) FROM sessions WHERE device_id = ? AND user_name <> ?) +
		(SELECT count(*) FROM devices WHERE device_id = ? AND user_id <> ?)`,
		sess.DeviceID, sess.DeviceID, sess.User, sess.DeviceID, sess.User).Scan(&revoked, &others); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	switch {
	case revoked > 0:
		return auth.ErrDeviceRevoked
	case others > 0:
		return auth.ErrDeviceTaken
	}
	created := formatTime(sess.CreatedAt)
	if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, user_name, device_id, created_at, expires_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?)`, sess.ID, sess.User, sess.DeviceID, created, formatTime(sess.ExpiresAt), created); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, session_id, current, created_at) VALUES (?, ?, 1, ?)`,
		refreshHash, sess.ID, created); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	// The user's sessions beyond the newest auth.MaxSessionsPerUser go,
	// with their refresh tokens (sessions_user keeps this a range).
	// A device that has pushed stays its user's through devices (see the
	// claim above), whatever happens to its sessions.
	const older = `SELECT id FROM sessions WHERE user_name = ? ORDER BY rowid DESC LIMIT -1 OFFSET ?`
	if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE session_id IN (`+older+`)`,
		sess.User, auth.MaxSessionsPerUser); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id IN (`+older+`)`, sess.User, auth.MaxSessionsPerUser); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return s.commit(tx)
}

// Refresh rotates a session's refresh token in one transaction. Presenting
// a token that was already rotated revokes the session: either the tablet
// or a thief holds a copy, and the worker must log in again.
func (s *Store) Refresh(ctx context.Context, sessionID, presented, newHash string, now, expires time.Time) (auth.RefreshOutcome, *auth.Session, error) {
	outcome, sess, err := s.refreshTx(ctx, sessionID, presented, newHash, now, expires)
	return outcome, sess, writeError(err)
}

func (s *Store) refreshTx(ctx context.Context, sessionID, presented, newHash string, now, expires time.Time) (auth.RefreshOutcome, *auth.Session, error) {
	tx, err := s.beginWrite(ctx, "refresh")
	if err != nil {
		return auth.RefreshInvalid, nil, err
	}
	defer tx.Rollback()
	var current bool
	err = tx.QueryRowContext(ctx, `SELECT current FROM refresh_tokens WHERE hash = ? AND session_id = ?`, presented, sessionID).Scan(&current)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.RefreshInvalid, nil, nil
	}
	if err != nil {
		return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
	}
	var sess auth.Session
	var created, expiresAt string
	var revoked sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT id, user_name, device_id, created_at, expires_at, revoked_at FROM sessions WHERE id = ?`,
		sessionID).Scan(&sess.ID, &sess.User, &sess.DeviceID, &created, &expiresAt, &revoked)
	if err != nil {
		return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = parseTime(created), parseTime(expiresAt)
	if revoked.Valid || now.After(sess.ExpiresAt) {
		return auth.RefreshInvalid, nil, nil
	}
	if !current {
		lost, err := lostRotation(ctx, tx, sessionID, presented, now)
		if err != nil {
			return auth.RefreshInvalid, nil, err
		}
		if lost {
			return s.rotate(ctx, tx, &sess, presented, true, newHash, now, expires)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = 'refresh token reused' WHERE id = ?`,
			formatTime(now), sessionID); err != nil {
			return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
		}
		return auth.RefreshReused, &sess, s.commit(tx)
	}
	return s.rotate(ctx, tx, &sess, presented, false, newHash, now, expires)
}

// lostRotation reports whether a rotated refresh token is presented again
// because its rotation's answer was lost on the way to the tablet: the
// session's current token was issued for it, less than auth.RefreshGrace
// ago, and not itself by such a retry. The retry rotates again instead of
// revoking the session (a flaky village connection must not log a tablet
// out) and retires the current token it replaces, so that one token stays
// live; any other rotated token, the same one a second time, or the retired
// successor, is reuse.
func lostRotation(ctx context.Context, tx *sql.Tx, sessionID, presented string, now time.Time) (bool, error) {
	var replaces sql.NullString
	var viaGrace bool
	var issued string
	err := tx.QueryRowContext(ctx, `SELECT replaces, via_grace, created_at FROM refresh_tokens WHERE session_id = ? AND current = 1`,
		sessionID).Scan(&replaces, &viaGrace, &issued)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("refresh: %w", err)
	}
	return replaces.Valid && replaces.String == presented && !viaGrace && now.Sub(parseTime(issued)) < auth.RefreshGrace, nil
}

// rotate makes newHash the session's only current refresh token, issued
// for the presented one (viaGrace: by the retry of a lost answer), and
// extends the session (within its maximum age).
func (s *Store) rotate(ctx context.Context, tx *sql.Tx, sess *auth.Session, presented string, viaGrace bool, newHash string, now, expires time.Time) (auth.RefreshOutcome, *auth.Session, error) {
	sessionID := sess.ID
	if maxExp := sess.CreatedAt.Add(auth.SessionMaxAge); expires.After(maxExp) {
		expires = maxExp
	}
	sess.ExpiresAt = expires
	if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET current = 0 WHERE session_id = ? AND current = 1`, sessionID); err != nil {
		return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, session_id, current, created_at, replaces, via_grace)
		VALUES (?, ?, 1, ?, ?, ?)`, newHash, sessionID, formatTime(now), presented, viaGrace); err != nil {
		return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
	}
	// The session keeps its newest auth.KeptRotatedTokens rotated tokens
	// (the one just presented among them, for the grace of a lost answer).
	if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE session_id = ? AND current = 0 AND rowid NOT IN (
		SELECT rowid FROM refresh_tokens WHERE session_id = ? AND current = 0 ORDER BY rowid DESC LIMIT ?)`,
		sessionID, sessionID, auth.KeptRotatedTokens); err != nil {
		return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET expires_at = ?, last_used_at = ? WHERE id = ?`,
		formatTime(expires), formatTime(now), sessionID); err != nil {
		return auth.RefreshInvalid, nil, fmt.Errorf("refresh: %w", err)
	}
	return auth.RefreshRotated, sess, s.commit(tx)
}

// Access reads, in one statement, what every authenticated request is
// checked against: the user, whether the session is live, whether the
// device was revoked.
func (s *Store) Access(ctx context.Context, user, sessionID, device string, now time.Time) (auth.AccessState, error) {
	var st auth.AccessState
	var sessionLive, revoked int
	err := s.reader.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM sessions WHERE id = ? AND user_name = ? AND device_id = ? AND revoked_at IS NULL AND expires_at > ?),
		(SELECT count(*) FROM revoked_devices WHERE device_id = ?)`,
		sessionID, user, device, formatTime(now), device).Scan(&sessionLive, &revoked)
	if err != nil {
		return st, fmt.Errorf("access: %w", err)
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
	return writeError(s.revokeDeviceTx(ctx, device, by, now))
}

func (s *Store) revokeDeviceTx(ctx context.Context, device, by string, now time.Time) error {
	tx, err := s.beginWrite(ctx, "revoke_device")
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO revoked_devices (device_id, revoked_at, revoked_by) VALUES (?, ?, ?)
		ON CONFLICT (device_id) DO NOTHING`, device, formatTime(now), by); err != nil {
		return fmt.Errorf("revoke device: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = 'device revoked'
		WHERE device_id = ? AND revoked_at IS NULL`, formatTime(now), device); err != nil {
		return fmt.Errorf("revoke device: %w", err)
	}
	return s.commit(tx)
}

// DeviceRevoked reports whether a device was revoked.
func (s *Store) DeviceRevoked(ctx context.Context, device string) (bool, error) {
	var n int
	err := s.reader.QueryRowContext(ctx, `SELECT count(*) FROM revoked_devices WHERE device_id = ?`, device).Scan(&n)
	return n > 0, err
}

// DeviceUsers returns the users who logged in on a device.
func (s *Store) DeviceUsers(ctx context.Context, device string) ([]auth.User, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE name IN
		(SELECT DISTINCT user_name FROM sessions WHERE device_id = ?) ORDER BY name`, device)
	return collect(rows, err, "device users", scanUserRow)
}
