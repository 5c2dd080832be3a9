package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/storetest"
)

// A store opened in a directory others may read, under the usual umask
// 022, still creates its database, WAL and shared-memory files readable by
// the owner alone.
func TestOpenCreatesPrivateFiles(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	s, err := Open(context.Background(), path, Options{Now: storetest.NewClock(storetest.T0).Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dev := storetest.NewDevice("perm")
	if _, err := pushes(s).Push(context.Background(), dev.Actor, dev.Changeset(storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", name, perm)
		}
	}
}
