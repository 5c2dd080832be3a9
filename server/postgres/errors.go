package postgres

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Seconds a client is asked to wait (Retry-After) before retrying a write
// the store could not make.
const (
	retryFullAfter = 60 // a full disk needs an operator
	retryDownAfter = 5  // the database restarting, failing over, out of connections
)

// writeError turns the errors that are the database's condition, not a
// fault of the request or of the code, into syncproto.EUnavailable with a
// Retry-After: the write lock held by another write longer than the lock
// timeout (55P03); a full disk (53100) or another shortage (class 53:
// memory, connections); the server shutting down or restarting (class
// 57P); a lost or refused connection (class 08, a failed connect, no
// answer at all, or one cut off: EOF); a read-only standby after a failover (25006); and,
// should another program's transactions provoke one despite the write
// lock, a serialization failure or a deadlock (40001, 40P01). A write
// that fails so was not committed, or its retry is answered from its
// receipt if the commit did happen after all. The result wraps both the
// domain error (for the client) and the database's (for the log). Any
// other error is returned as it is.
func writeError(err error) error {
	if err == nil {
		return nil
	}
	var se *syncproto.Error
	if errors.As(err, &se) {
		return err
	}
	var unavailable *syncproto.Error
	var pe *pgconn.PgError
	var ne net.Error
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &ce):
		// No connection could be made (the database down, refusing
		// connections, or the credentials wrong: the log says which).
		unavailable = &syncproto.Error{Code: syncproto.EUnavailable, Title: "Database unavailable",
			Message: "the database is unavailable; retry shortly (a change set sent again is applied once)", RetryIn: retryDownAfter * time.Second}
	case errors.As(err, &pe) && pe.Code == "53100":
		unavailable = &syncproto.Error{Code: syncproto.EUnavailable, Title: "Storage full",
			Message: "the server's storage is full; nothing was saved, retry later", RetryIn: retryFullAfter * time.Second}
	case errors.As(err, &pe) && pe.Code == "55P03":
		unavailable = &syncproto.Error{Code: syncproto.EUnavailable, Title: "Database busy",
			Message: "the database is busy; nothing was saved, retry shortly", RetryIn: retryDownAfter * time.Second}
	case errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "53") || strings.HasPrefix(pe.Code, "57P") ||
		strings.HasPrefix(pe.Code, "08") || pe.Code == "25006" || pe.Code == "40001" || pe.Code == "40P01"),
		!errors.As(err, &pe) && (pgconn.SafeToRetry(err) || errors.As(err, &ne) || pgconn.Timeout(err) ||
			// The server process went away mid-answer (pg_ctl restart
			// --mode immediate, a crash): pgx returns the read's EOF.
			errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
			// A connection the driver closed under a statement or the
			// commit (the server went away): the outcome of a commit is
			// unknown, and a change set sent again is applied once.
			errors.Is(err, pgconn.ErrConnClosed)):
		unavailable = &syncproto.Error{Code: syncproto.EUnavailable, Title: "Database unavailable",
			Message: "the database is unavailable; retry shortly (a change set sent again is applied once)", RetryIn: retryDownAfter * time.Second}
	default:
		return err
	}
	return fmt.Errorf("%w (%w)", unavailable, err)
}
