package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LockFileName is the file in a data directory whose exclusive lock a
// writing command (serve, seed, generate, restore) holds while it runs,
// and into which it writes its PID and name, so that a second one is
// refused with the name of the first.
const LockFileName = "fieldsync.lock"

// errDataLocked is the error of lockData when another process holds the
// lock; holder is what that process wrote ("serve, PID 1234").
type errDataLocked struct{ dir, holder string }

func (e *errDataLocked) Error() string {
	return fmt.Sprintf("%s is in use: fieldsync %s has it open in another process; stop it first, or give another --data "+
		"(two writers on one database break the single-writer design that acknowledged pushes rely on)", e.dir, e.holder)
}

// lockData takes the exclusive lock of data directory dir (creating dir,
// 0700, when missing) for command, or returns an *errDataLocked naming the
// process that holds it. The lock is the kernel's (flock on
// DIR/fieldsync.lock): it ends with the process, so a crash leaves no stale
// lock behind, whatever the file still says. release gives it up.
func lockData(dir, command string) (release func(), err error) {
	if dir == "" {
		return nil, errors.New("--data is required")
	}
	// The directory's privacy first: the lock file would make a new,
	// empty directory look like the operator's own.
	if err := prepareDataDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	locked, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !locked {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(b))
		if holder == "" {
			holder = "(a process that has not written its PID yet)"
		}
		return nil, &errDataLocked{dir: dir, holder: holder}
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(fmt.Sprintf("%s, PID %d\n", command, os.Getpid())), 0)
	}
	return func() { unlock(f); f.Close() }, nil
}
