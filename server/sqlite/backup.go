package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	msqlite "modernc.org/sqlite"
)

// BackupResult describes a copy made by Backup.
type BackupResult struct {
	Pages    int   // pages copied
	PageSize int   // bytes per page
	Head     int64 // the change-log position the copy ends at
}

// Bytes is the size of the copy.
func (r BackupResult) Bytes() int64 { return int64(r.Pages) * int64(r.PageSize) }

// Backup copies the database file at src into a new database file at dst
// with SQLite's online backup API, pagesPerStep pages at a time, calling
// progress (if not nil) after each step with the bytes copied so far and
// the total. Other processes may write to src meanwhile: the copy is taken
// inside one read transaction, so it holds exactly the transactions
// committed before the copy began, each one whole. Writers are not blocked
// (WAL mode), but the WAL cannot be checkpointed past that point until the
// copy ends.
//
// src must exist (Backup never creates a database) and dst must not hold a
// database already: it is overwritten. Backup neither syncs nor checks dst;
// the caller does (see CheckFile). src is opened without running
// migrations, so a backup never changes the database it copies.
func Backup(ctx context.Context, src, dst string, pagesPerStep int, progress func(copied, total int64)) (BackupResult, error) {
	var res BackupResult
	if pagesPerStep <= 0 {
		pagesPerStep = -1 // everything in one step
	}
	if _, err := os.Stat(src); err != nil {
		return res, fmt.Errorf("backup: %w", err)
	}
	db, err := sql.Open("sqlite", fileURI(src)+"?mode=rw&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return res, fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("backup: open %s: %w", src, err)
	}
	defer conn.Close()

	// Hold one read transaction across every step: the backup then reads a
	// single snapshot, and commits by the server (another process) neither
	// show up half-way nor make SQLite restart the copy from page one.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return res, fmt.Errorf("backup: begin: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	if err := conn.QueryRowContext(ctx, "PRAGMA page_size").Scan(&res.PageSize); err != nil {
		return res, fmt.Errorf("backup: %w", err)
	}
	// The first read of a table starts the read transaction.
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM changes").Scan(&res.Head); err != nil {
		return res, fmt.Errorf("backup: %s is not a fieldsync database: %w", src, err)
	}

	err = conn.Raw(func(driverConn any) error {
		b, ok := driverConn.(interface {
			NewBackup(dstURI string) (*msqlite.Backup, error)
		})
		if !ok {
			return errors.New("the SQLite driver offers no online backup")
		}
		bk, err := b.NewBackup(fileURI(dst))
		if err != nil {
			return err
		}
		for {
			more, err := bk.Step(int32(pagesPerStep))
			if err != nil {
				return errors.Join(err, bk.Finish())
			}
			total := bk.PageCount()
			if total > 0 {
				res.Pages = total
			}
			if progress != nil {
				copied := res.Pages
				if more {
					copied = total - bk.Remaining()
				}
				progress(int64(copied)*int64(res.PageSize), res.Bytes())
			}
			if !more {
				return bk.Finish()
			}
			if err := ctx.Err(); err != nil {
				return errors.Join(err, bk.Finish())
			}
		}
	})
	if err != nil {
		return res, fmt.Errorf("backup to %s: %w", dst, err)
	}
	return res, nil
}

// FileInfo describes a fieldsync database file checked by CheckFile.
type FileInfo struct {
	Migration int64 // the last migration applied
	Records   int64 // records, deleted ones included
	Head      int64 // the last change-log position
}

// ErrNotUsable is wrapped by CheckFile's errors when the file is not an
// intact fieldsync database this build can serve.
var ErrNotUsable = errors.New("not a usable fieldsync database")

// CheckFile checks the database file at path, which must exist and be a
// file of the caller's (it may be opened for writing, and -wal and -shm
// files appear beside it while it is open): PRAGMA integrity_check must say
// ok, the file must be a fieldsync database (goose's version table, the
// records and changes tables), and its migrations must not be newer than
// this build's. Its errors wrap ErrNotUsable, except those of the file
// system; they do not name the file.
func CheckFile(ctx context.Context, path string) (FileInfo, error) {
	var info FileInfo
	fi, err := os.Stat(path)
	if err != nil {
		return info, err
	}
	if !fi.Mode().IsRegular() {
		return info, fmt.Errorf("%w: not a regular file", ErrNotUsable)
	}
	db, err := sql.Open("sqlite", fileURI(path)+"?mode=rw&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return info, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	notUsable := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrNotUsable, fmt.Sprintf(format, args...))
	}

	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return info, notUsable("integrity_check: %v", err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return info, notUsable("integrity_check: %v", err)
		}
		if len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return info, notUsable("integrity_check: %v", err)
	}
	if len(problems) != 1 || problems[0] != "ok" {
		return info, notUsable("integrity_check: %s", strings.Join(problems, "; "))
	}

	for _, table := range []string{"goose_db_version", "records", "changes"} {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", table).Scan(&n); err != nil {
			return info, notUsable("%v", err)
		}
		if n == 0 {
			return info, notUsable("it has no %s table", table)
		}
	}
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied").Scan(&info.Migration); err != nil {
		return info, notUsable("migrations: %v", err)
	}
	latest, err := latestMigration()
	if err != nil {
		return info, err
	}
	if info.Migration > latest {
		return info, notUsable("its migrations go to %d, this fieldsync knows %d: restore it with a newer fieldsync", info.Migration, latest)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM records").Scan(&info.Records); err != nil {
		return info, notUsable("%v", err)
	}
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM changes").Scan(&info.Head); err != nil {
		return info, notUsable("%v", err)
	}
	return info, nil
}

// latestMigration is the number of the newest embedded migration.
func latestMigration() (int64, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, name := range names {
		num, _, _ := strings.Cut(filepath.Base(name), "_")
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("migration %s: %w", name, err)
		}
		latest = max(latest, n)
	}
	for _, m := range goMigrations() {
		latest = max(latest, m.Version)
	}
	return latest, nil
}

// fileURI is the SQLite URI of a file path, without query.
func fileURI(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return "file:" + (&url.URL{Path: abs}).EscapedPath()
}

// ForgetCursorSecret removes the secret that signs cursors from the
// database at path (a restored copy, before it is put in place). The server
// makes a new one when it opens the database, so every cursor issued before
// the restore is refused (422) and tablets pull again from the beginning;
// without it, a tablet that had pulled past the backup's last change would,
// once the restored log grew past its cursor, silently miss the changes in
// between.
func ForgetCursorSecret(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", fileURI(path)+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `DELETE FROM settings WHERE name = 'cursor_secret'`); err != nil &&
		!strings.Contains(err.Error(), "no such table") {
		return fmt.Errorf("reset cursor secret: %w", err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("reset cursor secret: %w", err)
	}
	return db.Close()
}
