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

// rateBoundWriter writes a snapshot to its client under a deadline that
// holds the client to a minimum average rate: by the time the first B
// bytes are written, at most grace + B/minRate may have passed since the
// first write. A client that reads slower (a slow link, or one that reads
// slowly on purpose to hold a slot) has its connection cut, so a
// snapshot of B bytes holds its slot at most grace + B/minRate once it
// streams.
type rateBoundWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	minRate int64
	grace   time.Duration
	started time.Time
	written int64
}

// paced is w, which writes the body of c's answer, held to the snapshots'
// minimum rate (Config.SnapshotMinRate after Config.SnapshotRateGrace).
func (s *Server) paced(c echo.Context, w io.Writer) *rateBoundWriter {
	return &rateBoundWriter{w: w, rc: http.NewResponseController(c.Response().Writer),
		minRate: s.snapshotMinRate, grace: s.snapshotRateGrace}
}

func (r *rateBoundWriter) Write(p []byte) (int, error) {
	if r.started.IsZero() {
		r.started = time.Now()
	}
	budget := r.grace + time.Duration(float64(r.written+int64(len(p)))/float64(r.minRate)*float64(time.Second))
	if err := r.rc.SetWriteDeadline(r.started.Add(budget)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	n, err := r.w.Write(p)
	r.written += int64(n)
	return n, err
}
