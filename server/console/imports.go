package console

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/tabular"
	"github.com/fieldsync/fieldsync/syncproto"
)

// maxImportForm bounds the body of the import form: the file, as POST
// /v1/imports bounds it, and the mapping and the form's fields beside it.
const maxImportForm = 256<<20 + maxForm

// bodyLimit is how large a POST's body may be: the import form's file,
// every other form's fields.
func bodyLimit(r *http.Request) int64 {
	if r.Method == http.MethodPost && r.URL.Path == "/console/imports" {
		return maxImportForm
	}
	return maxForm
}

// parseForm parses a POST's form: a multipart body (the import form's)
// with its files spooled to disk beyond 32 MiB, any other as ParseForm
// does. It runs once the session is known, before the CSRF check reads
// the token from the form.
func parseForm(r *http.Request) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		return r.ParseMultipartForm(32 << 20)
	}
	return r.ParseForm()
}

// importSource is one registry source the import form offers.
type importSource struct {
	Name, Label, Department string
	Imports                 []syncproto.RegistryImport // newest first
}

// importOutcome is what an import did: the import, or every problem with
// its place (the file's line and column, the mapping's path).
type importOutcome struct {
	Source   string
	Import   *syncproto.RegistryImport
	Message  string
	Problems []syncproto.FieldError
}

// importsPage is the import form, the outcome of the last submission and
// each source's past imports.
type importsPage struct {
	Sources []importSource
	Chosen  string
	Outcome *importOutcome
	// Region is the reconciliation the outcome links to: the actor's
	// region, or every region.
	Region string
}

func (importsPage) pageTitle(lang string) string { return t(lang, "nav_imports") }

// handleImports is GET /console/imports: the form and the past imports
// (the store keeps no region of an import: a supervisor sees every
// source's imports, their counts, files and importers, as the registry
// rows they reconcile against are every region's).
func (c *Console) handleImports(q *request) {
	c.renderImports(q, http.StatusOK, q.r.URL.Query().Get("source"), nil)
}

// renderImports renders the import page with an outcome (nil: none).
func (c *Console) renderImports(q *request, status int, chosen string, out *importOutcome) {
	reg := c.cfg.Schema.Registries()
	past, err := c.cfg.Store.RegistryImports(q.r.Context(), "")
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	p := importsPage{Chosen: chosen, Outcome: out, Region: allRegions}
	if !q.actor.AllRegions && len(q.actor.Scope) > 0 {
		p.Region = q.actor.Scope[0]
	}
	if reg != nil {
		for _, s := range reg.Sources {
			src := importSource{Name: s.Name, Label: labelIn(s.Labels, q.lang, s.Name), Department: c.departmentLabel(s.Department, q.lang)}
			for _, imp := range past {
				if imp.Source == s.Name {
					src.Imports = append(src.Imports, imp)
				}
			}
			slices.Reverse(src.Imports)
			p.Sources = append(p.Sources, src)
		}
	}
	c.renderPage(q, status, "imports", p, false)
}

// handleImport is POST /console/imports (multipart: source, file, and
// optionally mapping, a mapping file): the file imported as the source's
// next version through the same call as POST /v1/imports
// (ImportService.ImportAndOpenConflicts), then the page with the outcome.
func (c *Console) handleImport(q *request) {
	source := q.r.PostFormValue("source")
	refuse := func(status int, msg string, problems ...syncproto.FieldError) {
		c.renderImports(q, status, source, &importOutcome{Source: source, Message: msg, Problems: problems})
	}
	if q.r.MultipartForm == nil || len(q.r.MultipartForm.File["file"]) == 0 || q.r.MultipartForm.File["file"][0].Size == 0 {
		refuse(http.StatusUnprocessableEntity, t(q.lang, "msg_import_no_file"), syncproto.FieldError{Path: "file", Message: t(q.lang, "msg_import_choose_file")})
		return
	}
	var mapping map[string]string
	if fhs := q.r.MultipartForm.File["mapping"]; len(fhs) > 0 && fhs[0].Size > 0 {
		f, err := fhs[0].Open()
		if err != nil {
			c.fail(q.w, q.r, q.lang, err)
			return
		}
		b, err := io.ReadAll(io.LimitReader(f, syncproto.MaxMappingBytes+1))
		f.Close()
		if err != nil {
			c.fail(q.w, q.r, q.lang, err)
			return
		}
		if mapping, err = syncproto.ParseMapping(b, "mapping"); err != nil {
			c.importFailed(q, source, err)
			return
		}
	}
	fh := q.r.MultipartForm.File["file"][0]
	f, err := fh.Open()
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	path, err := tabular.Spool(f, 256<<20)
	f.Close()
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	defer os.Remove(path)
	table, err := tabular.Open(path)
	if err != nil {
		refuse(http.StatusUnprocessableEntity, t(q.lang, "msg_import_unreadable"), syncproto.FieldError{Path: "file", Message: t(q.lang, "msg_import_unreadable")})
		return
	}
	defer table.Close()
	imp, err := syncproto.NewImportService(c.cfg.Store, c.cfg.Schema, c.cfg.Now).ImportAndOpenConflicts(q.r.Context(), q.actor,
		syncproto.ImportRequest{Source: source, FileName: filepath.Base(fh.Filename), SHA256: table.SHA256, Table: table,
			Mapping: mapping, MappingPath: "mapping"}, c.cfg.Store)
	if err != nil {
		c.importFailed(q, source, err)
		return
	}
	c.cfg.Log.Info("registry imported in the console", "source", imp.Source, "version", imp.Version, "rows", imp.Rows, "same", imp.Same, "by", q.actor.UserID)
	c.renderImports(q, http.StatusOK, source, &importOutcome{Source: source, Import: imp})
}

// importFailed shows an import's refusal on the page (every bad row, every
// problem of the mapping: nothing was imported); an error that is no
// refusal is the console's error page.
func (c *Console) importFailed(q *request, source string, err error) {
	var se *syncproto.Error
	if !errors.As(err, &se) {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	status := http.StatusUnprocessableEntity
	switch se.Code {
	case syncproto.EInvalid, syncproto.EMalformed:
	case syncproto.ENotFound:
		se = &syncproto.Error{Code: syncproto.EInvalid, Message: se.Message,
			Errors: []syncproto.FieldError{{Path: "source", Message: t(q.lang, "msg_import_no_source")}}}
	default:
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	c.renderImports(q, status, source, &importOutcome{Source: source, Message: se.Message, Problems: se.Errors})
}

// labelIn is a label of labels in lang, else in Chinese, else def.
func labelIn(labels map[string]string, lang, def string) string {
	if l := labels[lang]; l != "" {
		return l
	}
	if l := labels[schema.LangZH]; l != "" {
		return l
	}
	return def
}
