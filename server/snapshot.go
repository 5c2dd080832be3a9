package server

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The formats of GET /v1/snapshot.
const (
	formatNDJSON  = "ndjson"
	formatCSV     = "csv"
	formatGeoJSON = "geojson"
	formatXLSX    = "xlsx"
)

// headerSnapshotCursor names the point of the change log a snapshot shows.
const headerSnapshotCursor = "X-Snapshot-Cursor"

// headerWithoutLocation is the HTTP trailer of a GeoJSON snapshot: how many
// of its households have no location (their features' geometry is null).
// A trailer, announced in the Trailer header, because the count is known
// only once the last row is streamed.
const headerWithoutLocation = "X-Households-Without-Location"

// locationCounter is an encoder that counts the households it wrote
// without a location (GeoJSON).
type locationCounter interface{ withoutLocation() int }

const (
	// snapshotFlushEvery is how many rows go to the client between two
	// flushes of the response.
	snapshotFlushEvery = 1000
	// snapshotProgressEvery is how many rows pass between two progress
	// lines in the server log.
	snapshotProgressEvery = 50_000
	// snapshotWriteWindow is how long the client may take to accept what
	// was flushed before the connection is cut; every flush renews it, so
	// a snapshot may take longer than the server's write timeout as long as
	// the client keeps reading.
	snapshotWriteWindow = 2 * time.Minute
	// snapshotRetryAfter is the Retry-After, in seconds, of a snapshot
	// refused because the most allowed are already streaming.
	snapshotRetryAfter = 30
)

// snapshotRequest is a validated GET /v1/snapshot.
type snapshotRequest struct {
	actor  syncproto.Actor // the caller, narrowed to the region
	region string          // the region asked for; "" for the caller's scope
	format string
	entity string // "" for every entity (XLSX only)
	asOf   *syncproto.Cursor
	// lang is the language of a CSV's or XLSX's headers and enum values:
	// zh, en, or codes (tableLang).
	lang string
	// divisions names the villages of a labelled table.
	divisions Divisions
}

// parseSnapshotRequest reads the query: 400 for unknown or repeated
// parameters, 403 for a region outside the caller's scope, 422 for a bad
// region, format, entity or as_of (every error with its path).
func (s *Server) parseSnapshotRequest(c echo.Context) (snapshotRequest, error) {
	q := c.QueryParams()
	if err := onlyParams(q, "region", "entity", "format", "as_of", "lang"); err != nil {
		return snapshotRequest{}, err
	}
	actor, region, err := s.regionScope(c)
	if err != nil {
		return snapshotRequest{}, err
	}
	req, err := newSnapshotRequest(s.schema, s.push.Cursors(), actor, region, q.Get("format"), q.Get("entity"), q.Get("as_of"),
		q.Get("lang"), c.Request().Header.Get("Accept-Language"))
	req.divisions = s.divisions
	return req, err
}

// newSnapshotRequest checks a snapshot's format, entity and as_of for an
// actor already narrowed to the region: 422 for a bad one, with the paths
// query.format, query.entity, query.as_of, query.lang (the HTTP API and
// fieldsync export take the same request). lang and acceptLanguage choose
// the language of CSV and XLSX (tableLang); NDJSON and GeoJSON keep their
// keys and codes whatever they say.
func newSnapshotRequest(sch *schema.Schema, cursors *syncproto.CursorCodec, actor syncproto.Actor, region, format, entity, asOf, lang, acceptLanguage string) (snapshotRequest, error) {
	req := snapshotRequest{actor: actor, region: region, format: strings.TrimSpace(format), entity: strings.TrimSpace(entity)}
	if req.format == "" {
		req.format = formatNDJSON
	}
	var errs []syncproto.FieldError
	req.lang = langCodes
	if l, fe := tableLang(lang, acceptLanguage); fe != nil {
		errs = append(errs, *fe)
	} else if req.format == formatCSV || req.format == formatXLSX {
		req.lang = l
	}
	entities := "must be one of " + strings.Join(sch.Entities(), ", ")
	switch req.format {
	case formatNDJSON, formatCSV:
		if req.entity == "" {
			errs = append(errs, syncproto.FieldError{Path: "query.entity", Message: "is required for format " + req.format + "; " + entities})
		} else if sch.Form(req.entity) == nil {
			errs = append(errs, syncproto.FieldError{Path: "query.entity", Message: entities})
		}
	case formatGeoJSON:
		if req.entity == "" {
			req.entity = "household"
		} else if req.entity != "household" {
			errs = append(errs, syncproto.FieldError{Path: "query.entity", Message: "must be household (or absent) for format geojson"})
		}
	case formatXLSX:
		if req.entity != "" && sch.Form(req.entity) == nil {
			errs = append(errs, syncproto.FieldError{Path: "query.entity", Message: entities})
		}
	default:
		errs = append(errs, syncproto.FieldError{Path: "query.format", Message: "must be one of ndjson, csv, geojson, xlsx"})
	}
	if asOf != "" {
		cur, err := cursors.Parse(asOf)
		if err != nil {
			errs = append(errs, syncproto.FieldError{Path: "query.as_of", Message: "must be a cursor returned by this server"})
		} else {
			req.asOf = &cur
		}
	}
	if len(errs) > 0 {
		return snapshotRequest{}, &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid snapshot request",
			Message: "the snapshot's parameters are invalid", Errors: errs}
	}
	return req, nil
}

// query is what the store reads for the request. A GeoJSON snapshot also
// asks for each household's latest housing and water inspection.
func (r snapshotRequest) query(sch *schema.Schema) syncproto.SnapshotQuery {
	// NDJSON writes each record's fields as stored, without decoding them.
	q := syncproto.SnapshotQuery{Entities: r.entities(sch), AsOf: r.asOf, RawFields: r.format == formatNDJSON,
		Parents: r.format == formatCSV || r.format == formatXLSX}
	if r.format == formatGeoJSON {
		q.Latest, q.LatestBy = []string{"housing_inspection", "water_inspection"}, "inspected_on"
	}
	return q
}

// entities are the entities the snapshot holds: the one asked for, or
// every entity of the schema (XLSX without entity).
func (r snapshotRequest) entities(sch *schema.Schema) []string {
	if r.entity == "" {
		return sch.Entities()
	}
	return []string{r.entity}
}

// fileName is the download's name: fieldsync-<entity>-<region>.<format>,
// with "snapshot" for a workbook of every entity and the caller's scope
// (or "all") when no region was asked for.
func (r snapshotRequest) fileName() string {
	entity := r.entity
	if entity == "" {
		entity = "snapshot"
	}
	region := r.region
	if region == "" {
		region = "all"
		if !r.actor.AllRegions && len(r.actor.Scope) == 1 {
			region = r.actor.Scope[0]
		}
	}
	return "fieldsync-" + entity + "-" + region + "." + r.format
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
	defer run.enc.close()
	err = s.store.Snapshot(c.Request().Context(), req.actor, req.query(s.schema), run)
	if err == nil {
		err = run.finish()
	}
	if err != nil {
		return run.fail(err)
	}
	s.reqLog(c).Info("snapshot done", run.attrs(append([]any{"cursor_seq", run.at.Seq}, run.enc.summary()...)...)...)
	return nil
}

// snapshotRun is one snapshot being answered: it receives the store's rows
// (it is the syncproto.SnapshotSink), hands them to the format's encoder,
// flushes the response and logs progress.
type snapshotRun struct {
	s       *Server
	c       echo.Context
	req     snapshotRequest
	enc     snapshotEncoder
	out     *bufio.Writer
	rc      *http.ResponseController
	at      syncproto.Cursor
	rows    int
	started time.Time
	// counted is the snapshot's rows counter of the metrics.
	counted prometheus.Counter
}

func (s *Server) newSnapshotRun(c echo.Context, req snapshotRequest) *snapshotRun {
	paced := s.paced(c, c.Response())
	run := &snapshotRun{s: s, c: c, req: req, started: time.Now(), counted: s.metrics.snapshotRows.WithLabelValues(req.format),
		out: bufio.NewWriterSize(paced, 64<<10), rc: paced.rc}
	run.enc = newSnapshotEncoder(req, s.schema, run.out)
	return run
}

// Start sets the headers, then, for the formats written as they are read,
// sends them with the beginning of the body.
func (r *snapshotRun) Start(at syncproto.Cursor) error {
	r.at = at
	h := r.c.Response().Header()
	h.Set(headerSnapshotCursor, r.s.push.Cursors().Encode(at))
	h.Set(echo.HeaderContentType, r.enc.contentType())
	h.Set("Cache-Control", "no-store")
	if r.req.format != formatNDJSON {
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+r.req.fileName()+`"`)
	}
	if _, ok := r.enc.(locationCounter); ok {
		h.Set("Trailer", headerWithoutLocation)
	}
	r.s.reqLog(r.c).Info("snapshot started", r.attrs("cursor_seq", at.Seq)...)
	if !r.enc.streams() {
		return r.enc.begin()
	}
	r.c.Response().WriteHeader(http.StatusOK)
	if err := r.enc.begin(); err != nil {
		return err
	}
	return r.flush()
}

// Row encodes one record, flushing and logging progress now and then.
func (r *snapshotRun) Row(row syncproto.SnapshotRow) error {
	if err := r.enc.row(row); err != nil {
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
		if err := r.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
	}
	if err := r.rc.SetWriteDeadline(time.Now().Add(snapshotWriteWindow)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// finish writes the end of the body (all of it for XLSX) once the store has
// read every row and ended its transaction.
func (r *snapshotRun) finish() error {
	if !r.enc.streams() {
		r.c.Response().WriteHeader(http.StatusOK)
	}
	if err := r.enc.end(); err != nil {
		return err
	}
	if lc, ok := r.enc.(locationCounter); ok {
		r.c.Response().Header().Set(headerWithoutLocation, strconv.Itoa(lc.withoutLocation()))
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
	return append([]any{slog.String("user", r.req.actor.UserID), slog.String("region", r.req.region),
		slog.String("entity", r.req.entity), slog.String("format", r.req.format), slog.Int("rows", r.rows),
		slog.Int64("bytes", r.c.Response().Size+int64(r.out.Buffered())),
		slog.Int64("ms", time.Since(r.started).Milliseconds())}, extra...)
}
