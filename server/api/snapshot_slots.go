package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Defaults of the snapshot bounds that keep one slow reader from holding
// the snapshot slots (README, docs/operators.md).
const (
	// DefaultSnapshotsPerUser is how many snapshots one user may stream at
	// once.
	DefaultSnapshotsPerUser = 1
	// DefaultSnapshotMinRate is the average rate, in bytes per second, a
	// snapshot's client must read at (after DefaultSnapshotRateGrace): 16
	// KiB/s, 128 kbit/s, below any link a county is downloaded over.
	DefaultSnapshotMinRate = 16 << 10
	// DefaultSnapshotRateGrace is the time a snapshot's client has on top
	// of its bytes at the minimum rate.
	DefaultSnapshotRateGrace = 10 * time.Second
)

// userSnapshots counts the snapshots each user is streaming, so that one
// user cannot take every global slot.
type userSnapshots struct {
	mu  sync.Mutex
	max int
	n   map[string]int
}

// acquire takes one of user's slots; false when user already streams max
// snapshots. Each true must be followed by one release.
func (u *userSnapshots) acquire(user string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[user] >= u.max {
		return false
	}
	if u.n == nil {
		u.n = map[string]int{}
	}
	u.n[user]++
	return true
}

func (u *userSnapshots) release(user string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[user]--; u.n[user] <= 0 {
		delete(u.n, user)
	}
}

// tooManyUserSnapshots is the 429 of a user's snapshot beyond their slots.
func tooManyUserSnapshots(max int) error {
	return &syncproto.Error{Code: syncproto.ERateLimited, Title: "Too many snapshots",
		Message: fmt.Sprintf("you are taking %d snapshots already; wait for them to end", max),
		RetryIn: snapshotRetryAfter * time.Second}
}

// rateBoundWriter writes a snapshot, a report or a list to its client
// (snapshotRun and reportBody write through it) under a write deadline
// that holds the client to a minimum average rate and cuts a client that
// stops reading:
//
//   - the time the writes have waited for the client in all (the server's
//     own time between writes, reading the store and judging households,
//     is not the client's) may not exceed grace + B/minRate once B bytes
//     are written, so a client that reads slower (a slow link, or one
//     that reads slowly on purpose to hold a slot) has its connection cut,
//     and a body of B bytes holds its slot at most grace + B/minRate of
//     waiting for its client;
//   - no write or flush may wait longer than the write window
//     (writeWindow: the server's write timeout, at most
//     snapshotWriteWindow), so a client that stops reading is cut one
//     window after its last progress.
//
// Every write and flush that makes progress so pushes the deadline ahead:
// a body may take longer than the server's write timeout for as long as
// its client keeps reading.
type rateBoundWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	minRate int64
	grace   time.Duration
	window  time.Duration
	written int64
	waited  time.Duration
}

// paced is w, which writes the body of c's answer, held to the snapshots'
// minimum rate (Config.SnapshotMinRate after Config.SnapshotRateGrace)
// and to the write window.
func (s *Server) paced(c echo.Context, w io.Writer) *rateBoundWriter {
	return &rateBoundWriter{w: w, rc: http.NewResponseController(c.Response().Writer),
		minRate: s.snapshotMinRate, grace: s.snapshotRateGrace, window: s.writeWindow()}
}

// writeWindow is how long one write of a streamed body may wait for its
// client: the server's write timeout, at most snapshotWriteWindow.
func (s *Server) writeWindow() time.Duration {
	if w := s.timeouts.Write; w > 0 && w < snapshotWriteWindow {
		return w
	}
	return snapshotWriteWindow
}

// arm sets the write deadline for writing n more bytes: what is left of
// the client's budget, at most a window from now.
func (r *rateBoundWriter) arm(n int) error {
	left := r.grace + time.Duration(float64(r.written+int64(n))/float64(r.minRate)*float64(time.Second)) - r.waited
	return r.deadline(min(left, r.window))
}

func (r *rateBoundWriter) deadline(d time.Duration) error {
	if err := r.rc.SetWriteDeadline(time.Now().Add(d)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (r *rateBoundWriter) Write(p []byte) (int, error) {
	if err := r.arm(len(p)); err != nil {
		return 0, err
	}
	began := time.Now()
	n, err := r.w.Write(p)
	r.waited += time.Since(began)
	r.written += int64(n)
	return n, err
}

// flush sends what the response holds to the client under the same
// deadline, then gives the server a window from now for what it writes
// next: the next write arms its own deadline, and the end of the body
// that net/http writes once the handler returns has the window.
func (r *rateBoundWriter) flush() error {
	if err := r.arm(0); err != nil {
		return err
	}
	began := time.Now()
	if err := r.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	r.waited += time.Since(began)
	return r.deadline(r.window)
}
