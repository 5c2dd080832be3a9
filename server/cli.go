package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/sqlite"
)

// Version is the build's version, set by `make build` with -ldflags -X.
var Version = "dev"

// Env is what a command sees of its process: arguments, standard streams,
// and a hook that reports the address the server listens on (tests use it
// to find a free port chosen by the kernel).
type Env struct {
	Args      []string
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
	Listening func(addr string)
}

const usage = `fieldsync — the sync server for village survey teams

Usage:
  fieldsync serve    --addr 127.0.0.1:8080 --data DIR   serve the API from the database in DIR
  fieldsync seed     --data DIR                         load the demo regions, households and inspections
  fieldsync generate --data DIR --households N --seed S load a large deterministic data set (benchmarks)
  fieldsync user add --data DIR --name NAME --role ROLE --scope P1,P2
                                                        create or update a user (password on standard input)
  fieldsync user list --data DIR                        list users
  fieldsync user disable|enable --data DIR --name NAME  stop (or allow again) a user's access, at once
  fieldsync key rotate --data DIR                       make a new token-signing key current
  fieldsync backup   --data DIR --out FILE [--keys]     a consistent copy of the database, the server running or not
  fieldsync restore  --data DIR --from FILE [--force]   put a backup in place (stop the server first)
  fieldsync version                                     print the version

Run 'fieldsync COMMAND --help' for the flags of a command.
`

// ErrUsage is returned for a command line that cannot be run; the usage
// has been printed.
var ErrUsage = errors.New("usage")

// Run runs the fieldsync command line until ctx is done (for serve) or the
// command finishes. main calls it; so do the end-to-end tests.
func Run(ctx context.Context, env Env) error {
	if len(env.Args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return ErrUsage
	}
	cmd, args := env.Args[0], env.Args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, env, args)
	case "seed":
		return runSeed(ctx, env, args)
	case "generate":
		return runGenerate(ctx, env, args)
	case "user":
		return runUser(ctx, env, args)
	case "key":
		return runKey(env, args)
	case "backup":
		return runBackup(ctx, env, args)
	case "restore":
		return runRestore(ctx, env, args)
	case "version", "--version":
		fmt.Fprintln(env.Stdout, "fieldsync", Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return nil
	}
	fmt.Fprintf(env.Stderr, "fieldsync: unknown command %q\n\n%s", cmd, usage)
	return ErrUsage
}

func newFlagSet(env Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: fieldsync %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return ErrUsage
	}
	return nil
}

func helpAsked(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

// openData opens (creating if needed) the database in a data directory.
func openData(ctx context.Context, dir string, stderr io.Writer) (*sqlite.Store, error) {
	return openDataWith(ctx, dir, stderr, sqlite.Options{})
}

// openDataWith is openData with store options (serve's busy timeout).
func openDataWith(ctx context.Context, dir string, stderr io.Writer, opts sqlite.Options) (*sqlite.Store, error) {
	if dir == "" {
		return nil, errors.New("--data is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, sqlite.FileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		// Say so: a mistyped --data would otherwise silently start a new,
		// empty database.
		fmt.Fprintf(stderr, "fieldsync: creating a new database at %s\n", path)
	}
	return sqlite.Open(ctx, path, opts)
}

func runServe(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "serve", "serve --addr HOST:PORT --data DIR")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	data := fs.String("data", "data", "data directory (database, keys)")
	grace := fs.Duration("shutdown-grace", 30*time.Second, "how long to let requests in flight finish on SIGTERM")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	maxBody := fs.Int64("max-body-bytes", DefaultLimits.MaxBodyBytes, "largest request body accepted (bytes)")
	maxChanges := fs.Int("max-changes", DefaultLimits.MaxChanges, "most changes accepted in one change set")
	maxPull := fs.Int("max-pull", DefaultLimits.MaxPull, "largest pull page (records)")
	pushRate := fs.Float64("push-rate", 10, "pushes per second allowed per device, sustained")
	pushBurst := fs.Int("push-burst", DefaultRateLimits.PushPerDevice.Burst, "pushes allowed per device at once")
	readHeaderTimeout := fs.Duration("read-header-timeout", DefaultTimeouts.ReadHeader, "how long a client may take to send a request's headers")
	readTimeout := fs.Duration("read-timeout", DefaultTimeouts.Read, "how long a client may take to send a whole request, body included")
	writeTimeout := fs.Duration("write-timeout", DefaultTimeouts.Write, "how long writing a response may take (a snapshot renews it while the client reads)")
	idleTimeout := fs.Duration("idle-timeout", DefaultTimeouts.Idle, "how long a kept-alive connection may wait for its next request")
	snapshotConcurrency := fs.Int("snapshot-concurrency", DefaultSnapshotConcurrency, "how many snapshots may stream at once (503 beyond)")
	busyTimeout := fs.Duration("busy-timeout", 10*time.Second, "how long a write waits for a lock held by another process (a backup, the sqlite3 shell) before a 503")
	reinspectAfter := DefaultReinspectAfter
	fs.Var(reinspectAfterFlag{&reinspectAfter}, "reinspect-after", "how old a housing appraisal may get before its household is due for re-inspection (days such as 365d, or a duration)")
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	if *maxBody < 1024 || *maxChanges < 1 || *maxPull < 1 || *pushRate <= 0 || *pushBurst < 1 {
		return fmt.Errorf("invalid limits: --max-body-bytes must be ≥ 1024; --max-changes, --max-pull, --push-burst ≥ 1; --push-rate > 0")
	}
	timeouts := Timeouts{ReadHeader: *readHeaderTimeout, Read: *readTimeout, Write: *writeTimeout, Idle: *idleTimeout}
	if err := checkServeLimits(timeouts, *snapshotConcurrency, *grace); err != nil {
		return err
	}
	if *busyTimeout < 10*time.Millisecond {
		return fmt.Errorf("--busy-timeout must be at least 10ms, not %s", *busyTimeout)
	}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(env.Stderr, nil)
	case "json":
		handler = slog.NewJSONHandler(env.Stderr, nil)
	default:
		return fmt.Errorf("--log-format must be text or json, not %q", *logFormat)
	}
	log := slog.New(handler)

	metrics := NewMetrics()
	store, err := openDataWith(ctx, *data, env.Stderr, sqlite.Options{BusyTimeout: *busyTimeout, Observer: metrics})
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the database", "err", err)
		}
	}()
	limits := DefaultLimits
	limits.MaxBodyBytes, limits.MaxChanges, limits.MaxPull = *maxBody, *maxChanges, *maxPull
	if limits.DefaultPull > limits.MaxPull {
		limits.DefaultPull = limits.MaxPull
	}
	keys, err := auth.OpenKeyring(*data, nil)
	if err != nil {
		return err
	}
	rates := DefaultRateLimits
	rates.PushPerDevice = Rate{Every: time.Duration(float64(time.Second) / *pushRate), Burst: *pushBurst}
	if err := metrics.WatchDatabase(store.Path()); err != nil {
		return err
	}
	srv := New(Config{Store: store, Accounts: store, Keys: keys, Logger: log, Metrics: metrics, Limits: limits, Rates: &rates,
		ReinspectAfter: reinspectAfter, Timeouts: timeouts, SnapshotConcurrency: *snapshotConcurrency})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Info("fieldsync serving", "addr", ln.Addr().String(), "data", store.Path(), "version", Version, "signing_key", keys.Current())
	if env.Listening != nil {
		env.Listening(ln.Addr().String())
	}
	err = srv.Serve(ctx, ln, *grace)
	log.Info("fieldsync stopped")
	return err
}

// checkServeLimits refuses timeouts and a snapshot concurrency that would
// make the server unusable, naming the flag at fault.
func checkServeLimits(t Timeouts, snapshots int, grace time.Duration) error {
	var errs []error
	for _, f := range []struct {
		flag string
		d    time.Duration
	}{{"--read-header-timeout", t.ReadHeader}, {"--read-timeout", t.Read}, {"--write-timeout", t.Write}, {"--idle-timeout", t.Idle}} {
		if f.d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration such as 30s or 2m, not %s", f.flag, f.d))
		}
	}
	if t.ReadHeader > t.Read && t.Read > 0 {
		errs = append(errs, fmt.Errorf("--read-header-timeout (%s) must not be longer than --read-timeout (%s)", t.ReadHeader, t.Read))
	}
	if snapshots < 1 {
		errs = append(errs, fmt.Errorf("--snapshot-concurrency must be at least 1, not %d", snapshots))
	}
	if grace < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-grace must not be negative, not %s", grace))
	}
	return errors.Join(errs...)
}
