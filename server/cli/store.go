package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/postgres"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/syncproto"
)

// storeUsage describes the --store setting of the commands that open a
// store.
const storeUsage = "the database: empty for SQLite in --data (the default), or a PostgreSQL `URL` " +
	"(postgres://user@host:5432/fieldsync; a password is better in PGPASSWORD or ~/.pgpass than in the URL)"

// servedStore is what serve and the user commands need of a store: the
// contract and the accounts. Both stores implement it.
type servedStore interface {
	syncproto.Store
	auth.Accounts
}

var (
	_ servedStore = (*sqlite.Store)(nil)
	_ servedStore = (*postgres.Store)(nil)
)

// isPostgres reports whether a --store value names a PostgreSQL database.
func isPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// checkStore refuses a --store value that is neither empty nor a
// PostgreSQL URL, without repeating the value (it may hold a password).
func checkStore(store string) error {
	if store == "" || isPostgres(store) {
		if _, err := url.Parse(store); err != nil {
			return errors.New("--store: not a valid URL")
		}
		return nil
	}
	return errors.New("--store: give a postgres:// URL, or leave it empty for SQLite in --data")
}

// redactedStore is a --store URL fit for a log line: without its password.
func redactedStore(store string) string {
	u, err := url.Parse(store)
	if err != nil {
		return "postgres"
	}
	return u.Redacted()
}

// openPostgres opens the PostgreSQL store at store, migrating it; a write
// waits up to lockTimeout for the write lock (0: the store's default). Its
// errors name the database without the password.
func openPostgres(ctx context.Context, store string, lockTimeout time.Duration) (*postgres.Store, error) {
	return openPostgresWith(ctx, store, postgres.Options{LockTimeout: lockTimeout})
}

// openPostgresWith is openPostgres with every option.
func openPostgresWith(ctx context.Context, store string, opts postgres.Options) (*postgres.Store, error) {
	s, err := postgres.Open(ctx, store, opts)
	if err != nil {
		return nil, fmt.Errorf("--store %s: %w", redactedStore(store), err)
	}
	return s, nil
}

// openServeStore opens serve's store: PostgreSQL when store is a URL,
// else SQLite in the data directory (creating it, with a warning, and
// watching its file for the metrics). where is what the serving log line
// names.
func openServeStore(ctx context.Context, store, data string, opts sqlite.Options, metrics *api.Metrics,
	warn func(msg string, args ...any)) (s servedStore, where string, err error) {
	if store != "" {
		// --busy-timeout bounds the wait for the write lock, as it bounds
		// SQLite's; the metrics see the writes' waits and the database's
		// size, as SQLite's.
		pg, err := openPostgresWith(ctx, store, postgres.Options{LockTimeout: opts.BusyTimeout, Observer: metrics.PostgresWrites()})
		if err != nil {
			return nil, "", err
		}
		if err := metrics.WatchDatabaseSize(pg.DatabaseSize); err != nil {
			pg.Close()
			return nil, "", err
		}
		return pg, redactedStore(store), nil
	}
	if _, err := os.Stat(filepath.Join(data, sqlite.FileName)); errors.Is(err, os.ErrNotExist) {
		// Say so: a mistyped --data would otherwise silently start a new,
		// empty database.
		warn("creating a new database", "path", filepath.Join(data, sqlite.FileName))
	}
	sq, err := openDataWith(ctx, data, io.Discard, opts)
	if err != nil {
		return nil, "", err
	}
	if err := metrics.WatchDatabase(sq.Path()); err != nil {
		sq.Close()
		return nil, "", err
	}
	return sq, sq.Path(), nil
}

// openExportStore opens the store export reads: PostgreSQL when store is
// a URL (one snapshot transaction, beside running servers), else the
// SQLite database of data for reading only.
func openExportStore(ctx context.Context, store, data string) (syncproto.Store, error) {
	if store != "" {
		if err := checkStore(store); err != nil {
			return nil, err
		}
		return openPostgres(ctx, store, 0)
	}
	return sqlite.OpenReader(ctx, filepath.Join(data, sqlite.FileName), sqlite.Options{})
}

// openAccounts opens the store of the user commands: PostgreSQL when
// store is a URL, else the SQLite database in data (which must exist
// unless create).
func openAccounts(ctx context.Context, store, data string, create bool, stderr io.Writer) (servedStore, error) {
	if store != "" {
		if err := checkStore(store); err != nil {
			return nil, err
		}
		return openPostgres(ctx, store, 0)
	}
	if !create {
		if err := mustHaveDatabase(data); err != nil {
			return nil, err
		}
	}
	return openData(ctx, data, stderr)
}

// openKeyring opens serve's signing keys: in the database on PostgreSQL
// (every instance on it signs and verifies with the same keys), else in
// the data directory's keys/.
func openKeyring(ctx context.Context, store servedStore, data string) (*auth.Keyring, error) {
	if ks, ok := store.(auth.KeyStore); ok {
		return auth.OpenSharedKeyring(ctx, ks, nil)
	}
	return auth.OpenKeyring(data, nil)
}
