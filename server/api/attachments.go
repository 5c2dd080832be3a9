package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The headers of resumable uploads. Upload-Offset is the bytes the server
// holds of a photo for the uploader (PROTOCOL.md); Upload-Complete, a
// structured-field boolean (?1 or ?0) as in the IETF resumable-uploads
// draft, says whether the photo is held whole.
const (
	headerUploadOffset   = "Upload-Offset"
	headerUploadComplete = "Upload-Complete"
)

// photoCacheControl lets a client (never a shared cache: photos are
// personal data) keep a photo for a year without asking again: its URL
// names its bytes, which never change.
const photoCacheControl = "private, max-age=31536000, immutable"

// photoURL is the path a photo is downloaded from.
func photoURL(hash string) string { return "/v1/attachments/" + hash }

// photoHash is the photo digest named by the request path: everything
// after /v1/attachments/, which must be exactly 64 lowercase hexadecimal
// digits (400 otherwise, path.sha256: a path, an escaped dot or an upper
// case digest names no photo).
func photoHash(c echo.Context) (string, error) {
	h := c.Param("*")
	if !syncproto.ValidSHA256(h) {
		return "", &syncproto.Error{Code: syncproto.EMalformed, Title: "Invalid photo hash",
			Message: "a photo is named by the SHA-256 of its bytes: 64 lowercase hexadecimal digits",
			Errors:  []syncproto.FieldError{{Path: "path.sha256", Message: "must be 64 lowercase hexadecimal digits"}}}
	}
	return h, nil
}

// uploader names who uploads, for the partials and the quotas: the user
// and the device of the token, so that a tablet's bytes only ever land in
// its own partial and count against its user's quotas.
func uploader(a syncproto.Actor) attachments.Uploader {
	return attachments.Uploader{User: a.UserID, Device: a.DeviceID}
}

func setUploadHeaders(c echo.Context, offset int64, complete bool) {
	h := c.Response().Header()
	h.Set(headerUploadOffset, strconv.FormatInt(offset, 10))
	if complete {
		h.Set(headerUploadComplete, "?1")
	} else {
		h.Set(headerUploadComplete, "?0")
	}
	h.Set("Cache-Control", "no-store")
}

// missingRequest is the body of POST /v1/attachments/missing.
type missingRequest struct {
	Hashes []json.RawMessage `json:"hashes"`
}

// handleMissing is POST /v1/attachments/missing {"hashes": [...]}: the
// hashes the server does not hold whole, or that the caller may not read
// yet (no granting reference in scope, no upload of theirs), each once, in
// the order asked: so that the tablet uploads the bytes, which proves it
// has them, before its reference grants anything.
func (s *Server) handleMissing(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	var req missingRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if req.Hashes == nil {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid request", Message: "hashes is required",
			Errors: []syncproto.FieldError{{Path: "hashes", Message: "is required: a list of SHA-256 digests"}}}
	}
	if len(req.Hashes) > syncproto.MaxMissingHashes {
		return &syncproto.Error{Code: syncproto.ETooLarge, Title: "Too many hashes",
			Message: fmt.Sprintf("ask about at most %d photos at once", syncproto.MaxMissingHashes),
			Errors:  []syncproto.FieldError{{Path: "hashes", Message: fmt.Sprintf("must hold at most %d items", syncproto.MaxMissingHashes)}}}
	}
	var wrongType, invalid []syncproto.FieldError
	hashes := make([]string, 0, len(req.Hashes))
	for i, raw := range req.Hashes {
		var h string
		path := fmt.Sprintf("hashes[%d]", i)
		if json.Unmarshal(raw, &h) != nil {
			wrongType = append(wrongType, syncproto.FieldError{Path: path, Message: "must be a string"})
			continue
		}
		if !syncproto.ValidSHA256(h) {
			invalid = append(invalid, syncproto.FieldError{Path: path, Message: "must be 64 lowercase hexadecimal digits"})
			continue
		}
		hashes = append(hashes, h)
	}
	if len(wrongType) > 0 {
		return &syncproto.Error{Code: syncproto.EMalformed, Title: "Malformed JSON",
			Message: "every hash must be a string", Errors: append(wrongType, invalid...)}
	}
	if len(invalid) > 0 {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid hashes",
			Message: fmt.Sprintf("%d hashes are not SHA-256 digests", len(invalid)), Errors: invalid}
	}
	unique := make([]string, 0, len(hashes))
	seen := map[string]bool{}
	for _, h := range hashes {
		if !seen[h] {
			seen[h] = true
			unique = append(unique, h)
		}
	}
	readable, err := s.store.ReadablePhotos(c.Request().Context(), s.actor(c), unique)
	if err != nil {
		return err
	}
	missing := []string{}
	for _, h := range unique {
		has, err := s.photos.Has(h)
		if err != nil {
			return err
		}
		if !has || !readable[h] {
			missing = append(missing, h)
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return writeJSON(c, http.StatusOK, map[string][]string{"missing": missing})
}

// handleUploadStatus is HEAD /v1/attachments/{sha256}: Upload-Offset, the
// bytes held for the caller's device (the photo's size when it is held
// whole, from whichever tablet, and the caller may read it), and
// Upload-Complete.
func (s *Server) handleUploadStatus(c echo.Context) error {
	hash, err := photoHash(c)
	if err != nil {
		return err
	}
	access, err := s.store.PhotoAccess(c.Request().Context(), s.actor(c), hash)
	if err != nil {
		return err
	}
	held, err := s.photos.Held(hash, uploader(s.actor(c)), access.Readable())
	if err != nil {
		return err
	}
	setUploadHeaders(c, held.Offset, held.Complete)
	return c.NoContent(http.StatusOK)
}

// uploadAnswer is the body of the PUT that completes a photo (201), or of a
// PUT to a photo already held whole (200).
type uploadAnswer struct {
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
	URL         string `json:"url"`
}

// handleUpload is PUT /v1/attachments/{sha256} with Content-Range: bytes
// START-END/TOTAL: a chunk appended at the held offset. 204 with
// Upload-Offset while the photo is incomplete; 201 when this chunk
// completed and verified it; 200 when it was already whole (at once for a
// caller who may read it; after all its bytes, hashed and not kept, for
// one who may not: the proof of possession). Every upload whose bytes all
// matched is recorded as the caller's.
func (s *Server) handleUpload(c echo.Context) error {
	hash, err := photoHash(c)
	if err != nil {
		return err
	}
	req := c.Request()
	start, end, total, err := parseContentRange(req.Header.Get("Content-Range"))
	if err != nil {
		return err
	}
	if total > s.photos.MaxBytes() {
		return &syncproto.Error{Code: syncproto.ETooLarge, Title: "Photo too large",
			Message: fmt.Sprintf("a photo may have at most %d bytes; this one has %d", s.photos.MaxBytes(), total),
			Errors:  []syncproto.FieldError{{Path: "header.Content-Range", Message: fmt.Sprintf("TOTAL must be at most %d", s.photos.MaxBytes())}}}
	}
	if req.ContentLength >= 0 && req.ContentLength != end-start+1 {
		return &syncproto.Error{Code: syncproto.EMalformed, Title: "Invalid Content-Length",
			Message: fmt.Sprintf("the body must hold the %d bytes of the Content-Range", end-start+1),
			Errors:  []syncproto.FieldError{{Path: "header.Content-Length", Message: fmt.Sprintf("must be %d, the length of the Content-Range", end-start+1)}}}
	}
	actor := s.actor(c)
	access, err := s.store.PhotoAccess(req.Context(), actor, hash)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(c.Response().Writer)
	res, err := s.photos.Write(req.Context(), attachments.Chunk{SHA256: hash, Uploader: uploader(actor),
		CanRead: access.Readable(), Start: start, End: end, Total: total, Body: req.Body,
		// A newer chunk from the same tablet for the same photo: this
		// request's connection is most likely dead; stop waiting for it.
		Preempt: func() { _ = rc.SetReadDeadline(time.Now()) }})
	if err != nil {
		return rangeAsHeader(err)
	}
	if res.Proven {
		if err := s.store.PhotoUploaded(req.Context(), actor, hash); err != nil {
			return err
		}
	}
	setUploadHeaders(c, res.Offset, res.Complete)
	if !res.Complete {
		return c.NoContent(http.StatusNoContent)
	}
	c.Response().Header().Set(echo.HeaderLocation, photoURL(hash))
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
		s.reqLog(c).Info("photo stored", "sha256", hash, "bytes", res.Offset, "type", res.ContentType,
			"user", s.actor(c).UserID, "device", s.actor(c).DeviceID)
	}
	return writeJSON(c, status, uploadAnswer{SHA256: hash, Size: res.Offset, ContentType: res.ContentType, URL: photoURL(hash)})
}

// rangeAsHeader names the photo store's errors about a chunk's range
// (attachments.PathRange) after the header the range came in:
// header.Content-Range.
func rangeAsHeader(err error) error {
	var se *syncproto.Error
	if errors.As(err, &se) {
		for i := range se.Errors {
			if se.Errors[i].Path == attachments.PathRange {
				se.Errors[i].Path = "header.Content-Range"
			}
		}
	}
	return err
}

// parseContentRange reads Content-Range: bytes START-END/TOTAL (digits
// only, START ≤ END < TOTAL); 400 with path header.Content-Range otherwise.
func parseContentRange(v string) (start, end, total int64, err error) {
	bad := func(msg string) error {
		return &syncproto.Error{Code: syncproto.EMalformed, Title: "Invalid Content-Range", Message: msg,
			Errors: []syncproto.FieldError{{Path: "header.Content-Range", Message: msg}}}
	}
	if v == "" {
		return 0, 0, 0, bad("is required: bytes START-END/TOTAL")
	}
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, 0, bad("must be bytes START-END/TOTAL")
	}
	span, totalText, ok := strings.Cut(rest, "/")
	startText, endText, ok2 := strings.Cut(span, "-")
	if !ok || !ok2 {
		return 0, 0, 0, bad("must be bytes START-END/TOTAL")
	}
	nums := [3]int64{}
	for i, text := range []string{startText, endText, totalText} {
		n, ok := parseDigits(text)
		if !ok {
			return 0, 0, 0, bad("must be bytes START-END/TOTAL, each a whole number of bytes")
		}
		nums[i] = n
	}
	start, end, total = nums[0], nums[1], nums[2]
	if start > end || end >= total {
		return 0, 0, 0, bad("must have START ≤ END < TOTAL (END is the chunk's last byte, counted from 0)")
	}
	return start, end, total, nil
}

// parseDigits parses a non-negative decimal number of at most 15 digits
// (far beyond any photo), refusing signs, spaces and other characters.
func parseDigits(s string) (int64, bool) {
	if len(s) > 15 || !schema.IsDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// handleDownload is GET /v1/attachments/{sha256}: the photo, if a record
// in the caller's scope references it through a reference that grants (its
// maker proved possession), or the caller uploaded it (403 otherwise), and
// the server holds it whole (404 otherwise). Range requests, conditional requests on the
// ETag (the digest) and a year of private caching.
func (s *Server) handleDownload(c echo.Context) error {
	hash, err := photoHash(c)
	if err != nil {
		return err
	}
	access, err := s.store.PhotoAccess(c.Request().Context(), s.actor(c), hash)
	if err != nil {
		return err
	}
	if !access.Readable() {
		// A reference in scope whose maker has not uploaded the photo yet:
		// 404 while the server holds no such photo at all (nothing to
		// protect), 403 once it holds one that the reference's maker did
		// not prove to have.
		if has, err := s.photos.Has(hash); err == nil && !has && access.Pending {
			return &syncproto.Error{Code: syncproto.ENotFound, Title: "Not found",
				Message: "the server does not hold this photo whole: the tablet that took it has not finished uploading it"}
		}
		return &syncproto.Error{Code: syncproto.EForbidden, Title: "Forbidden",
			Message: "no record in your scope references this photo with proof that its maker had it, and you did not upload it"}
	}
	p, err := s.photos.OpenPhoto(hash)
	if errors.Is(err, fs.ErrNotExist) {
		return &syncproto.Error{Code: syncproto.ENotFound, Title: "Not found",
			Message: "the server does not hold this photo whole: the tablet that took it has not finished uploading it"}
	}
	if err != nil {
		return err
	}
	defer p.Close()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, p.ContentType)
	h.Set("ETag", `"`+hash+`"`)
	h.Set("Cache-Control", photoCacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(&problemOnError{ResponseWriter: c.Response(), path: c.Request().URL.Path}, c.Request(), "", time.Time{}, p.File)
	return nil
}

// problemOnError turns the few errors http.ServeContent writes itself
// (416 for a range beyond the photo, 412 for a failed If-Match) into
// problem documents, as every error of the API is one.
type problemOnError struct {
	http.ResponseWriter
	path   string
	failed bool
}

func (w *problemOnError) WriteHeader(code int) {
	if code < 400 || w.failed {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.failed = true
	p := Problem{Type: "/problems/http_" + strconv.Itoa(code), Title: http.StatusText(code), Status: code, Instance: w.path}
	switch code {
	case http.StatusRequestedRangeNotSatisfiable:
		p.Type, p.Detail = "/problems/range_not_satisfiable", "the Range asks for bytes beyond the photo (its size is in Content-Range)"
		p.Errors = []syncproto.FieldError{{Path: "header.Range", Message: "must lie within the photo"}}
	case http.StatusPreconditionFailed:
		p.Type, p.Detail = "/problems/precondition_failed", "the photo does not match the request's preconditions"
	default:
		if code >= 500 {
			p = Problem{Type: "/problems/internal", Title: "Internal error", Status: http.StatusInternalServerError,
				Detail: "an internal error occurred; it has been logged", Instance: w.path}
			code = http.StatusInternalServerError
		}
	}
	h := w.Header()
	h.Set(echo.HeaderContentType, "application/problem+json")
	h.Del("Content-Length")
	h.Del("Cache-Control")
	w.ResponseWriter.WriteHeader(code)
	_ = jsonEncode(w.ResponseWriter, p)
}

func (w *problemOnError) Write(b []byte) (int, error) {
	if w.failed {
		return len(b), nil // the text ServeContent meant to send
	}
	return w.ResponseWriter.Write(b)
}

// requirePhotos answers 503 on the attachment endpoints of a server
// configured without a photo store.
func (s *Server) requirePhotos(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.photos == nil {
			return &syncproto.Error{Code: syncproto.EUnavailable, Title: "Photos unavailable",
				Message: "this server keeps no photos"}
		}
		return next(c)
	}
}
