package cli

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOneServerPerDataDirectory: with a server (the real binary) on a
// data directory, a second serve of that directory is refused naming the
// first one's PID, and so are seed and restore, the other commands that
// would write the database as its writer; user add, a single small write
// SQLite serialises, still works. A second serve of another directory on
// the same address is told how to choose another one.
func TestOneServerPerDataDirectory(t *testing.T) {
	data := t.TempDir()
	cli(t, "worker-password\n", "user", "add", "--create", "--data", data, "--name", "w", "--role", "field_worker", "--scope", "500240")
	backup := filepath.Join(t.TempDir(), "b.db")
	cli(t, "", "backup", "--data", data, "--out", backup)
	p := startBinary(t, data)
	pid := fmt.Sprintf("PID %d", p.cmd.Process.Pid)

	for _, args := range [][]string{
		{"serve", "--addr", "127.0.0.1:0", "--data", data},
		{"seed", "--data", data},
		{"restore", "--data", data, "--from", backup, "--force"},
	} {
		out := cliFails(t, args...)
		if !strings.Contains(out, "fieldsync serve, "+pid+" has it open in another process") {
			t.Errorf("fieldsync %s beside a running server:\n%s", args[0], out)
		}
	}
	cli(t, "worker2-password\n", "user", "add", "--data", data, "--name", "w2", "--role", "field_worker", "--scope", "500240")

	u, err := url.Parse(p.url)
	if err != nil {
		t.Fatal(err)
	}
	out := cliFails(t, "serve", "--addr", u.Host, "--data", t.TempDir())
	if !strings.Contains(out, "--addr "+u.Host+": the address is already in use") || !strings.Contains(out, "make run ADDR=") {
		t.Errorf("serve on an address in use:\n%s", out)
	}

	// The lock ends with the server: then a second one starts.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("fieldsync exited with %v after SIGTERM", err)
	}
	q := startBinary(t, data)
	if err := q.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-q.done
}
