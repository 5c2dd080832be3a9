package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fieldsync/fieldsync/server/sqlite"
)

// The data directory holds password hashes, sessions, the cursor secret,
// the signing keys and personal data (names, ID numbers, photos of
// houses): no other local user may read any of it. fieldsync creates what
// it creates there owner-only (directories 0700, files 0600) whatever the
// umask, and refuses to open a data directory where the directory itself,
// the database with its WAL and shared-memory files, the keys or the
// photo directory can be reached by group or others. An empty directory
// (made for fieldsync by mkdir or install -d) is taken over: made 0700.

// privatePaths are the entries of a data directory checked at open,
// relative to it; a missing one is fine (it is created private).
var privatePaths = []string{
	".",
	sqlite.FileName,
	sqlite.FileName + "-wal",
	sqlite.FileName + "-shm",
	"keys",
	AttachmentsDir,
}

// prepareDataDir creates dir (0700) if needed and checks that it and the
// files in it that hold secrets or personal data are owner-only. Its error
// lists every offending path with its mode and the commands that fix it.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := takeOverEmpty(dir); err != nil {
		return err
	}
	paths := append([]string(nil), privatePaths...)
	if keys, err := os.ReadDir(filepath.Join(dir, "keys")); err == nil {
		for _, k := range keys {
			paths = append(paths, filepath.Join("keys", k.Name()))
		}
	}
	var open []string
	var fixDirs, fixFiles []string
	for _, p := range paths {
		full := filepath.Join(dir, p)
		fi, err := os.Lstat(full)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		if fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		open = append(open, fmt.Sprintf("  %s (mode %04o)", full, fi.Mode().Perm()))
		if fi.IsDir() {
			fixDirs = append(fixDirs, shellQuote(full))
		} else {
			fixFiles = append(fixFiles, shellQuote(full))
		}
	}
	if len(open) == 0 {
		return nil
	}
	var fix []string
	if len(fixDirs) > 0 {
		fix = append(fix, "chmod 700 "+strings.Join(fixDirs, " "))
	}
	if len(fixFiles) > 0 {
		fix = append(fix, "chmod 600 "+strings.Join(fixFiles, " "))
	}
	return fmt.Errorf("the data directory holds password hashes, signing keys and personal data, and other users can read or enter these:\n%s\nmake them private to the user fieldsync runs as, then start again:\n  %s",
		strings.Join(open, "\n"), strings.Join(fix, "\n  "))
}

// takeOverEmpty makes an empty data directory that others can reach
// private (0700). A directory with anything in it is left as it is: it may
// be the operator's, and prepareDataDir refuses it instead.
func takeOverEmpty(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) > 0 {
		return nil // the check that follows reports it
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: making %s private: %w", dir, err)
	}
	return nil
}

// shellQuote quotes a path for a shell command line when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
