package api

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/syncproto"
)

// headerSnapshotCursor names the point of the change log a snapshot shows.
const headerSnapshotCursor = "X-Snapshot-Cursor"

// headerWithoutLocation is the HTTP trailer of a GeoJSON snapshot: how many
// of its households have no location (their features' geometry is null).
// A trailer, announced in the Trailer header, because the count is known
// only once the last row is streamed.
const headerWithoutLocation = "X-Households-Without-Location"

const (
	// snapshotFlushEvery is how many rows go to the client between two
	// flushes of the response.
	snapshotFlushEvery = 1000
	// snapshotProgressEvery is how many rows pass between two progress
	// lines in the server log.
	snapshotProgressEvery = 50_000
	// snapshotWriteWindow is the longest the client of a snapshot, report
	// or list may take to accept one write before the connection is cut
	// (the server's write timeout when shorter); every write and flush that
	// makes progress renews it (rateBoundWriter), so a body may take longer
	// than the server's write timeout as long as the client keeps reading.
	snapshotWriteWindow = 2 * time.Minute
	// snapshotRetryAfter is the Retry-After, in seconds, of a snapshot
	// refused because the most allowed are already streaming.
	snapshotRetryAfter = 30
)

// parseSnapshotRequest reads the query: 400 for unknown or repeated
// parameters, 403 for a region outside the caller's scope, 422 for a bad
// region, format, entity or as_of (every error with its path).
func (s *Server) parseSnapshotRequest(c echo.Context) (export.SnapshotRequest, error) {
	q := c.QueryParams()
	if err := onlyParams(q, "region", "entity", "format", "as_of", "lang"); err != nil {
		return export.SnapshotRequest{}, err
	}
	actor, region, err := s.regionScope(c)
	if err != nil {
		return export.SnapshotRequest{}, err
	}
	req, err := export.NewSnapshotRequest(s.schema, s.cursors, actor, region, export.SnapshotParams{
		Format: q.Get("format"), Entity: q.Get("entity"), AsOf: q.Get("as_of"), Lang: q.Get("lang"),
		Preferred: c.Request().Header.Get("Accept-Language")})
	req.Divisions, req.PhotoURL = s.divisions, photoURL
	return req, inQuery(err)
}

// handleSnapshot is GET /v1/snapshot?region=&entity=&format=&as_of=
// (supervisors and admins): every record of an entity in a region, read
// from one read transaction and streamed as it is read, with the point of
// the change log it shows in X-Snapshot-Cursor. Deleted records are left
// out. An error after the first byte was sent cannot become a problem
// document: the connection is then cut, so that the client sees an
// incomplete download rather than a short file. At most
// Config.SnapshotConcurrency snapshots stream at once: each holds a read
// transaction (and so keeps the WAL from being checkpointed past it) and a
// CPU for as long as its client reads, so beyond that the answer is 503 with
// Retry-After. One user may take Config.SnapshotsPerUser of them (429
// beyond), and a client must read at Config.SnapshotMinRate on average
// (rateBoundWriter), so that a slow reader cannot hold the slots for long.
func (s *Server) handleSnapshot(c echo.Context) error {
	req, err := s.parseSnapshotRequest(c)
	if err != nil {
		return err
	}
	// One user's snapshots first, so that a user beyond their own slots
	// does not take a global one.
	user := s.actor(c).UserID
	if !s.snapshotsByUser.acquire(user) {
		return tooManyUserSnapshots(s.snapshotsByUser.max)
	}
	defer s.snapshotsByUser.release(user)
	select {
	case s.snapshots <- struct{}{}:
		defer func() { <-s.snapshots }()
	default:
		return &syncproto.Error{Code: syncproto.EUnavailable, Title: "Too many snapshots",
			Message: fmt.Sprintf("%d snapshots are being taken already; retry later", cap(s.snapshots)),
			RetryIn: snapshotRetryAfter * time.Second}
	}
	run := s.newSnapshotRun(c, req)
	defer run.enc.Close()
	err = s.store.Snapshot(c.Request().Context(), req.Actor, req.Query(s.schema), run)
	if err == nil {
		err = run.finish()
	}
	if err != nil {
		return run.fail(err)
	}
	s.reqLog(c).Info("snapshot done", run.attrs(append([]any{"cursor_seq", run.at.Seq}, run.enc.Summary()...)...)...)
	return nil
}

// snapshotRun is one snapshot being answered: it receives the store's rows
// (it is the syncproto.SnapshotSink), hands them to the format's encoder,
// flushes the response and logs progress.
type snapshotRun struct {
	s       *Server
	c       echo.Context
	req     export.SnapshotRequest
	enc     export.Encoder
	out     *bufio.Writer
	paced   *rateBoundWriter
	at      syncproto.Cursor
	rows    int
	started time.Time
	// counted is the snapshot's rows counter of the metrics.
	counted prometheus.Counter
}

func (s *Server) newSnapshotRun(c echo.Context, req export.SnapshotRequest) *snapshotRun {
	paced := s.paced(c, c.Response())
	run := &snapshotRun{s: s, c: c, req: req, started: time.Now(), counted: s.metrics.snapshotRows.WithLabelValues(req.Format),
		out: bufio.NewWriterSize(paced, 64<<10), paced: paced}
	run.enc = export.NewEncoder(req, s.schema, run.out)
	return run
}

// Start sets the headers, then, for the formats written as they are read,
// sends them with the beginning of the body.
func (r *snapshotRun) Start(at syncproto.Cursor) error {
	r.at = at
	h := r.c.Response().Header()
	h.Set(headerSnapshotCursor, r.s.cursors.Encode(at))
	h.Set(echo.HeaderContentType, r.enc.ContentType())
	h.Set("Cache-Control", "no-store")
	if r.req.Format != export.FormatNDJSON {
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+r.req.FileName()+`"`)
	}
	if _, ok := r.enc.(export.LocationCounter); ok {
		h.Set("Trailer", headerWithoutLocation)
	}
	r.s.reqLog(r.c).Info("snapshot started", r.attrs("cursor_seq", at.Seq)...)
	if !r.enc.Streams() {
		return r.enc.Begin()
	}
	r.c.Response().WriteHeader(http.StatusOK)
	if err := r.enc.Begin(); err != nil {
		return err
	}
	return r.flush()
}

// Row encodes one record, flushing and logging progress now and then.
func (r *snapshotRun) Row(row syncproto.SnapshotRow) error {
	if r.req.MasksIdentities() {
		export.MaskRow(r.s.schema, &row)
	}
	if err := r.enc.Row(row); err != nil {
		return err
	}
	r.rows++
	r.counted.Inc()
	if r.rows%snapshotFlushEvery == 0 {
		if err := r.flush(); err != nil {
			return err
		}
	}
	if r.rows%snapshotProgressEvery == 0 {
		r.s.reqLog(r.c).Info("snapshot progress", r.attrs()...)
	}
	return nil
}

// flush sends what is buffered to the client and renews the write
// deadline (only the latter while an XLSX workbook is being spooled).
func (r *snapshotRun) flush() error {
	if r.c.Response().Committed {
		if err := r.out.Flush(); err != nil {
			return err
		}
		return r.paced.flush()
	}
	return r.paced.deadline(r.paced.window)
}

// finish writes the end of the body (all of it for XLSX) once the store has
// read every row and ended its transaction.
func (r *snapshotRun) finish() error {
	if !r.enc.Streams() {
		r.c.Response().WriteHeader(http.StatusOK)
	}
	if err := r.enc.End(); err != nil {
		return err
	}
	if lc, ok := r.enc.(export.LocationCounter); ok {
		r.c.Response().Header().Set(headerWithoutLocation, strconv.Itoa(lc.WithoutLocation()))
	}
	return r.flush()
}

// fail answers an error. Before the response is committed it becomes the
// problem document (the snapshot's headers are dropped, and as_of errors of
// the store get their query path); after, the connection is cut.
func (r *snapshotRun) fail(err error) error {
	if !r.c.Response().Committed {
		h := r.c.Response().Header()
		h.Del(headerSnapshotCursor)
		h.Del(echo.HeaderContentDisposition)
		h.Del("Trailer")
		var se *syncproto.Error
		if errors.As(err, &se) {
			for i := range se.Errors {
				if se.Errors[i].Path == "as_of" {
					se.Errors[i].Path = "query.as_of"
				}
			}
		}
		return err
	}
	if ctxErr := r.c.Request().Context().Err(); ctxErr != nil {
		r.s.reqLog(r.c).Info("snapshot cancelled by the client", r.attrs()...)
	} else {
		r.s.reqLog(r.c).Error("snapshot failed", r.attrs("err", err)...)
	}
	// net/http's documented way to abort a response: the connection is
	// closed without the end of the chunked body, and nothing is logged.
	panic(http.ErrAbortHandler)
}

// attrs are the log attributes of the snapshot, then extra.
func (r *snapshotRun) attrs(extra ...any) []any {
	return append([]any{slog.String("user", r.req.Actor.UserID), slog.String("region", r.req.Region),
		slog.String("entity", r.req.Entity), slog.String("format", r.req.Format), slog.Int("rows", r.rows),
		slog.Int64("bytes", r.c.Response().Size+int64(r.out.Buffered())),
		slog.Int64("ms", time.Since(r.started).Milliseconds())}, extra...)
}
