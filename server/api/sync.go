package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// actor returns who is calling, as the authenticate gate established it
// from the verified token. A route outside the gate has no actor: it may
// touch nothing.
func (s *Server) actor(c echo.Context) syncproto.Actor {
	a, _ := c.Get(actorKey).(syncproto.Actor)
	return a
}

const actorKey = "fieldsync.actor"

// authBodyLimit bounds the body of the token endpoints, which anyone may
// call.
const authBodyLimit = 16 << 10

// readBody reads a JSON request body within the body limit: 415 for another
// content type, 413 beyond the limit.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationJSON {
			return nil, &syncproto.Error{Code: syncproto.EMalformed, Title: "Unsupported content type",
				Message: "send the body as application/json",
				Errors:  []syncproto.FieldError{{Path: "header.Content-Type", Message: "must be application/json"}}}
		}
	}
	limit := s.limits.MaxBodyBytes
	if strings.HasPrefix(req.URL.Path, "/v1/auth/") {
		limit = authBodyLimit
	}
	if req.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge(limit)
	}
	if err != nil {
		return nil, &syncproto.Error{Code: syncproto.EMalformed, Message: "the request body could not be read"}
	}
	return body, nil
}

func tooLarge(limit int64) error {
	return &syncproto.Error{Code: syncproto.ETooLarge, Title: "Request too large",
		Message: fmt.Sprintf("the body is larger than %d bytes; split the change set", limit)}
}

// handlePush is POST /v1/sync/push. The cheap refusals come first: the
// token and the device were checked by authenticate, the device's push
// rate is checked here before a byte of the body is read; then the body is
// read within its limit, checked for repeated keys and overlong lists as a
// stream, and only then decoded.
func (s *Server) handlePush(c echo.Context) error {
	actor := s.actor(c)
	if ok, retry := s.pushByDevice.Allow(actor.DeviceID); !ok {
		return rateLimited(retry, "pushes from this device")
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	cs, err := syncproto.DecodeChangeset(body, s.schema, s.limits.MaxChanges)
	if err != nil {
		return err
	}
	if actor.DeviceID != cs.DeviceID {
		return &syncproto.Error{Code: syncproto.EForbidden, Title: "Device mismatch",
			Message: "device_id must be the device your token was issued to",
			Errors:  []syncproto.FieldError{{Path: "device_id", Message: "is not your token's device"}}}
	}
	resp, err := s.push.Push(c.Request().Context(), actor, cs)
	if err != nil {
		return err
	}
	s.metrics.observePush(cs, resp)
	return writeJSON(c, http.StatusOK, resp)
}

// handlePull is GET /v1/sync/pull?cursor=&limit=.
func (s *Server) handlePull(c echo.Context) error {
	q := c.QueryParams()
	if err := onlyParams(q, "cursor", "limit", "schema_version"); err != nil {
		return err
	}
	version, err := s.pullVersion(c, q.Get("schema_version"), q.Has("schema_version"))
	if err != nil {
		return err
	}
	after, err := s.cursors.ParsePull(q.Get("cursor"), s.actor(c))
	if err != nil {
		return err
	}
	limit, err := s.pullLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	page, err := s.store.Pull(c.Request().Context(), s.actor(c), after, limit)
	if err != nil {
		return err
	}
	if a := s.actor(c); a.DeviceID != "" {
		s.pulls.note(syncproto.PullPosition{Device: a.DeviceID, User: a.UserID, Seq: page.Cursor.Seq, At: s.now()})
	}
	page.Cursor.Device = s.actor(c).DeviceID // a cursor serves the device it was issued to
	resp := syncproto.PullResponse{Records: page.Records, Cursor: s.cursors.Encode(page.Cursor), HasMore: page.HasMore}
	if resp.Records == nil {
		resp.Records = []syncproto.Record{}
	}
	if err := syncproto.DownRecords(s.push.Catalog(), version, resp.Records); err != nil {
		return err
	}
	s.metrics.observePull(resp.Records)
	// The records' fields are passed through as stored (RawFields); the
	// answer is written by hand, not by reflection.
	buf := pullBuffers.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= maxPooledPullBuffer {
			pullBuffers.Put(buf)
		}
	}()
	b, err := syncproto.AppendPullResponse((*buf)[:0], &resp)
	if err != nil {
		return err
	}
	*buf = append(b, '\n')
	return writeJSONBytes(c, http.StatusOK, *buf)
}

// pullBuffers holds the buffers pull answers are written into; one of a
// page of the largest size stays about 3 MB.
var pullBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const maxPooledPullBuffer = 8 << 20

// handleChecksum is GET /v1/sync/checksum: the checksum over (id, version)
// of every record in the caller's scope, at the head of the change log.
func (s *Server) handleChecksum(c echo.Context) error {
	if err := onlyParams(c.QueryParams()); err != nil {
		return err
	}
	sum, cur, err := s.store.Checksum(c.Request().Context(), s.actor(c))
	if err != nil {
		return err
	}
	cur.Device = s.actor(c).DeviceID // equal to the pull's cursor at the same position
	return writeJSON(c, http.StatusOK, syncproto.ChecksumResponse{Cursor: s.cursors.Encode(cur),
		Count: sum.Count, Checksum: sum.String()})
}

// maxConflictIDs bounds the ids of one GET /v1/sync/conflicts.
const maxConflictIDs = 100

// handleSyncConflicts is GET /v1/sync/conflicts?ids=a,b,…: the current
// state of conflicts that the caller's device's changes opened (a tablet
// learns that a supervisor decided one). Ids of other devices' conflicts,
// and unknown ids, are left out of the answer.
func (s *Server) handleSyncConflicts(c echo.Context) error {
	q := c.QueryParams()
	if err := onlyParams(q, "ids"); err != nil {
		return err
	}
	var ids []string
	for _, id := range strings.Split(q.Get("ids"), ",") {
		if id = strings.TrimSpace(strings.ToLower(id)); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 || len(ids) > maxConflictIDs {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid ids",
			Message: fmt.Sprintf("give 1 to %d conflict ids, comma-separated", maxConflictIDs),
			Errors:  []syncproto.FieldError{{Path: "query.ids", Message: fmt.Sprintf("must hold 1 to %d ids", maxConflictIDs)}}}
	}
	actor := s.actor(c)
	out := []map[string]any{}
	for i, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid ids", Message: "conflict ids are UUIDs",
				Errors: []syncproto.FieldError{{Path: fmt.Sprintf("query.ids[%d]", i), Message: "is not a UUID"}}}
		}
		cf, err := s.store.Conflict(c.Request().Context(), id)
		if syncproto.ErrorCode(err) == syncproto.ENotFound {
			continue
		}
		if err != nil {
			return err
		}
		if cf.DeviceID != actor.DeviceID || actor.DeviceID == "" {
			continue
		}
		out = append(out, conflictJSON(*cf))
	}
	return writeJSON(c, http.StatusOK, map[string]any{"conflicts": out})
}

func (s *Server) pullLimit(v string) (int, error) {
	if v == "" {
		return s.limits.DefaultPull, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > s.limits.MaxPull {
		return 0, &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid limit",
			Message: fmt.Sprintf("limit must be a whole number from 1 to %d", s.limits.MaxPull),
			Errors:  []syncproto.FieldError{{Path: "query.limit", Message: fmt.Sprintf("must be from 1 to %d", s.limits.MaxPull)}}}
	}
	return n, nil
}

// onlyParams refuses query parameters other than the named ones, so that a
// misspelt parameter is an error rather than silently ignored.
func onlyParams(q url.Values, allowed ...string) error {
	var errs []syncproto.FieldError
	for k := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			errs = append(errs, syncproto.FieldError{Path: "query." + k, Message: "is not a parameter of this endpoint"})
		}
	}
	for _, a := range allowed {
		if len(q[a]) > 1 {
			errs = append(errs, syncproto.FieldError{Path: "query." + a, Message: "must be given once"})
		}
	}
	if len(errs) > 0 {
		return &syncproto.Error{Code: syncproto.EMalformed, Title: "Invalid query", Message: "unknown or repeated query parameters", Errors: errs}
	}
	return nil
}
