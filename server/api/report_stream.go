package api

import (
	"bufio"
	"net/http"

	"github.com/labstack/echo/v4"
)

// reportBody is the body of every streamed report and list, whatever its
// format (jsonStream, ndjsonStream and reportOutput write through it): a
// 64 KiB buffer, then the snapshots' rateBoundWriter, then the response.
// The status and the headers (set by header) go out with the first byte
// that reaches the client, so that an error before then is still a
// problem response. Every write and flush that makes progress renews the
// write deadline (rateBoundWriter): a report may take longer than the
// server's write timeout while its client keeps reading, and a client
// that stops reading, or reads slower than Config.SnapshotMinRate, is cut.
type reportBody struct {
	c      echo.Context
	header func(http.Header)
	paced  *rateBoundWriter
	out    *bufio.Writer
}

// newReportBody starts the body of c's answer; header sets its headers
// (Content-Type and the like) just before the status is sent.
func (s *Server) newReportBody(c echo.Context, header func(http.Header)) *reportBody {
	b := &reportBody{c: c, header: header}
	b.paced = s.paced(c, reportStart{b})
	b.out = bufio.NewWriterSize(b.paced, 64<<10)
	return b
}

// Write buffers p, sending what the buffer cannot hold.
func (b *reportBody) Write(p []byte) (int, error) { return b.out.Write(p) }

// committed reports whether the answer has begun: the status is sent, so
// a failure can only cut the connection.
func (b *reportBody) committed() bool { return b.c.Response().Committed }

// flush sends what is buffered once the answer has begun, and renews the
// write deadline (only the latter before, so that an error is still a
// problem response).
func (b *reportBody) flush() error {
	if !b.committed() {
		return b.paced.deadline(b.paced.window)
	}
	if err := b.out.Flush(); err != nil {
		return err
	}
	return b.paced.flush()
}

// end sends the whole rest of the body, beginning the answer if it has
// not begun.
func (b *reportBody) end() error {
	if err := b.out.Flush(); err != nil {
		return err
	}
	return b.paced.flush()
}

// reportStart sends the status and the headers before the first byte of
// the body.
type reportStart struct{ b *reportBody }

func (r reportStart) Write(p []byte) (int, error) {
	resp := r.b.c.Response()
	if !resp.Committed {
		h := resp.Header()
		h.Set("Cache-Control", "no-store")
		r.b.header(h)
		resp.WriteHeader(http.StatusOK)
	}
	return resp.Write(p)
}
