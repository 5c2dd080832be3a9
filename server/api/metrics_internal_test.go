package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// BenchmarkRequestScope measures what the request-scope middleware (request
// id, metrics, access log) adds to a request, against the same handler
// without it; the logger discards, as a logger writing to a pipe costs the
// same with or without metrics.
func BenchmarkRequestScope(b *testing.B) {
	s := New(Config{Store: nil})
	handler := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	run := func(b *testing.B, h echo.HandlerFunc) {
		e := echo.New()
		e.GET("/v1/records/:entity/:id", h)
		req := httpRequest(http.MethodGet, "/v1/records/household/"+uuid.NewString())
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			e.ServeHTTP(discardWriter{}, req)
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, handler) })
	b.Run("with-request-scope", func(b *testing.B) { run(b, s.requestScope(handler)) })
	b.Run("metrics-only", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			s.metrics.observeRequest(http.MethodGet, "/v1/records/:entity/:id", 200, time.Millisecond)
		}
	})
}

func httpRequest(method, path string) *http.Request {
	req, _ := http.NewRequestWithContext(context.Background(), method, path, nil)
	req.RemoteAddr = "127.0.0.1:5555"
	return req
}

// discardWriter is an http.ResponseWriter that keeps nothing.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

// TestMetricsLabelValues: the label functions map the client's inventions
// to one value each and keep what the server itself answers.
func TestMetricsLabelValues(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "PUT": "PUT", "OPTIONS": "OPTIONS", "get": "other", "B0000001": "other", "": "other"} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int]string{200: "200", 404: "404", 503: "503", 0: "other", 999: "other", 299: "other"} {
		if got := statusLabel(in); got != want {
			t.Errorf("statusLabel(%d) = %q, want %q", in, got, want)
		}
	}
}
