// Package postgres is fieldsync's store on PostgreSQL, for a deployment
// that outgrows one machine: several fieldsync instances on one database,
// a streaming replica to fail over to. It implements syncproto.Store and
// auth.Accounts with pgx v5 (a pgxpool pool; database/sql through
// pgx/stdlib only for goose, which applies the embedded migrations at open,
// as in the SQLite store). It passes the store contract suite
// (server/storetest).
//
// # Writes
//
// Every write transaction (a change set, an outbox replay, a supervisor's
// decision, a photo upload or sweep, a pull position, a record migration)
// begins by taking one transaction-scoped advisory lock,
// pg_advisory_xact_lock(WriteLockKey), and holds it to its commit: writes
// are serialised across every connection of every instance on the
// database, as SQLite's single writer serialises them on one machine. A
// change set is one transaction, or a savepoint of one shared with the
// change sets pushed at the same moment (group commit, below; savepoints
// per change set in a replay too), committed with synchronous_commit on (set on every connection, whatever
// the database's default), so an acknowledged change set is on disk — and
// on the synchronous standbys, when there are any — before the answer.
//
// Why one lock rather than row locks (SELECT … FOR UPDATE) or serializable
// retries: a change set reads and writes many rows besides its records
// (the device's last sequence, receipts, the per-village checksum sums,
// duplicates, photo references), in an order the merge decides; row locks
// taken in that order can deadlock between two change sets, and
// PostgreSQL then aborts one — a 500 or a retry loop for the tablet.
// Serializable retries re-run the merge and must not re-run its side
// effects. One lock has neither failure: no lost update (the second change
// set reads what the first committed), no deadlock, per-device order and
// idempotency across instances (the receipt is read under the lock). Its
// cost is that writes do not run in parallel; reads (pulls, snapshots,
// reports, checksums) do, on their own snapshots, from every instance.
//
// # The cursor hazard
//
// A change-log position (changes.seq) is taken from a sequence at insert,
// not at commit; with concurrent writers a pull could read position 11
// while 10 is still in flight, move its cursor past 10, and never see it.
// Here that cannot happen: positions are taken only under the write lock,
// and the lock is released only after the commit is visible to new
// snapshots (PostgreSQL ends a transaction in the proc array before it
// releases its locks). So positions are handed out in commit order: every
// position at or below the highest one a snapshot sees is committed in
// that snapshot or belongs to a transaction that rolled back (a gap, never
// filled later). A pull, a checksum or a push answer reads the head in the
// same snapshot as the rows (REPEATABLE READ, read only), so its cursor
// never passes a change in flight. TestPullersMissNoChangeOfConcurrentWriters
// holds it: writers on several stores (several pools, as several
// instances) and pullers following cursors; every change reaches every
// puller exactly once.
//
// # Several instances
//
// Besides the data, the database holds what instances must share to act
// as one server: the cursor secret (settings) and the token-signing keys
// (signing_keys, auth.KeyStore), so that a token or a cursor from one
// instance works at every other and a rotation is seen by all. The photos
// are files in a directory the instances share (serve --photos).
//
// # Group commit
//
// Pushes go through one committer goroutine per Store, as in the SQLite
// store (groupcommit.go): the change sets waiting at that moment share one
// write transaction, each in a savepoint of its own, and one commit (one
// WAL flush, one wait for the synchronous standbys, one turn of the write
// lock); each is answered only after that commit. A change set that fails
// rolls back to its savepoint and fails alone; a failed commit fails the
// group, none of it acknowledged. Within a change set, the writes whose
// answers nothing needs are queued and sent together, in one round trip,
// before its next read and at its end (pushTx.later).
//
// # What it does not do
//
// It has no equivalent of OpenReader (every Open migrates),
// nor of the online backup (pg_dump or a base backup; see
// docs/operators.md). ceiling.go holds fieldsync bench's helpers: copies
// of a database, and the raw engine loops.
package postgres

import (
	"context"
	"crypto/rand"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/fieldsync/fieldsync/server/groupcommit"
	"github.com/fieldsync/fieldsync/syncproto"
)

//go:embed migrations/*.sql
var migrations embed.FS

// WriteLockKey is the key of the advisory lock every write transaction
// holds to its commit (see the package documentation). Another program
// writing to fieldsync's tables must take it too.
const WriteLockKey int64 = 0x6669656c6473 // "fields"

// Options configure a Store.
type Options struct {
	// Now is the clock of the store's own record keeping (a photo upload,
	// a device's name); time.Now when nil.
	Now func() time.Time
	// MaxConns is the size of the connection pool: when 0, the URL's
	// pool_max_conns, else DefaultMaxConns. Snapshots and pulls hold a
	// connection while they stream; writes take one each, one at a time.
	MaxConns int32
	// LockTimeout is how long a write waits for the write lock (held by
	// another write of any instance) before it is refused as
	// EUnavailable, as the SQLite store's busy timeout; DefaultLockTimeout
	// when 0.
	LockTimeout time.Duration
	// Observer, when set, is told how long each write transaction waited
	// before it could write: for a pooled connection, then for the write
	// lock (which a write of this or another instance may hold).
	Observer WriteObserver
}

// WriteObserver is told how long each write transaction waited before it
// could write: a push in the group committer's queue, then every write for
// a connection of the pool and for the write lock (the advisory lock that
// the writes of every instance on the database take in turn). op names
// the operation: push, outbox_replay, a supervisor's decision (resolve,
// merge…), login, refresh, revoke_device, user, record_pull, photo_upload,
// photo_sweep, signing_key, publish, migrate_records, name_device. The
// server's metrics implement it, so that this package needs no metrics
// library.
type WriteObserver interface {
	WriteWaited(op string, waited time.Duration)
}

// Defaults of Options.
const (
	DefaultMaxConns    = 20
	DefaultLockTimeout = 10 * time.Second
)

// Store is the PostgreSQL implementation of syncproto.Store.
type Store struct {
	pool      *pgxpool.Pool
	cursorKey []byte
	now       func() time.Time
	// lockTimeout bounds a write's wait for the write lock.
	lockTimeout time.Duration
	// beforeCommit, when set (tests only), runs in every write
	// transaction after its writes and before its commit.
	beforeCommit func()
	// onGroup, when set (tests only), is told the size of every group
	// of change sets the committer writes.
	onGroup func(n int)
	// observer is told each write's wait; nil for none.
	observer WriteObserver
	// summaries, once set by KeepSummaries, is what every write keeps the
	// household summaries with (summaries.go).
	summaries atomic.Pointer[syncproto.SummaryKeeper]
	// verdicts, once set by KeepVerdicts, judges the kept verdicts
	// (verdicts.go).
	verdicts atomic.Pointer[syncproto.VerdictJudge]

	// committer is the group committer of pushes (groupcommit.go); it
	// keeps whether Close began, and every write runs under its WhileOpen.
	committer *groupcommit.Committer

	closeOnce sync.Once
	closeErr  error
}

var _ syncproto.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a libpq
// key=value string), applies the migrations it lacks, and reads (creating
// it the first time) the cursor secret.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	// Durable acknowledgement whatever the database's or role's default:
	// a commit returns once its WAL is flushed (and, with synchronous
	// standbys, replicated).
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["application_name"] = "fieldsync"
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !strings.Contains(url, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	// A pooled connection is pinged each time it is taken (one round trip),
	// not only after a second idle as pgxpool does by default: after a
	// restart or a failover every idle connection is dead, and each would
	// otherwise fail one request before the pool learns it.
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return true }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, now: opts.Now, lockTimeout: opts.LockTimeout, observer: opts.Observer}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if s.cursorKey, err = s.cursorSecret(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.startCommitter()
	return s, nil
}

// migrate applies the embedded migrations the database lacks, each in its
// own transaction, recorded in goose's version table, under the write
// lock (two instances starting at once migrate one after the other).
func (s *Store) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, WriteLockKey); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, WriteLockKey)
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// cursorSecret returns the key that signs cursors, creating it on first
// use. It lives in the database, so that every instance signs with the
// same key and a backup restores it with the change log.
func (s *Store) cursorSecret(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ('cursor_secret', $1)
		ON CONFLICT (name) DO NOTHING`, fresh); err != nil {
		return nil, fmt.Errorf("cursor secret: %w", err)
	}
	var secret []byte
	if err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = 'cursor_secret'`).Scan(&secret); err != nil {
		return nil, fmt.Errorf("cursor secret: %w", err)
	}
	return secret, nil
}

// CursorKey returns the key the cursors of this database are signed with.
func (s *Store) CursorKey() []byte { return s.cursorKey }

// DatabaseSize is the size on disk of the store's database
// (pg_database_size), for the metrics.
func (s *Store) DatabaseSize(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n); err != nil {
		return 0, writeError(fmt.Errorf("database size: %w", err))
	}
	return n, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close refuses new writes, waits for those under way (the pushes queued
// for the group committer included) and closes the pool. Later calls do
// nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.committer.Close()
		s.pool.Close()
	})
	return s.closeErr
}

// write runs fn in one write transaction holding the write lock, and
// commits it; an error of fn or of the commit keeps nothing. fn's context
// is ctx without its cancellation: a caller that goes away does not cut a
// write in half. op names the write for the observer. After Close began it
// refuses with EUnavailable.
func (s *Store) write(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return s.committer.WhileOpen(func() error { return s.writeNow(context.WithoutCancel(ctx), op, fn) })
}

func (s *Store) writeNow(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	start := time.Now()
	tx, err := s.beginWrite(ctx)
	if s.observer != nil {
		s.observer.WriteWaited(op, time.Since(start))
	}
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := fn(ctx, tx); err != nil {
		return writeError(err)
	}
	if s.beforeCommit != nil {
		s.beforeCommit()
	}
	if err := tx.Commit(ctx); err != nil {
		return writeError(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// beginWrite begins a write transaction and takes the write lock, waiting
// for it up to the lock timeout. Its errors are writeError's.
func (s *Store) beginWrite(ctx context.Context) (pgx.Tx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, writeError(fmt.Errorf("begin: %w", err))
	}
	// SET LOCAL takes no parameters: the timeout is a number of
	// milliseconds formatted here.
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, s.lockTimeout.Milliseconds())); err != nil {
		tx.Rollback(ctx)
		return nil, writeError(fmt.Errorf("lock timeout: %w", err))
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, WriteLockKey); err != nil {
		tx.Rollback(ctx)
		return nil, writeError(fmt.Errorf("write lock: %w", err))
	}
	return tx, nil
}

// read runs fn in one read-only REPEATABLE READ transaction: every query
// of fn sees the same snapshot. A database that cannot begin one (down,
// restarting, out of connections) is EUnavailable, as for a write; fn's
// own errors are returned as they are (a sink's error is the client's).
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return writeError(fmt.Errorf("begin read: %w", err))
	}
	defer tx.Rollback(ctx)
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// rebind turns the ? placeholders of a query (the SQLite store's style,
// kept so the two stores' queries read alike) into PostgreSQL's $1, $2…
// No query of this package has a ? of its own (no jsonb ? operator).
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func formatTime(t time.Time) string { return syncproto.FormatTime(t) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// nullString is s as a parameter: NULL when empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullVersion is a schema version as stored: NULL when unknown (0).
func nullVersion(v int) any {
	if v <= 0 {
		return nil
	}
	return v
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
