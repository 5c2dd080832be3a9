// Package sqlite is fieldsync's embedded store: SQLite in WAL mode through
// modernc.org/sqlite, one writer connection and a pool of readers, with
// migrations embedded and applied at open. It implements syncproto.Store
// and auth.Accounts; ceiling.go holds fieldsync bench's raw SQLite loops,
// the engine's own ceiling on the machine.
//
// It may import the domain (schema, syncproto), auth's types and the
// SQLite driver; never an adapter (api, cli, export, bench).
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/fieldsync/fieldsync/server/groupcommit"
	"github.com/fieldsync/fieldsync/syncproto"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file inside a data directory.
const FileName = "fieldsync.db"

// Options configure a Store.
type Options struct {
	// Now is the clock of the store's own record keeping: when a user was
	// created or logged in, a photo uploaded, a device named; time.Now when
	// nil. Tests set it. The store keeps no schema and makes no decision:
	// pushes, supervisors' decisions and reports are dated and judged by
	// the services of package syncproto, on the server's schema and clock.
	Now func() time.Time
	// Readers is the size of the read pool; 2×GOMAXPROCS when 0.
	Readers int
	// BusyTimeout is how long a connection waits for a lock held by
	// another process (a backup, the sqlite3 shell); 10 s when 0.
	BusyTimeout time.Duration
	// WALAutocheckpoint is the WAL size in pages at which a commit
	// checkpoints itself (below it the background checkpointer does, see
	// checkpoint.go); DefaultWALAutocheckpoint when 0.
	WALAutocheckpoint int
	// Observer, when set, is told how long each write transaction waited
	// before it began.
	Observer WriteObserver
}

// WriteObserver is told how long each write transaction waited before it
// could begin: for the single writer connection (the writes of this
// process queue for it; a push waits in the group committer's queue, then
// for its group's transaction) and then for SQLite's write lock (which
// another process, a backup or the sqlite3 shell, may hold up to the busy
// timeout). op names the operation: push, resolve, merge, login, refresh,
// revoke_device, user, record_pull. The server's metrics implement it, so
// that this package needs no metrics library.
type WriteObserver interface {
	WriteWaited(op string, waited time.Duration)
}

// DefaultWALAutocheckpoint is the WAL size, in pages, at which a commit
// copies the WAL into the database itself (SQLite's default, 4 MiB).
const DefaultWALAutocheckpoint = 1000

// Store is the SQLite implementation of syncproto.Store.
type Store struct {
	writer *sql.DB // one connection: every write transaction is serialised here
	reader *sql.DB // read-only pool
	// cursorKey signs the cursors the server issues (the push service's
	// codec); it lives in the database (cursorSecret).
	cursorKey []byte
	now       func() time.Time
	path      string
	// observer is told each write's wait for the writer; nil for none.
	observer WriteObserver

	// beforeCommit, when set (tests only), runs inside every push
	// transaction after its writes and before its commit.
	beforeCommit func(context.Context, *sql.Tx) error
	// onGroup, when set (tests only), is told the size of every group.
	onGroup func(n int)
	// beforePhotoRemoval, when set (tests only), runs in the sweep of
	// unreferenced photos between the check of a photo and its removal.
	beforePhotoRemoval func(sha256 string)
	// summaries, once set by KeepSummaries, is what every write keeps the
	// household summaries with (summaries.go).
	summaries atomic.Pointer[syncproto.SummaryKeeper]
	// verdicts, once set by KeepVerdicts, judges the kept verdicts
	// (verdicts.go).
	verdicts atomic.Pointer[syncproto.VerdictJudge]
	// ckpt checkpoints the WAL in the background (checkpoint.go).
	ckpt *checkpointer

	// committer is the group committer of pushes (groupcommit.go), and
	// keeps whether Close began.
	committer *groupcommit.Committer

	closeOnce sync.Once
	closeErr  error
}

var _ syncproto.Store = (*Store)(nil)

// withDefaults fills in the options left zero; readers is the read pool's
// size when Readers is not set.
func (o Options) withDefaults(readers int) Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Readers <= 0 {
		o.Readers = readers
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 10 * time.Second
	}
	return o
}

// Open opens (creating it if needed) the database at path, checks that WAL
// took, and applies pending migrations.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults(2 * runtime.GOMAXPROCS(0))
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	s := &Store{now: opts.Now, path: abs, observer: opts.Observer}
	if err := createPrivate(abs); err != nil {
		return nil, err
	}

	// Every pragma goes in the DSN so that it reaches every pooled
	// connection; busy_timeout first so that the others wait for locks.
	// synchronous(FULL) in WAL mode fsyncs the WAL at every commit: a push
	// is acknowledged only once it survives a power cut.
	pragmas := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)",
		opts.BusyTimeout.Milliseconds())
	base := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + pragmas
	if opts.WALAutocheckpoint <= 0 {
		opts.WALAutocheckpoint = DefaultWALAutocheckpoint
	}
	if s.writer, err = sql.Open("sqlite", base+fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)&_pragma=cache_size(-16384)&_txlock=immediate", opts.WALAutocheckpoint)); err != nil {
		return nil, err
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)

	var mode string
	if err := s.writer.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		s.writer.Close()
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	if !strings.EqualFold(mode, "wal") {
		s.writer.Close()
		return nil, fmt.Errorf("open %s: journal_mode is %q, not wal", abs, mode)
	}
	if err := migrate(ctx, s.writer); err != nil {
		s.writer.Close()
		return nil, err
	}
	if s.cursorKey, err = s.cursorSecret(ctx); err != nil {
		s.writer.Close()
		return nil, err
	}

	if s.reader, err = sql.Open("sqlite", base+"&_pragma=query_only(1)"); err != nil {
		s.writer.Close()
		return nil, err
	}
	s.reader.SetMaxOpenConns(opts.Readers)
	s.reader.SetMaxIdleConns(opts.Readers)
	if err := s.startCheckpointer(base); err != nil {
		s.reader.Close()
		s.writer.Close()
		return nil, err
	}
	s.startCommitter()
	return s, nil
}

// OpenReader opens an existing database for reading only, as fieldsync
// export does: no migration, no writer connection, no checkpoint at Close.
// It may run beside a server on the same file: in WAL mode readers and the
// writer do not block each other. The database must be migrated to this
// build's newest migration (an older one is migrated by starting serve; a
// newer one needs a newer fieldsync). Only the read methods may be called.
func OpenReader(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults(2)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("no database at %s: %w", abs, err)
	}
	s := &Store{now: opts.Now, path: abs}
	dsn := fmt.Sprintf("%s?mode=rw&_pragma=busy_timeout(%d)&_pragma=query_only(1)", fileURI(abs), opts.BusyTimeout.Milliseconds())
	if s.reader, err = sql.Open("sqlite", dsn); err != nil {
		return nil, err
	}
	s.reader.SetMaxOpenConns(opts.Readers)
	s.reader.SetMaxIdleConns(opts.Readers)
	fail := func(format string, args ...any) (*Store, error) {
		s.reader.Close()
		return nil, fmt.Errorf("open %s: %s", abs, fmt.Sprintf(format, args...))
	}
	var mode string
	if err := s.reader.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fail("%v", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fail("journal_mode is %q, not wal: is this a fieldsync database?", mode)
	}
	var migration int64
	if err := s.reader.QueryRowContext(ctx, "SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied").Scan(&migration); err != nil {
		return fail("not a fieldsync database: %v", err)
	}
	latest, err := latestMigration()
	if err != nil {
		return fail("%v", err)
	}
	switch {
	case migration < latest:
		return fail("the database is at migration %d, this fieldsync at %d: start fieldsync serve once to migrate it", migration, latest)
	case migration > latest:
		return fail("the database is at migration %d, newer than this fieldsync's %d: use a newer fieldsync", migration, latest)
	}
	var secret []byte
	if err := s.reader.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'cursor_secret'`).Scan(&secret); err != nil {
		return fail("cursor secret: %v", err)
	}
	s.cursorKey = secret
	return s, nil
}

// createPrivate creates an empty database file readable by its owner only
// (0600, whatever the umask), unless one exists. SQLite creates the WAL and
// shared-memory files with the mode of the database file, so they are
// private too. The file holds password hashes, sessions, the cursor secret
// and personal data.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	return f.Close()
}

// migrate applies the embedded migrations that the database lacks, each in
// its own transaction, recorded in goose's version table.
func migrate(ctx context.Context, db *sql.DB) error {
	p, err := migrator(db)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// migrator is the goose provider of the embedded migrations on db.
func migrator(db *sql.DB) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(goMigrations()...))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// cursorSecret returns the key that signs cursors, creating it on first
// use. It lives in the database, so that a backup restores it with the
// change log the cursors point into.
func (s *Store) cursorSecret(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('cursor_secret', ?)
		ON CONFLICT (name) DO NOTHING`, fresh); err != nil {
		return nil, fmt.Errorf("cursor secret: %w", err)
	}
	var secret []byte
	if err := s.writer.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'cursor_secret'`).Scan(&secret); err != nil {
		return nil, fmt.Errorf("cursor secret: %w", err)
	}
	return secret, nil
}

// CursorKey returns the key the cursors of this database are signed with
// (syncproto.NewCursorCodec); the caller must not change it.
func (s *Store) CursorKey() []byte { return s.cursorKey }

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close closes both pools. The readers go first; then the writer copies
// the WAL into the database file and truncates it (waiting up to the busy
// timeout for readers of other processes), so that a clean shutdown leaves
// a complete database file and an empty WAL rather than relying on the
// last connection's implicit checkpoint, which SQLite skips while another
// process has the file open. Close may be called again: later calls do
// nothing and return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	if s.writer == nil { // opened by OpenReader: no committer, no writer
		return s.reader.Close()
	}
	s.stopCommitter()
	kerr := s.stopCheckpointer()
	rerr := s.reader.Close()
	var busy, walPages, copied int
	cerr := s.writer.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &walPages, &copied)
	if cerr == nil && busy != 0 {
		cerr = errors.New("another connection kept the WAL from being checkpointed")
	}
	if cerr != nil {
		cerr = fmt.Errorf("checkpoint on close: %w", cerr)
	}
	return errors.Join(kerr, rerr, cerr, s.writer.Close())
}

// Ping checks that both pools answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.reader.PingContext(ctx); err != nil {
		return err
	}
	return s.writer.PingContext(ctx)
}

// beginWrite begins an IMMEDIATE transaction on the writer connection and
// tells the observer how long that took: the wait for the connection, then
// for the write lock. op names the operation for the observer.
func (s *Store) beginWrite(ctx context.Context, op string) (*sql.Tx, error) {
	start := time.Now()
	tx, err := s.writer.BeginTx(ctx, nil)
	if s.observer != nil {
		s.observer.WriteWaited(op, time.Since(start))
	}
	return tx, err
}

func formatTime(t time.Time) string { return syncproto.FormatTime(t) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
