package api

import (
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// maxRequestIDLen bounds a request id taken from the client.
const maxRequestIDLen = 128

// acceptableRequestID reports whether a client's X-Request-Id may be used
// as it is: 1 to 128 visible ASCII characters (no spaces, no control
// characters), so that it cannot forge log lines or bloat them.
func acceptableRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

const loggerKey = "fieldsync.logger"

// requestScope is the outermost middleware: it gives every request an id
// (the client's X-Request-Id when acceptable, a new UUID otherwise),
// echoes it in the response's X-Request-Id, and keeps a logger carrying it
// for every line the request logs. It then counts and times the request
// for the metrics and writes the access log line once the answer is sent,
// also when the handler aborted a streamed answer.
func (s *Server) requestScope(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		start := time.Now()
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !acceptableRequestID(id) {
			id = uuid.NewString()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		log := s.log.With("request_id", id)
		c.Set(loggerKey, log)
		s.metrics.httpInFlight.Inc()
		defer func() {
			s.metrics.httpInFlight.Dec()
			p := recover()
			route := routeLabel(c)
			status := c.Response().Status
			elapsed := time.Since(start)
			s.metrics.observeRequest(c.Request().Method, route, status, elapsed)
			attrs := []any{"method", c.Request().Method, "route", route, "path", c.Request().URL.Path,
				"status", status, "bytes", c.Response().Size, "ms", elapsed.Milliseconds(), "remote", c.RealIP()}
			if a, ok := c.Get(actorKey).(syncproto.Actor); ok {
				attrs = append(attrs, "user", a.UserID, "device", a.DeviceID)
			}
			if p != nil {
				attrs = append(attrs, "aborted", true)
			}
			log.Info("request", attrs...)
			if p != nil {
				panic(p)
			}
		}()
		if err := next(c); err != nil {
			c.Error(err)
		}
		return nil
	}
}

// routeLabel is the route template a request matched
// ("/v1/records/:entity/:id"), or "unmatched" for a path no route serves.
// Echo only ever sets a registered route's template (also for a 405 or a
// 404 below a route), so the metrics' labels stay few whatever paths
// clients send.
func routeLabel(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return "unmatched"
}

// reqLog is the logger of the request being served: every line carries its
// request id.
func (s *Server) reqLog(c echo.Context) *slog.Logger {
	if l, ok := c.Get(loggerKey).(*slog.Logger); ok {
		return l
	}
	return s.log
}
