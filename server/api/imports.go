package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/server/tabular"
	"github.com/fieldsync/fieldsync/syncproto"
)

// importBodyLimit bounds an import's file: a county's lists are a few
// megabytes; 100,000 rows of CSV about 10 MB.
const importBodyLimit = 256 << 20

// handleImport is POST /v1/imports?source=NAME: a registry file (CSV or
// XLSX) as the raw body, or as the part "file" of a multipart/form-data
// body, imported as the source's next version by an admin or supervisor
// (syncproto.ImportService; a supervisor's rows must lie in their region).
// A multipart body may carry a part "mapping": the JSON of fieldsync
// import --mapping (syncproto.ParseMapping), its errors at body.mapping….
// The file is spooled to a temporary file first (its SHA-256 is compared
// with the source's latest import before any row is read), then read row
// by row into one transaction. 200 with the import; 422 with every bad
// row (the first 100) at "line L, column C", or with every problem of the
// mapping, nothing imported.
func (s *Server) handleImport(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "source"); err != nil {
		return err
	}
	source := strings.TrimSpace(c.QueryParam("source"))
	if source == "" {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid import", Message: "name the registry source",
			Errors: []syncproto.FieldError{{Path: "query.source", Message: "is required"}}}
	}
	up, err := importBody(c)
	if up != nil {
		defer os.Remove(up.path)
	}
	if err != nil {
		return err
	}
	table, err := tabular.Open(up.path)
	if err != nil {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Unreadable file", Message: "the file is neither a CSV nor an XLSX workbook",
			Errors: []syncproto.FieldError{{Path: up.at, Message: "is not a readable CSV or XLSX file"}}}
	}
	defer table.Close()
	imp, err := syncproto.NewImportService(s.store, s.schema, s.now).ImportAndOpenConflicts(c.Request().Context(), s.actor(c),
		syncproto.ImportRequest{Source: source, FileName: up.name, SHA256: table.SHA256, Table: table,
			Mapping: up.mapping, MappingPath: "body.mapping"}, s.store)
	if err != nil {
		if syncproto.ErrorCode(err) == syncproto.ENotFound {
			var se *syncproto.Error
			errors.As(err, &se)
			se.Errors = []syncproto.FieldError{{Path: "query.source", Message: "is no registry source of the served forms"}}
		}
		return err
	}
	return c.JSON(http.StatusOK, imp)
}

// upload is an import request's file, spooled to path (the caller removes
// it), with its name, where the request held it (body or body.file) and
// the mapping a multipart body carried (nil: the source's default).
type upload struct {
	path, name, at string
	mapping        map[string]string
}

// importBody spools the file of an import request: the part "file" of a
// multipart body (and reads its part "mapping"), else the body itself
// (named by the Content-Disposition's filename, if any). The upload it
// returns, even with an error, has a file to remove when path is set.
func importBody(c echo.Context) (*upload, error) {
	req := c.Request()
	mt, params, _ := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if mt != "multipart/form-data" {
		up := &upload{at: "body"}
		if _, p, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentDisposition)); err == nil {
			up.name = filepath.Base(p["filename"])
		}
		var err error
		up.path, err = spoolImport(req.Body)
		return up, err
	}
	mr, err := req.MultipartReader()
	if err != nil || params["boundary"] == "" {
		return nil, &syncproto.Error{Code: syncproto.EMalformed, Title: "Malformed body", Message: "a multipart body needs its boundary",
			Errors: []syncproto.FieldError{{Path: "header.Content-Type", Message: "multipart/form-data without a boundary"}}}
	}
	up := &upload{at: "body.file"}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return up, &syncproto.Error{Code: syncproto.EMalformed, Title: "Malformed body", Message: "the multipart body cannot be read",
				Errors: []syncproto.FieldError{{Path: "body", Message: "is not a readable multipart body"}}}
		}
		switch part.FormName() {
		case "file":
			if up.path != "" {
				return up, &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid import", Message: "an import takes one file",
					Errors: []syncproto.FieldError{{Path: "body.file", Message: "is given twice"}}}
			}
			up.name = filepath.Base(part.FileName())
			if up.path, err = spoolImport(part); err != nil {
				return up, err
			}
		case "mapping":
			b, err := io.ReadAll(io.LimitReader(part, syncproto.MaxMappingBytes+1))
			if err != nil {
				return up, &syncproto.Error{Code: syncproto.EMalformed, Title: "Malformed body", Message: "the multipart body cannot be read",
					Errors: []syncproto.FieldError{{Path: "body.mapping", Message: "is not readable"}}}
			}
			if up.mapping, err = syncproto.ParseMapping(b, "body.mapping"); err != nil {
				return up, err
			}
		}
		part.Close()
	}
	if up.path == "" {
		return up, &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid import", Message: "the multipart body has no part \"file\"",
			Errors: []syncproto.FieldError{{Path: "body.file", Message: "is required"}}}
	}
	return up, nil
}

// spoolImport spools an import's file (tabular.Spool), at most
// importBodyLimit bytes.
func spoolImport(r io.Reader) (string, error) {
	path, err := tabular.Spool(r, importBodyLimit)
	var mbe *http.MaxBytesError
	if errors.Is(err, tabular.ErrTooLarge) || errors.As(err, &mbe) {
		return "", &syncproto.Error{Code: syncproto.ETooLarge, Title: "File too large",
			Message: fmt.Sprintf("an imported file may have at most %d bytes", importBodyLimit)}
	}
	return path, err
}

// handleReconciliation is GET /v1/reports/reconciliation?region=: the
// registries reconciled with the field records of the region (the
// caller's scope when absent), village by village from one read
// transaction (syncproto.ReconciliationService). The JSON body is
//
//	{"region", "region_name", "villages": [VillageReconciliation...],
//	 "totals": ReconciliationReport, "cursor", "generated_at"}
//
// and format=csv|xlsx one table of the findings with labels in lang.
// Identity numbers are masked for a caller without see_identity.
func (s *Server) handleReconciliation(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "region", "format", "lang"); err != nil {
		return err
	}
	actor, region, err := s.regionScope(c)
	if err != nil {
		return err
	}
	f, errs := parseReportFormat(c)
	if len(errs) > 0 {
		return invalidReport(errs)
	}
	rs := syncproto.NewReconciliationService(s.store, s.schema)
	ctx := c.Request().Context()
	names := regionNames(s.divisions)
	if f.tabular() {
		l := s.reportLabels(f.lang)
		tb := export.NewReconciliationTables(l, s.divisions)
		out, err := s.newReportOutput(c, f, l, tb.Tables, export.ReconciliationFindings, "fieldsync-reconciliation-"+export.RegionFileName(actor, region))
		defer out.close()
		if err != nil {
			return err
		}
		if _, err := rs.Reconcile(ctx, actor, func(v *syncproto.VillageReconciliation) error {
			for _, r := range tb.Rows(v) {
				if err := out.row(export.ReconciliationFindings, r...); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return out.fail(err)
		}
		return out.finish()
	}
	out := s.newJSONStream(c, reconciliationHead{Region: region, RegionName: names.of(region)}, "villages")
	sum, err := rs.Reconcile(ctx, actor, func(v *syncproto.VillageReconciliation) error {
		return out.item(reconciledVillage{VillageReconciliation: v, VillageName: names.of(v.Village)})
	})
	if err != nil {
		return out.fail(err)
	}
	return out.finish(reconciliationTail{Totals: sum, Cursor: s.cursors.Encode(sum.At), GeneratedAt: syncproto.FormatTime(s.now())})
}

type reconciliationHead struct {
	Region     string `json:"region"`
	RegionName string `json:"region_name"`
}

type reconciledVillage struct {
	*syncproto.VillageReconciliation
	VillageName string `json:"village_name"`
}

type reconciliationTail struct {
	Totals      *syncproto.ReconciliationReport `json:"totals"`
	Cursor      string                          `json:"cursor"`
	GeneratedAt string                          `json:"generated_at"`
}
