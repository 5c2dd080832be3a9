package api

import (
	"context"

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

// RoutesOf are the routes s serves.
func RoutesOf(s *Server) []*echo.Route { return s.echo.Routes() }

// FlushPulls writes the server's buffered pull positions now.
func FlushPulls(ctx context.Context, s *Server) error { return s.pulls.flush(ctx) }
