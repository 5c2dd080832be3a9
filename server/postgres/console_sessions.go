package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/server/auth"
)

// CreateConsoleSession stores a new console session; the user's sessions
// beyond the newest auth.MaxConsoleSessionsPerUser end in the same
// transaction.
func (s *Store) CreateConsoleSession(ctx context.Context, cs auth.ConsoleSession) error {
	if cs.IdleExpiresAt.After(cs.ExpiresAt) {
		cs.IdleExpiresAt = cs.ExpiresAt // the sweep reads idle_expires_at alone
	}
	return s.write(ctx, "console_session", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO console_sessions (token_hash, user_name, created_at, seen_at, idle_expires_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, cs.TokenHash, cs.User, formatTime(cs.CreatedAt), formatTime(cs.SeenAt),
			formatTime(cs.IdleExpiresAt), formatTime(cs.ExpiresAt)); err != nil {
			return fmt.Errorf("create console session: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE token_hash IN (
			SELECT token_hash FROM console_sessions WHERE user_name = $1 ORDER BY created_at DESC, token_hash DESC OFFSET $2)`,
			cs.User, auth.MaxConsoleSessionsPerUser); err != nil {
			return fmt.Errorf("create console session: %w", err)
		}
		return nil
	})
}

// ConsoleSession returns the console session of tokenHash if it is live at
// now, or nil.
func (s *Store) ConsoleSession(ctx context.Context, tokenHash string, now time.Time) (*auth.ConsoleSession, error) {
	cs := auth.ConsoleSession{TokenHash: tokenHash}
	var created, seen, idle, expires string
	err := s.pool.QueryRow(ctx, `SELECT user_name, created_at, seen_at, idle_expires_at, expires_at
		FROM console_sessions WHERE token_hash = $1`, tokenHash).Scan(&cs.User, &created, &seen, &idle, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, writeError(fmt.Errorf("console session: %w", err))
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
	return s.write(ctx, "console_session", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE console_sessions SET seen_at = $1, idle_expires_at = least($2, expires_at)
			WHERE token_hash = $3`, formatTime(seen), formatTime(idleExpires), tokenHash); err != nil {
			return fmt.Errorf("touch console session: %w", err)
		}
		return nil
	})
}

// EndConsoleSession removes a console session.
func (s *Store) EndConsoleSession(ctx context.Context, tokenHash string) error {
	return s.write(ctx, "console_session", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE token_hash = $1`, tokenHash); err != nil {
			return fmt.Errorf("end console session: %w", err)
		}
		return nil
	})
}

// SweepConsoleSessions removes at most limit console sessions expired at
// now, the oldest idle expiry first (idle_expires_at is never after
// expires_at, so it alone says which have expired).
func (s *Store) SweepConsoleSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int64
	err := s.write(ctx, "console_session", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE token_hash IN (
			SELECT token_hash FROM console_sessions WHERE idle_expires_at <= $1 ORDER BY idle_expires_at LIMIT $2)`,
			formatTime(now), limit)
		if err != nil {
			return fmt.Errorf("sweep console sessions: %w", err)
		}
		n = tag.RowsAffected()
		return nil
	})
	return int(n), err
}

// endConsoleSessions ends every console session of user, in tx (PutUser
// with a new password or role, SetUserDisabled).
func endConsoleSessions(ctx context.Context, tx pgx.Tx, user string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE user_name = $1`, user); err != nil {
		return fmt.Errorf("end console sessions: %w", err)
	}
	return nil
}
