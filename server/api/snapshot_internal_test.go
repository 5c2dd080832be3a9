package api

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/labstack/echo/v4"
)

// TestSnapshotFailureAfterTheFirstByteCutsTheConnection: once a snapshot's
// body has begun, an error (or the client leaving) cannot become a problem
// document; the response is aborted so the client sees an incomplete
// download, and the reason is logged.
func TestSnapshotFailureAfterTheFirstByteCutsTheConnection(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	e := echo.New()
	rec := httptest.NewRecorder()
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/v1/snapshot?entity=household", nil), rec)
	req := export.SnapshotRequest{Entity: "household", Format: export.FormatNDJSON}
	run := &snapshotRun{s: s, c: c, req: req, started: time.Now()}
	run.out = bufio.NewWriter(c.Response())
	run.enc = export.NewEncoder(req, schema.V1(), run.out)
	c.Response().WriteHeader(http.StatusOK)
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", r)
		}
		if !strings.Contains(logs.String(), "snapshot failed") || !strings.Contains(logs.String(), "disk on fire") {
			t.Fatalf("log %s", logs.String())
		}
	}()
	_ = run.fail(fmt.Errorf("disk on fire"))
	t.Fatal("fail returned after the response was committed")
}
