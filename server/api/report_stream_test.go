package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// streamWriteTimeout is the write timeout of reportTimeoutServer: short,
// so that a report read at a steady pace takes several of it.
const streamWriteTimeout = time.Second

// reportTimeoutServer serves 400 households of storetest.SouthVillage
// with the configured timeouts (api.Server.Serve, as fieldsync serve
// does), a write timeout of streamWriteTimeout and a minimum rate of
// 8 KiB/s after a 1 s grace, on connections with an 8 KiB send buffer (so
// that the server's writes wait for the reader rather than finishing into
// the kernel). It returns the harness (the same handler without timeouts,
// for the whole answers), the URL of the server with the timeouts and
// the admin's token.
func reportTimeoutServer(t *testing.T) (ts *apitest.Server, url, token string) {
	t.Helper()
	ts = apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) {
		cfg.Timeouts.Write = streamWriteTimeout
		cfg.SnapshotMinRate, cfg.SnapshotRateGrace = 8<<10, time.Second
	})
	dev := storetest.NewDevice("admin")
	for i := 0; i < 2; i++ {
		var changes []syncproto.Change
		for j := 0; j < 200; j++ {
			changes = append(changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
		}
		resp, body := ts.PushJSON(t, dev.Changeset(changes...))
		pushedNew(t, resp, body)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Config.Handler.(*api.Server).Serve(ctx, smallSendBuffers{ln}, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	return ts, "http://" + ln.Addr().String(), ts.Login(t, "admin", uuid.NewString())
}

// readPaced reads url's answer through connections with a 4 KiB receive
// buffer, 4 KiB at a time with a pause of pause after each, pausing
// stallFor once after the first read; it returns the body read and how the
// read ended.
func readPaced(t *testing.T, url, token string, pause, stallFor time.Duration) ([]byte, error, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	began := time.Now()
	resp, err := slowClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d", url, resp.StatusCode)
	}
	var got bytes.Buffer
	buf := make([]byte, 4<<10)
	for first := true; ; first = false {
		n, err := io.ReadFull(resp.Body, buf)
		got.Write(buf[:n])
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) && n > 0 {
			// The end, or the last short read: ReadFull says
			// ErrUnexpectedEOF for both a short last chunk and a cut;
			// the next read tells them apart.
			_, err = resp.Body.Read(buf)
			if errors.Is(err, io.EOF) {
				return got.Bytes(), nil, time.Since(began)
			}
			return got.Bytes(), err, time.Since(began)
		}
		if err != nil {
			return got.Bytes(), err, time.Since(began)
		}
		if first {
			time.Sleep(stallFor)
		}
		time.Sleep(pause)
	}
}

// TestReportStreamsRenewTheWriteDeadline: the report streams (JSON,
// NDJSON, CSV: the one reportBody) write through the snapshots'
// rateBoundWriter, so a verification report read at a steady pace
// completes although it takes several write timeouts (the old report
// streams were cut at the write timeout: a 1,000,000-household NDJSON
// after 600 s), and a reader that stops reading is still cut one write
// window after its last progress.
func TestReportStreamsRenewTheWriteDeadline(t *testing.T) {
	ts, url, token := reportTimeoutServer(t)
	for _, format := range []string{"ndjson", "json", "csv"} {
		path := "/v1/reports/verification?format=" + format
		resp, whole := ts.DoAs(t, token, http.MethodGet, path, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %.300s", path, resp.StatusCode, whole)
		}
		// Paced to take about three write timeouts.
		pause := 3 * streamWriteTimeout / time.Duration(len(whole)/(4<<10)+1)
		got, err, took := readPaced(t, url+path, token, pause, 0)
		t.Logf("%s: steady reader: %d of %d bytes in %s, %v", format, len(got), len(whole), took.Round(time.Millisecond), err)
		if err != nil || !bytes.Equal(got, whole) {
			t.Fatalf("%s read at a steady pace for %s (write timeout %s): %d of %d bytes, %v", path, took, streamWriteTimeout, len(got), len(whole), err)
		}
		if took < 2*streamWriteTimeout {
			t.Fatalf("%s was read in %s: not several write timeouts (%s); read slower", path, took, streamWriteTimeout)
		}
	}

	path := "/v1/reports/verification?format=ndjson"
	_, whole := ts.DoAs(t, token, http.MethodGet, path, "", nil)
	got, err, took := readPaced(t, url+path, token, 0, 3*streamWriteTimeout)
	t.Logf("stalled reader: %d of %d bytes in %s, %v", len(got), len(whole), took.Round(time.Millisecond), err)
	if err == nil || len(got) >= len(whole) {
		t.Fatalf("a reader that stopped for %s (write timeout %s) was not cut: %d of %d bytes, %v", 3*streamWriteTimeout, streamWriteTimeout, len(got), len(whole), err)
	}
}
