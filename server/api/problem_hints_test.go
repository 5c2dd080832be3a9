package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The domain's hints become the wire's words in the one error mapping: a
// wait (RetryIn) is Retry-After in whole seconds, rounded up; the bytes of
// a photo held (PhotoBytesHeld) are Upload-Offset and upload_offset; a
// chunk's range (attachments.PathRange) is header.Content-Range.
func TestProblemHintsBecomeHeaders(t *testing.T) {
	held := int64(4096)
	cases := []struct {
		name             string
		err              error
		retry, offset    string
		path, bodyOffset string
	}{
		{name: "wait in seconds", err: &syncproto.Error{Code: syncproto.ERateLimited, RetryIn: 5 * time.Second}, retry: "5"},
		{name: "wait rounded up", err: &syncproto.Error{Code: syncproto.EUnavailable, RetryIn: 1500 * time.Millisecond}, retry: "2"},
		{name: "no wait", err: &syncproto.Error{Code: syncproto.EConflict}},
		{name: "bytes held", err: &syncproto.Error{Code: syncproto.EConflict, PhotoBytesHeld: &held,
			Errors: []syncproto.FieldError{{Path: attachments.PathRange, Message: "START must be 4096"}}},
			offset: "4096", bodyOffset: "4096", path: "header.Content-Range"},
	}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			c := echo.New().NewContext(httptest.NewRequest(http.MethodPut, "/v1/attachments/x", nil), rec)
			s.errorHandler(rangeAsHeader(tc.err), c)
			if got := rec.Header().Get("Retry-After"); got != tc.retry {
				t.Errorf("Retry-After %q, want %q", got, tc.retry)
			}
			if got := rec.Header().Get("Upload-Offset"); got != tc.offset {
				t.Errorf("Upload-Offset %q, want %q", got, tc.offset)
			}
			var p struct {
				Errors       []syncproto.FieldError `json:"errors"`
				UploadOffset json.Number            `json:"upload_offset"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("problem %s: %v", rec.Body, err)
			}
			if string(p.UploadOffset) != tc.bodyOffset {
				t.Errorf("upload_offset %q, want %q", p.UploadOffset, tc.bodyOffset)
			}
			if tc.path != "" && (len(p.Errors) != 1 || p.Errors[0].Path != tc.path) {
				t.Errorf("errors %+v, want the path %s", p.Errors, tc.path)
			}
		})
	}
}
