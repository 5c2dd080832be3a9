package api

import (
	"context"
	"strings"

	"github.com/labstack/echo/v4"
)

// What the external tests (package api_test) need of the package's
// insides.

// OpenAPIDocument is the embedded OpenAPI document.
var OpenAPIDocument = openAPIDocument

// TablePageSize is how many entries a conflict or duplicate table reads
// from the store at once.
const TablePageSize = tablePageSize

// HistoryEntry is one version of GET /v1/records/{entity}/{id}/history.
type HistoryEntry = historyEntry

// RoutesOf lists the API's routes: every route but the web console's
// (which is HTML, not the API, and not in openapi.json).
func RoutesOf(s *Server) []*echo.Route {
	var out []*echo.Route
	for _, r := range s.echo.Routes() {
		if r.Path != "/" && !strings.HasPrefix(r.Path, "/console/") {
			out = append(out, r)
		}
	}
	return out
}

// FlushPulls writes the server's buffered pull positions now.
func FlushPulls(ctx context.Context, s *Server) error { return s.pulls.flush(ctx) }
