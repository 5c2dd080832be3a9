//go:build unix

package sqlite

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// InUse reports whether another process has the database file at path open
// through SQLite. In WAL mode every open connection holds a shared lock on
// the file's lock bytes for as long as it is open (in rollback mode only
// while it reads or writes), so a running server is seen even when idle.
// It asks the kernel (F_GETLK), which sees POSIX and OFD locks alike, and
// takes no lock itself. A missing file is not in use.
//
// It must not be called by a process that has the same file open through
// SQLite: closing its descriptor would drop that process's POSIX locks.
func InUse(path string) (bool, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	// SQLite's lock bytes: PENDING (0x40000000), RESERVED, then the 510
	// bytes of the SHARED range.
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: 0x40000000, Len: 512}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
		return false, fmt.Errorf("lock probe %s: %w", path, err)
	}
	return lk.Type != unix.F_UNLCK, nil
}
