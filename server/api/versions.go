package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// schemaAnswer is GET /v1/schema's answer: one version's forms
// ({"schema_version", "forms"}, what schema.Parse reads), what its
// version.json declares, and every version the server serves.
type schemaAnswer struct {
	*schema.Schema
	Versions  []int             `json:"versions"`
	Published string            `json:"published,omitempty"`
	Title     map[string]string `json:"title,omitempty"`
	Source    string            `json:"source,omitempty"`
	// Migrations are the steps from the version before, as its
	// version.json declares them: what a client on an older version
	// needs to read its own pending edits in this one.
	Migrations json.RawMessage `json:"migrations,omitempty"`
}

// handleSchema is GET /v1/schema: the latest version of the forms and the
// list of versions; ?version=N serves version N (404 when the server has
// none, 422 when N is no version number).
func (s *Server) handleSchema(c echo.Context) error {
	q := c.QueryParams()
	if err := onlyParams(q, "version"); err != nil {
		return err
	}
	cat := s.push.Catalog()
	if cat == nil {
		return writeJSON(c, http.StatusOK, schemaAnswer{Schema: s.schema, Versions: []int{s.schema.Version}})
	}
	sch := cat.Latest()
	if q.Has("version") {
		n, err := versionParam(q.Get("version"), "query.version")
		if err != nil {
			return err
		}
		if sch = cat.Version(n); sch == nil {
			return &syncproto.Error{Code: syncproto.ENotFound, Title: "No such schema version",
				Message: "this server serves schema versions 1 to " + strconv.Itoa(cat.Latest().Version),
				Errors:  []syncproto.FieldError{{Path: "query.version", Message: "must be a version from 1 to " + strconv.Itoa(cat.Latest().Version)}}}
		}
	}
	info := cat.Info(sch.Version)
	return writeJSON(c, http.StatusOK, schemaAnswer{Schema: sch, Versions: cat.Versions(),
		Published: info.Published, Title: info.Title, Source: info.Source, Migrations: info.Migrations})
}

// versionParam reads a schema version number from a query parameter.
func versionParam(v, path string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || strconv.Itoa(n) != v {
		return 0, &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid parameter",
			Message: "a schema version is a positive whole number",
			Errors:  []syncproto.FieldError{{Path: path, Message: "must be a positive whole number"}}}
	}
	return n, nil
}

// pullVersion is the schema version a pull answers in: ?schema_version=N
// when given (422 when N is no version the server serves), else the
// version the caller's device last pushed in, else the latest.
func (s *Server) pullVersion(c echo.Context, v string, given bool) (int, error) {
	cat := s.push.Catalog()
	if cat == nil {
		return s.schema.Version, nil
	}
	latest := cat.Latest().Version
	if given {
		n, err := versionParam(v, "query.schema_version")
		if err != nil {
			return 0, err
		}
		if cat.Version(n) == nil {
			return 0, &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid parameter",
				Message: "this server serves schema versions 1 to " + strconv.Itoa(latest),
				Errors:  []syncproto.FieldError{{Path: "query.schema_version", Message: "must be a version from 1 to " + strconv.Itoa(latest)}}}
		}
		return n, nil
	}
	device := s.actor(c).DeviceID
	if device == "" || latest == 1 {
		return latest, nil
	}
	n, err := s.store.DeviceSchemaVersion(c.Request().Context(), device)
	if err != nil {
		return 0, err
	}
	if cat.Version(n) == nil {
		return latest, nil
	}
	return n, nil
}
