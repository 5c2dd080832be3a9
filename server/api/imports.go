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
// The file is spooled to a temporary file first (its SHA-256 is compared
// with the source's latest import before any row is read), then read row
// by row into one transaction. 200 with the import; 422 with every bad
// row (the first 100) at "line L, column C", nothing imported.
func (s *Server) handleImport(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "source"); err != nil {
		return err
	}
	source := strings.TrimSpace(c.QueryParam("source"))
	if source == "" {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid import", Message: "name the registry source",
			Errors: []syncproto.FieldError{{Path: "query.source", Message: "is required"}}}
	}
	body, name, err := importBody(c)
	if err != nil {
		return err
	}
	defer body.Close()
	tmp, err := os.CreateTemp("", "fieldsync-import-*")
	if err != nil {
		return fmt.Errorf("import spool: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, http.MaxBytesReader(c.Response(), body, importBodyLimit)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &syncproto.Error{Code: syncproto.ETooLarge, Title: "File too large",
				Message: fmt.Sprintf("an imported file may have at most %d bytes", importBodyLimit)}
		}
		return fmt.Errorf("import spool: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("import spool: %w", err)
	}
	table, err := tabular.Open(tmp.Name())
	if err != nil {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Unreadable file", Message: "the file is neither a CSV nor an XLSX workbook",
			Errors: []syncproto.FieldError{{Path: "body", Message: "is not a readable CSV or XLSX file"}}}
	}
	defer table.Close()
	imp, err := syncproto.NewImportService(s.store, s.schema, s.now).Import(c.Request().Context(), s.actor(c),
		syncproto.ImportRequest{Source: source, FileName: name, SHA256: table.SHA256, Table: table})
	if err != nil {
		if syncproto.ErrorCode(err) == syncproto.ENotFound {
			var se *syncproto.Error
			errors.As(err, &se)
			se.Errors = []syncproto.FieldError{{Path: "query.source", Message: "is no registry source of the served forms"}}
		}
		return err
	}
	if !imp.Same {
		// The import is committed; the conflicts it causes are opened in a
		// transaction of their own (an error here leaves the import, and a
		// reconciliation's next run opens them).
		n, err := syncproto.NewReconciliationService(s.store, s.schema).OpenConflicts(c.Request().Context(), s.actor(c), s.store, s.now())
		if err != nil {
			return err
		}
		imp.ConflictsOpened = n
	}
	return c.JSON(http.StatusOK, imp)
}

// importBody is the file of an import request and its name: the part
// "file" of a multipart body, else the body itself (named by the
// Content-Disposition's filename, if any).
func importBody(c echo.Context) (io.ReadCloser, string, error) {
	req := c.Request()
	mt, params, _ := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if mt != "multipart/form-data" {
		name := ""
		if _, p, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentDisposition)); err == nil {
			name = filepath.Base(p["filename"])
		}
		return req.Body, name, nil
	}
	mr, err := req.MultipartReader()
	if err != nil || params["boundary"] == "" {
		return nil, "", &syncproto.Error{Code: syncproto.EMalformed, Title: "Malformed body", Message: "a multipart body needs its boundary",
			Errors: []syncproto.FieldError{{Path: "header.Content-Type", Message: "multipart/form-data without a boundary"}}}
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, "", &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid import", Message: "the multipart body has no part \"file\"",
				Errors: []syncproto.FieldError{{Path: "body.file", Message: "is required"}}}
		}
		if err != nil {
			return nil, "", &syncproto.Error{Code: syncproto.EMalformed, Title: "Malformed body", Message: "the multipart body cannot be read",
				Errors: []syncproto.FieldError{{Path: "body", Message: "is not a readable multipart body"}}}
		}
		if part.FormName() == "file" {
			return part, filepath.Base(part.FileName()), nil
		}
		part.Close()
	}
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
