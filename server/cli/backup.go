package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/sqlite"
)

// keysSuffix names the directory of signing keys beside a backup file.
const keysSuffix = ".keys"

// photosSuffix names the directory of photos beside a backup file: the
// whole photos of DATA/attachments in the same layout (ab/cd/abcd…).
const photosSuffix = ".attachments"

func runBackup(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "backup")
	data := fs.String("data", "data", "data directory of the database to copy (the server may be running)")
	out := fs.String("out", "", "the backup file to write")
	keys := fs.Bool("keys", false, "also copy the signing keys, to FILE.keys/ (secret: whoever holds them can sign tokens)")
	photos := fs.Bool("attachments", true, "also copy the photos, to FILE.attachments/ (--attachments=false for the database alone)")
	force := fs.Bool("force", false, "replace FILE (and FILE.keys/, FILE.attachments/) if they exist")
	step := fs.Int("step-pages", 1024, "pages copied per step of the online backup (the grain of the progress; 1024 is 4 MiB)")
	storeURL := fs.String("store", "", "a PostgreSQL `URL`: refused, with the way to back it up (pg_dump, pg_basebackup)")
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	if *storeURL != "" {
		return errBackupOnPostgres("backup", *storeURL)
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	if *step < 1 {
		return errors.New("--step-pages must be positive")
	}
	src := filepath.Join(*data, sqlite.FileName)
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("no database to back up: %w", err)
	}
	dst, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if abs, _ := filepath.Abs(src); abs == dst {
		return errors.New("--out names the database itself")
	}
	if err := outDirExists(dst); err != nil {
		return err
	}
	if !*force {
		for _, path := range []string{dst, dst + keysSuffix, dst + photosSuffix} {
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("%s exists; use --force to replace it", path)
			}
		}
	}
	keysDir := filepath.Join(*data, "keys")
	if *keys {
		if _, err := os.Stat(filepath.Join(keysDir, "current")); err != nil {
			return fmt.Errorf("--keys: no signing keys in %s: %w", keysDir, err)
		}
	}

	// The copy is written to FILE.tmp, created here with mode 0600 (it
	// holds password hashes) and exclusively: an existing one is another
	// backup running, or one that was interrupted.
	tmp := dst + ".tmp"
	if *force {
		removeDatabaseFiles(tmp)
	}
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists: another backup is writing it, or one was interrupted; remove it or use --force", tmp)
		}
		return err
	}
	f.Close()
	committed := false
	defer func() {
		if !committed {
			removeDatabaseFiles(tmp)
		}
	}()

	started := time.Now()
	progress := newProgress(env.Stderr, "backup", progressBytes)
	res, err := sqlite.Backup(ctx, src, tmp, *step, progress.set)
	progress.finish()
	if err != nil {
		return err
	}
	copied := time.Since(started)
	fmt.Fprintln(env.Stderr, "checking the copy (PRAGMA integrity_check)")
	info, err := sqlite.CheckFile(ctx, tmp)
	if err != nil {
		return fmt.Errorf("the copy failed its check, nothing was written to %s: %w", dst, err)
	}
	if err := syncFile(tmp); err != nil {
		return err
	}

	var keysTmp string
	if *keys {
		keysTmp = dst + keysSuffix + ".tmp"
		os.RemoveAll(keysTmp)
		defer os.RemoveAll(keysTmp)
		if err := copyKeys(keysDir, keysTmp); err != nil {
			return fmt.Errorf("--keys: %w", err)
		}
	}

	// The photos are copied after the database: every photo that was whole
	// when the database was copied is still there (photos are never
	// removed), so each photo a record of the copy references, and that the
	// server held, is in the backup.
	var photosTmp string
	var copiedPhotos photoCopy
	if *photos {
		photosTmp = dst + photosSuffix + ".tmp"
		os.RemoveAll(photosTmp)
		defer os.RemoveAll(photosTmp)
		if copiedPhotos, err = backupPhotos(filepath.Join(*data, AttachmentsDir), photosTmp, env.Stderr); err != nil {
			return fmt.Errorf("photos: %w", err)
		}
	}

	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	committed = true
	// A FILE.keys/ left from the backup this one replaces belongs to it
	// (without --force there is none).
	staleKeys := dst + keysSuffix
	if _, err := os.Stat(staleKeys); err == nil {
		if err := os.RemoveAll(staleKeys); err != nil {
			return err
		}
		if !*keys {
			fmt.Fprintf(env.Stderr, "removed %s, the keys of the backup this one replaces\n", staleKeys)
		}
	}
	if *keys {
		if err := os.Rename(keysTmp, staleKeys); err != nil {
			return err
		}
	}
	stalePhotos := dst + photosSuffix
	if _, err := os.Stat(stalePhotos); err == nil {
		if err := os.RemoveAll(stalePhotos); err != nil {
			return err
		}
		if !*photos {
			fmt.Fprintf(env.Stderr, "removed %s, the photos of the backup this one replaces\n", stalePhotos)
		}
	}
	if *photos {
		if err := os.Rename(photosTmp, stalePhotos); err != nil {
			return err
		}
	}
	if err := attachments.SyncDir(filepath.Dir(dst)); err != nil {
		return err
	}

	fmt.Fprintf(env.Stdout, "backup of %s written to %s: %s in %s (copy %s), %d records, change log at %d\n",
		src, dst, byteSize(res.Bytes()), time.Since(started).Round(time.Millisecond), copied.Round(time.Millisecond),
		info.Records, info.Head)
	if *photos {
		fmt.Fprintf(env.Stdout, "photos: %d (%s) copied to %s\n", copiedPhotos.photos, byteSize(copiedPhotos.bytes), dst+photosSuffix)
		if copiedPhotos.damaged > 0 {
			fmt.Fprintf(env.Stdout, "photos: %d damaged in %s and not copied (listed above)\n", copiedPhotos.damaged, filepath.Join(*data, AttachmentsDir))
		}
	} else {
		fmt.Fprintf(env.Stdout, "photos not copied (--attachments=false)\n")
	}
	if *keys {
		fmt.Fprintf(env.Stdout, "signing keys copied to %s (keep them as secret as the server's)\n", dst+keysSuffix)
	} else {
		fmt.Fprintf(env.Stdout, "signing keys not copied (--keys copies them): a server restored from this backup makes a new key, and tablets refresh their access tokens\n")
	}
	return nil
}

func runRestore(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "restore")
	data := fs.String("data", "data", "data directory to restore into (its server must be stopped)")
	from := fs.String("from", "", "a backup file made by fieldsync backup")
	force := fs.Bool("force", false, "replace the database (and keys) in DIR; the old ones are kept beside, renamed *.before-restore-TIME")
	storeURL := fs.String("store", "", "a PostgreSQL `URL`: refused, with the way to restore it (pg_restore, a base backup)")
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	if *storeURL != "" {
		return errBackupOnPostgres("restore", *storeURL)
	}
	if *from == "" {
		return errors.New("--from is required")
	}
	if fi, err := os.Stat(*from); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a file", *from)
	}
	backupPhotos := *from + photosSuffix
	backupKeys := *from + keysSuffix
	hasKeys := false
	if _, err := os.Stat(filepath.Join(backupKeys, "current")); err == nil {
		hasKeys = true
	}
	if err := prepareDataDir(*data); err != nil {
		return err
	}
	// Then the lock: a server of this directory that is starting, or a
	// seed, would otherwise open the database while it is replaced.
	lockFile := filepath.Join(*data, LockFileName)
	_, err := os.Stat(lockFile)
	hadLockFile := err == nil
	release, err := lockData(*data, "restore")
	if err != nil {
		return err
	}
	defer release()
	restored := false
	defer func() {
		// A refused restore leaves the directory as it found it.
		if !restored && !hadLockFile {
			os.Remove(lockFile)
		}
	}()
	target := filepath.Join(*data, sqlite.FileName)
	keysDir := filepath.Join(*data, "keys")
	_, err = os.Stat(target)
	dbExists := err == nil
	_, err = os.Stat(keysDir)
	keysExist := err == nil
	if !*force {
		if dbExists {
			return fmt.Errorf("%s exists: stop the server, then use --force to replace it (the old database is kept beside it)", target)
		}
		if hasKeys && keysExist {
			return fmt.Errorf("%s exists and the backup has keys: use --force to replace them (the old keys are kept beside)", keysDir)
		}
	}
	if busy, err := sqlite.InUse(target); err != nil {
		return err
	} else if busy {
		return fmt.Errorf("%s is open in another process (a running server?): stop it first", target)
	}

	// Copy the backup in beside the database, then check the copy: what is
	// checked is what is installed, and the backup itself is only read.
	tmp := target + ".restore-tmp"
	removeDatabaseFiles(tmp)
	defer removeDatabaseFiles(tmp)
	progress := newProgress(env.Stderr, "restore", progressBytes)
	err = copyFileWith(*from, tmp, 0o600, progress)
	progress.finish()
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stderr, "checking the backup (PRAGMA integrity_check)")
	info, err := sqlite.CheckFile(ctx, tmp)
	if err != nil {
		return fmt.Errorf("%s cannot be restored, nothing was changed: %w", *from, err)
	}
	// Cursors issued before the restore must not be taken for positions
	// in the restored log: a new secret makes tablets pull afresh.
	if err := sqlite.ForgetCursorSecret(ctx, tmp); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	var keysTmp string
	if hasKeys {
		keysTmp = keysDir + ".restore-tmp"
		os.RemoveAll(keysTmp)
		defer os.RemoveAll(keysTmp)
		if err := copyKeys(backupKeys, keysTmp); err != nil {
			return fmt.Errorf("keys of the backup: %w", err)
		}
	}

	// The photos go in before the database: they are added beside the
	// photos already there (a name is its content, so none is replaced),
	// each checked and moved in whole, so a failure here leaves the data
	// directory serving as before.
	var restoredPhotos photoCopy
	if fi, err := os.Stat(backupPhotos); err == nil && fi.IsDir() {
		if restoredPhotos, err = restorePhotos(backupPhotos, filepath.Join(*data, AttachmentsDir), env.Stderr); err != nil {
			return fmt.Errorf("photos of the backup: %w", err)
		}
	}

	aside := "before-restore-" + time.Now().UTC().Format("20060102T150405Z")
	var kept []string
	if dbExists {
		// The old database with its WAL, which may hold its last commits.
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if _, err := os.Stat(target + suffix); err != nil {
				continue
			}
			if err := os.Rename(target+suffix, target+"."+aside+suffix); err != nil {
				return err
			}
		}
		kept = append(kept, target+"."+aside)
	}
	// A WAL left without its database would be replayed onto the restored one.
	removeDatabaseFiles(target)
	if err := os.Rename(tmp, target); err != nil {
		return err
	}
	if hasKeys {
		if keysExist {
			if err := os.Rename(keysDir, keysDir+"."+aside); err != nil {
				return err
			}
			kept = append(kept, keysDir+"."+aside)
		}
		if err := os.Rename(keysTmp, keysDir); err != nil {
			return err
		}
	}
	if err := attachments.SyncDir(*data); err != nil {
		return err
	}

	restored = true
	fmt.Fprintf(env.Stdout, "restored %s into %s: %d records, change log at %d (migration %d)\n",
		*from, target, info.Records, info.Head, info.Migration)
	if _, err := os.Stat(backupPhotos); err == nil {
		fmt.Fprintf(env.Stdout, "photos: %d restored into %s (%s), %d already there\n", restoredPhotos.photos,
			filepath.Join(*data, AttachmentsDir), byteSize(restoredPhotos.bytes), restoredPhotos.present)
		if restoredPhotos.damaged > 0 {
			fmt.Fprintf(env.Stdout, "photos: %d damaged in the backup and not restored (listed above)\n", restoredPhotos.damaged)
		}
	} else {
		fmt.Fprintf(env.Stdout, "the backup has no photos (%s): the photos in %s are kept as they are\n", backupPhotos, filepath.Join(*data, AttachmentsDir))
	}
	if hasKeys {
		fmt.Fprintf(env.Stdout, "signing keys restored from %s\n", backupKeys)
	} else if keysExist {
		fmt.Fprintf(env.Stdout, "the backup has no keys: the signing keys in %s are kept\n", keysDir)
	} else {
		fmt.Fprintf(env.Stdout, "the backup has no keys: the server makes a new signing key at start, and tablets refresh their access tokens\n")
	}
	if len(kept) > 0 {
		fmt.Fprintf(env.Stdout, "kept the previous %s\n", strings.Join(kept, " and "))
	}
	fmt.Fprintf(env.Stdout, "start the server: fieldsync serve --data %s\n", *data)
	return nil
}

// outDirExists refuses a --out whose directory is missing or not a
// directory, before anything is written, with the directory's name
// (rather than the failure to open a FILE.tmp the operator never named).
func outDirExists(out string) error {
	dir := filepath.Dir(out)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("--out %s: the directory %s does not exist; create it first (mkdir -p %s)", out, dir, dir)
	case err != nil:
		return fmt.Errorf("--out %s: %w", out, err)
	case !fi.IsDir():
		return fmt.Errorf("--out %s: %s is not a directory", out, dir)
	}
	return nil
}

// copyKeys copies the signing keys (the current pointer and the key files)
// from one keys directory to a new one, 0700 with files 0600, synced, and
// checks that the current key came along (a rotation may remove old keys
// while it copies).
func copyKeys(from, to string) error {
	if err := os.Mkdir(to, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || (name != "current" && !strings.HasSuffix(name, ".pem")) {
			continue
		}
		if err := copyFile(filepath.Join(from, name), filepath.Join(to, name), 0o600); err != nil {
			return err
		}
	}
	cur, err := os.ReadFile(filepath.Join(to, "current"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(to, strings.TrimSpace(string(cur))+".pem")); err != nil {
		return fmt.Errorf("the current key changed while it was copied; run again: %w", err)
	}
	return attachments.SyncDir(to)
}

// copyFile copies a regular file to a new file of the given mode and syncs it.
func copyFile(from, to string, mode os.FileMode) error {
	return copyFileWith(from, to, mode, nil)
}

// copyFileWith is copyFile reporting its progress in bytes (nil for none).
func copyFileWith(from, to string, mode os.FileMode, p *progress) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	var src io.Reader = in
	if p != nil {
		fi, err := in.Stat()
		if err != nil {
			return err
		}
		src = &progressReader{r: in, p: p, total: fi.Size()}
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// removeDatabaseFiles removes a database file and the journal, WAL and
// shared-memory files SQLite keeps beside it.
func removeDatabaseFiles(path string) {
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

// byteSize formats a size in bytes for people.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
