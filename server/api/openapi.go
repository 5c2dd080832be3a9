package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDocument is the OpenAPI 3 description of the HTTP API, written by
// hand and kept true by TestOpenAPIResponses, which validates the real
// handlers' answers against it.
//
//go:embed openapi.json
var openAPIDocument []byte

// handleOpenAPI is GET /v1/openapi.json: the OpenAPI document, for client
// generators and API explorers. It needs no token.
func (s *Server) handleOpenAPI(c echo.Context) error {
	if err := onlyParams(c.QueryParams()); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDocument)
}
