package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// umask022 runs the fieldsync binary with args under umask 022, as a
// shell of a default Linux account would, and returns its output and exit
// status. A command still running after 30 s (a serve that should have
// refused to start) is killed and fails the test.
func umask022(tb testing.TB, args ...string) (string, int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", `umask 022 && exec "$@"`, "sh", fieldsyncBinary(tb)}, args...)...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		tb.Fatalf("fieldsync %s still ran after 30 s:\n%s", strings.Join(args, " "), out)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return string(out), 0
}

func modeOf(tb testing.TB, path string) os.FileMode {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Mode().Perm()
}

// Seeding into an existing data directory that others can read and that
// holds something else is refused, with the command that fixes it, and
// creates no database there (fieldsync takes over only an empty one).
func TestDataDirectoryReadableByOthersIsRefused(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, data, "notes.txt", "the operator's")
	out, code := umask022(t, "seed", "--data", data)
	if code != 1 || !strings.Contains(out, data+" (mode 0755)") || !strings.Contains(out, "chmod 700 "+data) {
		t.Fatalf("seed into a 0755 data directory: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(data, "fieldsync.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the database was created (%v)", err)
	}
}

// Seeding into an existing, empty 0755 data directory under umask 022
// (the review's case: the database came out 0644) leaves everything
// fieldsync made there its owner's alone: the directory, the database with
// its WAL and
// shared-memory files (while the server runs), the signing keys and the
// photo directory. A database file that another user can read (as one
// created by an older fieldsync is) stops serve, naming the file and the
// fix; once fixed, serve starts.
func TestDataDirectoryIsPrivate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, code := umask022(t, "seed", "--data", data); code != 0 {
		t.Fatalf("seed: exit %d\n%s", code, out)
	}
	p := startBinary(t, data)
	checks := map[string]os.FileMode{
		".": 0o700, "fieldsync.db": 0o600, "fieldsync.db-wal": 0o600, "fieldsync.db-shm": 0o600,
		"keys": 0o700, "attachments": 0o700,
	}
	keys, err := os.ReadDir(filepath.Join(data, "keys"))
	if err != nil || len(keys) == 0 {
		t.Fatalf("no signing keys (%v)", err)
	}
	for _, k := range keys {
		checks[filepath.Join("keys", k.Name())] = 0o600
	}
	for name, want := range checks {
		if got := modeOf(t, filepath.Join(data, name)); got != want {
			t.Errorf("%s has mode %04o, want %04o", name, got, want)
		}
	}
	p.kill(t)

	db := filepath.Join(data, "fieldsync.db")
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := umask022(t, "serve", "--addr", "127.0.0.1:0", "--data", data)
	if code != 1 || !strings.Contains(out, db+" (mode 0644)") || !strings.Contains(out, "chmod 600 "+db) {
		t.Fatalf("serve over a 0644 database: exit %d\n%s", code, out)
	}
	if err := os.Chmod(db, 0o600); err != nil {
		t.Fatal(err)
	}
	startBinary(t, data).kill(t)
}

// Commands that read or change what a data directory holds refuse one
// without a database, instead of starting an empty one beside the real
// one (a mistyped --data).
func TestAdminCommandsRefuseAMistypedDataDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "typo")
	for _, args := range [][]string{{"user", "list", "--data", missing}, {"user", "disable", "--data", missing, "--name", "x"},
		{"key", "rotate", "--data", missing}} {
		out, err := exec.Command(fieldsyncBinary(t), args...).CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte("no fieldsync database in")) {
			t.Fatalf("fieldsync %v: %v\n%s", args, err, out)
		}
		if _, err := os.Stat(missing); err == nil {
			t.Fatalf("fieldsync %v created %s", args, missing)
		}
	}
}
