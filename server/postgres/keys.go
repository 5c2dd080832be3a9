package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/server/auth"
)

var _ auth.KeyStore = (*Store)(nil)

// SigningKeys returns the current signing key's id (the one added last)
// and every kept key, PKCS #8 DER by id; current is "" when there is none.
func (s *Store) SigningKeys(ctx context.Context) (current string, keys map[string][]byte, err error) {
	rows, err := s.pool.Query(ctx, `SELECT kid, pkcs8 FROM signing_keys ORDER BY pos`)
	if err != nil {
		return "", nil, fmt.Errorf("signing keys: %w", err)
	}
	defer rows.Close()
	keys = map[string][]byte{}
	for rows.Next() {
		var kid string
		var der []byte
		if err := rows.Scan(&kid, &der); err != nil {
			return "", nil, fmt.Errorf("signing keys: %w", err)
		}
		keys[kid], current = der, kid
	}
	if err := rows.Err(); err != nil {
		return "", nil, fmt.Errorf("signing keys: %w", err)
	}
	return current, keys, nil
}

// AddSigningKey stores a signing key and makes it current, under the
// write lock, removing all but the newest keep keys; with onlyIfNone it
// stores nothing when a key exists.
func (s *Store) AddSigningKey(ctx context.Context, kid string, pkcs8 []byte, keep int, onlyIfNone bool) error {
	return s.write(ctx, "signing_key", func(ctx context.Context, tx pgx.Tx) error {
		if onlyIfNone {
			var any bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM signing_keys)`).Scan(&any); err != nil {
				return fmt.Errorf("signing keys: %w", err)
			}
			if any {
				return nil
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, pkcs8, created_at) VALUES ($1, $2, $3)`,
			kid, pkcs8, formatTime(s.now())); err != nil {
			return fmt.Errorf("signing keys: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM signing_keys WHERE pos NOT IN
			(SELECT pos FROM signing_keys ORDER BY pos DESC LIMIT $1)`, max(keep, 1)); err != nil {
			return fmt.Errorf("signing keys: %w", err)
		}
		return nil
	})
}
