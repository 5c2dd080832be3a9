package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/server/auth"
)

// CreateConsoleSession stores a new console session; the user's sessions
// beyond the newest auth.MaxConsoleSessionsPerUser end in the same
// transaction.
func (s *Store) CreateConsoleSession(ctx context.Context, cs auth.ConsoleSession) error {
	return writeError(s.createConsoleSessionTx(ctx, cs))
}

func (s *Store) createConsoleSessionTx(ctx context.Context, cs auth.ConsoleSession) error {
	tx, err := s.beginWrite(ctx, "console_session")
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if cs.IdleExpiresAt.After(cs.ExpiresAt) {
		cs.IdleExpiresAt = cs.ExpiresAt // the sweep reads idle_expires_at alone
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (token_hash, user_name, created_at, seen_at, idle_expires_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, cs.TokenHash, cs.User, formatTime(cs.CreatedAt), formatTime(cs.SeenAt),
		formatTime(cs.IdleExpiresAt), formatTime(cs.ExpiresAt)); err != nil {
		return fmt.Errorf("create console session: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE token_hash IN (
		SELECT token_hash FROM console_sessions WHERE user_name = ? ORDER BY created_at DESC, token_hash DESC LIMIT -1 OFFSET ?)`,
		cs.User, auth.MaxConsoleSessionsPerUser); err != nil {
		return fmt.Errorf("create console session: %w", err)
	}
	return s.commit(tx)
}

// ConsoleSession returns the console session of tokenHash if it is live at
// now, or nil.
func (s *Store) ConsoleSession(ctx context.Context, tokenHash string, now time.Time) (*auth.ConsoleSession, error) {
	cs := auth.ConsoleSession{TokenHash: tokenHash}
	var created, seen, idle, expires string
	err := s.reader.QueryRowContext(ctx, `SELECT user_name, created_at, seen_at, idle_expires_at, expires_at
		FROM console_sessions WHERE token_hash = ?`, tokenHash).Scan(&cs.User, &created, &seen, &idle, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("console session: %w", err)
	}
	cs.CreatedAt, cs.SeenAt, cs.IdleExpiresAt, cs.ExpiresAt = parseTime(created), parseTime(seen), parseTime(idle), parseTime(expires)
	if !cs.Live(now) {
		return nil, nil
	}
	return &cs, nil
}

// TouchConsoleSession renews a console session's last request and idle
// expiry; an ended session stays ended.
func (s *Store) TouchConsoleSession(ctx context.Context, tokenHash string, seen, idleExpires time.Time) error {
	return writeError(s.execWrite(ctx, "console_session", `UPDATE console_sessions SET seen_at = ?, idle_expires_at = min(?, expires_at)
		WHERE token_hash = ?`, formatTime(seen), formatTime(idleExpires), tokenHash))
}

// EndConsoleSession removes a console session.
func (s *Store) EndConsoleSession(ctx context.Context, tokenHash string) error {
	return writeError(s.execWrite(ctx, "console_session", `DELETE FROM console_sessions WHERE token_hash = ?`, tokenHash))
}

// SweepConsoleSessions removes at most limit console sessions expired at
// now, the oldest idle expiry first (idle_expires_at is never after
// expires_at, so it alone says which have expired).
func (s *Store) SweepConsoleSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	tx, err := s.beginWrite(ctx, "console_session")
	if err != nil {
		return 0, writeError(err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE token_hash IN (
		SELECT token_hash FROM console_sessions WHERE idle_expires_at <= ? ORDER BY idle_expires_at LIMIT ?)`,
		formatTime(now), limit)
	if err != nil {
		return 0, writeError(fmt.Errorf("sweep console sessions: %w", err))
	}
	n, _ := res.RowsAffected()
	return int(n), writeError(s.commit(tx))
}

// execWrite runs one statement in a write transaction of its own.
func (s *Store) execWrite(ctx context.Context, op, query string, args ...any) error {
	tx, err := s.beginWrite(ctx, op)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.commit(tx)
}

// endConsoleSessions ends every console session of user, in tx (PutUser
// with a new password or role, SetUserDisabled).
func endConsoleSessions(ctx context.Context, tx *sql.Tx, user string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE user_name = ?`, user); err != nil {
		return fmt.Errorf("end console sessions: %w", err)
	}
	return nil
}
