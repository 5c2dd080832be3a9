// Package pgtest gives tests a real PostgreSQL: a throwaway cluster that
// the test binary starts itself (initdb into a temporary directory,
// pg_ctl start on a free port of 127.0.0.1 with its socket in that
// directory), once per test binary — from TestMain (Main), or on first use
// (Shared) — and a fresh database per test, dropped when the test ends:
// empty, or a copy of a template prepared once (MainWithTemplate: a store's
// migrations applied once, not per test). The cluster is stopped and its
// directory removed when the binary's tests are done. A test that stops or
// restarts PostgreSQL starts a cluster of its own (ForTest).
//
// It needs Debian's (or any) PostgreSQL server binaries: initdb, pg_ctl
// and postgres, found on PATH, under FIELDSYNC_PG_BIN, or under
// /usr/lib/postgresql/*/bin. Without them the test binary fails with a
// message saying how to install them, unless FIELDSYNC_SKIP_POSTGRES=1 is
// set: then each test that asks for a database is skipped, saying why.
//
// initdb refuses to run as root, so as root the cluster runs as the
// postgres OS user (through runuser), owning the temporary directory. A
// cluster whose test binary died without stopping it (a panic, a kill) is
// stopped and removed by the next Start.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// SkipEnv is the environment variable that, set to 1, skips the tests
// needing PostgreSQL instead of failing them when no binaries are found.
const SkipEnv = "FIELDSYNC_SKIP_POSTGRES"

// Install says how to get the binaries; it ends the failure message.
const Install = "install PostgreSQL's server binaries (Debian/Ubuntu: apt-get install -y postgresql; " +
	"`make postgres` does it), or point FIELDSYNC_PG_BIN at the directory holding initdb and pg_ctl; " +
	"set " + SkipEnv + "=1 to skip the PostgreSQL tests instead"

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct {
	dir    string // the temporary directory: data/ and the socket
	bin    string // the directory of initdb, pg_ctl, postgres
	port   int
	runAs  string // the OS user the cluster runs as; "" for the current one
	logf   string
	nextDB atomic.Int64
	// template, when not empty, is the database new ones are copied
	// from (SetTemplate).
	template string
}

// the cluster of this test binary, set by Main or started by Shared.
var (
	sharedMu   sync.Mutex
	shared     *Cluster
	skipReason string
)

// Main is TestMain for a package whose tests need PostgreSQL: it starts
// the cluster, runs the tests, stops the cluster and exits with the tests'
// status.
func Main(m *testing.M) { MainWithTemplate(m, nil) }

// MainWithTemplate is Main whose databases are copies of a template that
// prepare made once, on the cluster's first database (for a store: its
// migrations applied), instead of empty ones: each test then starts from a
// migrated database without applying the migrations itself. nil prepares
// nothing.
func MainWithTemplate(m *testing.M, prepare func(ctx context.Context, url string) error) {
	c, err := Start()
	if err != nil {
		if os.Getenv(SkipEnv) == "1" {
			skipReason = fmt.Sprintf("PostgreSQL tests skipped (%s=1): %v", SkipEnv, err)
			os.Exit(m.Run())
		}
		fmt.Fprintf(os.Stderr, "pgtest: no PostgreSQL for the tests: %v\npgtest: %s\n", err, Install)
		os.Exit(1)
	}
	if prepare != nil {
		if err := c.SetTemplate(context.Background(), prepare); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: template: %v\n", err)
			c.Stop()
			os.Exit(1)
		}
	}
	shared = c
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stop the cluster: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Shared returns the cluster this test binary shares among its tests,
// starting it on first use: for a package most of whose tests need no
// PostgreSQL (so its TestMain starts none), each test that does takes its
// databases there (CreateDatabase) instead of starting a cluster of its
// own. A test that stops or restarts PostgreSQL must use ForTest instead.
// The package's TestMain calls StopShared after its tests. Without
// binaries it fails the test saying how to install them, or skips it when
// FIELDSYNC_SKIP_POSTGRES=1.
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && skipReason == "" {
		c, err := Start()
		if err != nil {
			if os.Getenv(SkipEnv) != "1" {
				tb.Fatalf("pgtest: no PostgreSQL for the test: %v\n%s", err, Install)
			}
			skipReason = fmt.Sprintf("PostgreSQL tests skipped (%s=1): %v", SkipEnv, err)
		}
		shared = c
	}
	if shared == nil {
		tb.Skip(skipReason)
	}
	return shared
}

// StopShared stops the cluster Shared started, if it did. A TestMain
// calls it once the tests are done; it reports a failure on stderr.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		return
	}
	if err := shared.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stop the shared cluster: %v\n", err)
	}
	shared = nil
}

// SetTemplate makes the database that CreateDatabase copies from then on:
// a new database, prepared by prepare (given its URL), which nothing may
// stay connected to.
func (c *Cluster) SetTemplate(ctx context.Context, prepare func(ctx context.Context, url string) error) error {
	name := fmt.Sprintf("template_%d", os.Getpid())
	if err := c.admin(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	if err := prepare(ctx, c.URL(name)); err != nil {
		return fmt.Errorf("prepare template: %w", err)
	}
	// A closed connection's server process may still be ending: a copy
	// is refused while anything is connected to the template.
	if err := c.admin(ctx, `DO $$ BEGIN
		FOR i IN 1..200 LOOP
			EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = '`+name+`');
			PERFORM pg_sleep(0.05);
		END LOOP; END $$`); err != nil {
		return fmt.Errorf("template still in use: %w", err)
	}
	c.template = name
	return nil
}

// DB creates a new database on the binary's cluster (started by Main):
// empty, or a copy of MainWithTemplate's template. It returns its
// connection URL; the database is dropped when the test ends. Without a
// cluster (FIELDSYNC_SKIP_POSTGRES=1) it skips the test.
func DB(tb testing.TB) string {
	tb.Helper()
	if shared == nil {
		if skipReason != "" {
			tb.Skip(skipReason)
		}
		tb.Fatal("pgtest: no cluster: call pgtest.Main from the package's TestMain")
	}
	url, drop, err := shared.CreateDatabase(context.Background())
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Errorf("pgtest: drop database: %v", err)
		}
	})
	return url
}

// ForTest starts a cluster of the test's own, stopped when the test ends,
// for a package whose other tests need none (so its TestMain does not
// start one). Without binaries it fails the test saying how to install
// them, or skips it when FIELDSYNC_SKIP_POSTGRES=1.
func ForTest(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := Start()
	if err != nil {
		if os.Getenv(SkipEnv) == "1" {
			tb.Skipf("PostgreSQL tests skipped (%s=1): %v", SkipEnv, err)
		}
		tb.Fatalf("pgtest: no PostgreSQL for the test: %v\n%s", err, Install)
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return c
}

// findBin returns the directory holding initdb and pg_ctl.
func findBin() (string, error) {
	if dir := os.Getenv("FIELDSYNC_PG_BIN"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
			return "", fmt.Errorf("FIELDSYNC_PG_BIN=%s: %w", dir, err)
		}
		return dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	// Debian keeps them off PATH, one directory per major version: take
	// the newest.
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return "", errors.New("initdb not found on PATH nor in /usr/lib/postgresql/*/bin")
	}
	sort.Slice(found, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[i]))))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[j]))))
		return a > b
	})
	return filepath.Dir(found[0]), nil
}

// freePort returns a TCP port of 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start initialises and starts a new cluster in a temporary directory.
func Start() (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	reapOrphans(bin)
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin, logf: filepath.Join(dir, "postgres.log")}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	fail := func(err error) (*Cluster, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("running as root, and initdb refuses root: no postgres OS user to run it as (%v)", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
		c.runAs = "postgres"
	}
	// --no-sync and fsync=off: a test cluster's files need not survive a
	// power cut, and fsyncs would dominate the tests' time on a busy
	// machine. The store still commits with synchronous_commit on (its
	// own setting, checked by TestDurableCommitSettings).
	if out, err := c.run("initdb", "--pgdata", c.data(), "--auth", "trust", "--username", "postgres",
		"--encoding", "UTF8", "--locale", "C", "--no-sync"); err != nil {
		return fail(fmt.Errorf("initdb: %v: %s", err, out))
	}
	for attempt := 0; ; attempt++ {
		if c.port, err = freePort(); err != nil {
			return fail(err)
		}
		opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s -c fsync=off "+
			"-c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB", c.port, dir)
		out, err := c.run("pg_ctl", "start", "--pgdata", c.data(), "--wait", "--timeout", "60",
			"--log", c.logf, "-o", opts)
		if err == nil {
			break
		}
		if attempt == 2 { // the port may have been taken meanwhile: retry on another
			log, _ := os.ReadFile(c.logf)
			return fail(fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log))
		}
	}
	return c, nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// A cluster's directory is a temporary directory named dirPrefix…, holding
// ownerFile: the process id of the test binary that started it.
const (
	dirPrefix = "fieldsync-pg-"
	ownerFile = "owner.pid"
)

// reapOrphans stops and removes the clusters whose test binary is gone
// without stopping them (it panicked, or was killed): a test run leaves no
// server behind for long.
func reapOrphans(bin string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not one of ours, or still being made
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		c := &Cluster{dir: dir, bin: bin}
		if os.Geteuid() == 0 {
			c.runAs = "postgres"
		}
		_ = c.Stop()
	}
}

// processAlive reports whether a process with the id exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// run runs one of the cluster's binaries, as the cluster's OS user.
func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

// URL returns the connection URL of a database of the cluster, through its
// socket.
func (c *Cluster) URL(database string) string {
	q := url.Values{"host": {c.dir}, "port": {strconv.Itoa(c.port)}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/" + database, RawQuery: q.Encode()}).String()
}

// CreateDatabase creates a new database — empty, or a copy of the
// template (SetTemplate) — and returns its URL and a function that drops
// it (closing what is still connected to it).
func (c *Cluster) CreateDatabase(ctx context.Context) (string, func() error, error) {
	name := fmt.Sprintf("t%d_%05d", os.Getpid(), c.nextDB.Add(1)) // fixed width: no name is a prefix of another
	create := "CREATE DATABASE " + name
	if c.template != "" {
		create += " TEMPLATE " + c.template
	}
	if err := c.admin(ctx, create); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	drop := func() error { return c.admin(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)") }
	return c.URL(name), drop, nil
}

func (c *Cluster) admin(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop stops the cluster (cutting any connection still open) and removes
// its directory.
func (c *Cluster) Stop() error {
	out, err := c.run("pg_ctl", "stop", "--pgdata", c.data(), "--wait", "--mode", "immediate")
	if err != nil {
		err = fmt.Errorf("pg_ctl stop: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return errors.Join(err, os.RemoveAll(c.dir))
}
