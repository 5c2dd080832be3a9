package sqlite

import (
	"errors"
	"fmt"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Seconds a client is asked to wait (Retry-After) before retrying a write
// the store could not make.
const (
	retryFullAfter = 60 // a full disk needs an operator
	retryBusyAfter = 5  // a lock held by another process (a backup, the sqlite3 shell)
)

// writeError turns the errors of a write transaction that are the server's
// condition, not a fault of the request or of the code, into
// syncproto.EUnavailable with a Retry-After: the disk is full
// (SQLITE_FULL), or another process held the database's write lock longer
// than the busy timeout (SQLITE_BUSY, SQLITE_LOCKED). SQLite has rolled the
// transaction back by then, so nothing of it was written and nothing was
// acknowledged. The result wraps both the domain error (for the client) and
// the SQLite error (for the server's log). Any other error is returned as
// it is.
func writeError(err error) error {
	if err == nil {
		return nil
	}
	var se *syncproto.Error
	if errors.As(err, &se) {
		return err
	}
	var unavailable *syncproto.Error
	var le *msqlite.Error
	switch {
	case errors.As(err, &le) && le.Code()&0xff == sqlite3.SQLITE_FULL,
		strings.Contains(err.Error(), "database or disk is full"):
		unavailable = &syncproto.Error{Code: syncproto.EUnavailable, Title: "Storage full",
			Message: "the server's storage is full; nothing was saved, retry later", RetryIn: retryFullAfter * time.Second}
	case errors.As(err, &le) && (le.Code()&0xff == sqlite3.SQLITE_BUSY || le.Code()&0xff == sqlite3.SQLITE_LOCKED):
		unavailable = &syncproto.Error{Code: syncproto.EUnavailable, Title: "Database busy",
			Message: "the database is busy; nothing was saved, retry shortly", RetryIn: retryBusyAfter * time.Second}
	default:
		return err
	}
	return fmt.Errorf("%w (%w)", unavailable, err)
}
