package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// page is what every template is given.
type page struct {
	Lang, Other string // the page's language and the other one
	Title       string
	Nav         string // the nav entry that is current
	CSRF        string
	User, Role  string
	Supervisor  bool
	Path        string // the request's URI, for the language switch
	Flash       string
	Live        bool // the overview refreshes when syncs arrive
	Status      int
	D           any
}

// pageNames are the templates, each with the layout.
var pageNames = []string{"login", "message", "overview", "household", "conflicts", "duplicates", "quarantine",
	"devices", "reinspections", "exports", "map", "imports", "reconciliation"}

// parsePages parses each page with the layout.
func (c *Console) parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"t":      t,
		"pct":    pct,
		"region": c.regionName,
		"label":  c.fieldLabel,
		"vlabel": c.valueLabel,
		"title":  c.formTitle,
		"policy": func(p, lang string) string { return schema.Tables().Value("policy", p, lang) },
		// table is a code's label in one of the tables' value lists
		// (schema/labels/tables.json: reason, state…).
		"table":   func(table, code, lang string) string { return schema.Tables().Value(table, code, lang) },
		"show":    c.showValue,
		"dept":    c.departmentLabel,
		"who":     c.who,
		"source":  c.sourceLabel,
		"add":     func(a, b int) int { return a + b },
		"colour":  coverageColour,
		"percent": func(a, b int) int { return percentOf(a, b) },
		"args":    func(r *recordView, lang string) map[string]any { return map[string]any{"R": r, "Lang": lang} },
		// decided reports whether a field's values are decided (a write
		// permission with an override note: the resolve form asks for it).
		"decided": c.takesOverrideNote,
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		tpl := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html"))
		out[name] = tpl
	}
	return out
}

// render writes a page: into a buffer first, so that a template error is
// a clean 500 page and not half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, lang string, q *request, data any) {
	c.renderWith(w, r, status, name, lang, q, data, false)
}

func (c *Console) renderWith(w http.ResponseWriter, r *http.Request, status int, name, lang string, q *request, data any, live bool) {
	p := page{Lang: lang, Other: schema.LangEN, Path: r.URL.RequestURI(), Status: status, D: data, Nav: name, Live: live}
	if lang == schema.LangEN {
		p.Other = schema.LangZH
	}
	if q != nil {
		p.CSRF, p.User, p.Role = q.session.csrf, q.actor.UserID, q.actor.Role
		p.Supervisor = q.actor.Role == syncproto.RoleSupervisor || q.actor.Role == syncproto.RoleAdmin
		p.Flash = t(lang, r.URL.Query().Get("done"))
		if r.URL.Query().Get("done") == "" {
			p.Flash = ""
		}
	}
	if m, ok := data.(interface{ pageTitle(lang string) string }); ok {
		p.Title = m.pageTitle(lang)
	}
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, p); err != nil {
		c.cfg.Log.Error("console template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// message is the data of a page that only says something.
type message struct {
	Heading, Text string
}

func (m message) pageTitle(string) string { return m.Heading }

// refuse answers status with a page saying why (key: a message key).
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, lang string, status int, key string) {
	heading := "forbidden"
	switch status {
	case http.StatusNotFound:
		heading = "not_found"
	case http.StatusUnprocessableEntity, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		heading = "invalid"
	}
	c.render(w, r, status, "message", lang, nil, message{Heading: t(lang, heading), Text: t(lang, key)})
}

// fail answers an error of a domain call: the problem's code as status and
// its safe message; anything unrecognised is a 500 logged with detail and
// shown without it.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, lang string, err error) {
	var e *syncproto.Error
	if errors.As(err, &e) {
		status := http.StatusUnprocessableEntity
		heading := "invalid"
		switch e.Code {
		case syncproto.ENotFound:
			status, heading = http.StatusNotFound, "not_found"
		case syncproto.EForbidden, syncproto.EUnauthorized:
			status, heading = http.StatusForbidden, "forbidden"
		case syncproto.EConflict:
			status = http.StatusConflict
		case syncproto.EInvalid, syncproto.EMalformed:
		default:
			e = nil
		}
		if e != nil {
			text := e.Message
			for _, fe := range e.Errors {
				text += " (" + fe.Path + ": " + fe.Message + ")"
			}
			c.render(w, r, status, "message", lang, nil, message{Heading: t(lang, heading), Text: text})
			return
		}
	}
	c.cfg.Log.Error("console", "path", r.URL.Path, "err", err)
	c.render(w, r, http.StatusInternalServerError, "message", lang, nil, message{Heading: t(lang, "error"), Text: t(lang, "msg_internal")})
}

// pct is "n (p %)".
func pct(n, of int) string {
	if of == 0 {
		return fmt.Sprintf("%d", n)
	}
	return fmt.Sprintf("%d (%d %%)", n, percentOf(n, of))
}

func percentOf(n, of int) int {
	if of == 0 {
		return 0
	}
	return (n*100 + of/2) / of
}

// coverageColour is the class of a coverage share: the villages behind are
// coloured by how far behind.
func coverageColour(p int) string {
	switch {
	case p >= 100:
		return "done"
	case p >= 80:
		return "near"
	case p >= 50:
		return "behind"
	default:
		return "far"
	}
}

// regionName is a division's name from the register, or its code.
func (c *Console) regionName(code string) string {
	if n := c.cfg.Divisions.Name(code); n != "" && n != code {
		return n
	}
	return code
}

// fieldLabel is a form field's label in lang (the schema's); a name that
// is no field of the form — a water criterion of version 2 (quality,
// quantity, convenience, reliability) — is labelled as the report tables
// label an indicator.
func (c *Console) fieldLabel(entity, field, lang string) string {
	if f := c.cfg.Schema.Form(entity); f != nil {
		if fd := f.Field(field); fd != nil {
			return fd.LabelIn(lang)
		}
	}
	return schema.Tables().Value("indicator", field, lang)
}

// valueLabel is the label of a field's value in lang.
func (c *Console) valueLabel(entity, field, value, lang string) string {
	if f := c.cfg.Schema.Form(entity); f != nil {
		if fd := f.Field(field); fd != nil {
			return fd.ValueLabelIn(value, lang)
		}
	}
	return value
}

// formTitle is a form's title in lang: the schema's table labels of
// entities, else the form's own title in lang (its titles).
func (c *Console) formTitle(entity, lang string) string {
	if l := schema.Tables().Value("entity", entity, lang); l != entity {
		return l
	}
	if f := c.cfg.Schema.Form(entity); f != nil && f.TitleIn(lang) != "" {
		return f.TitleIn(lang)
	}
	return entity
}

// showValue renders a stored JSON value for people: enum values by their
// labels, sets item by item, locations as coordinates, null as "—".
func (c *Console) showValue(entity, field string, raw json.RawMessage, lang string) string {
	if len(raw) == 0 || string(raw) == "null" {
		return "—"
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	switch x := v.(type) {
	case string:
		return c.valueLabel(entity, field, x, lang)
	case bool:
		if x {
			return map[bool]string{true: "是", false: "yes"}[lang == schema.LangZH]
		}
		return map[bool]string{true: "否", false: "no"}[lang == schema.LangZH]
	case []any:
		parts := make([]string, 0, len(x))
		for _, it := range x {
			if s, ok := it.(string); ok {
				parts = append(parts, c.valueLabel(entity, field, s, lang))
			} else {
				b, _ := json.Marshal(it)
				parts = append(parts, string(b))
			}
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		if lat, ok := x["lat"].(float64); ok {
			if lon, ok := x["lon"].(float64); ok {
				return fmt.Sprintf("%.5f, %.5f", lat, lon)
			}
		}
	}
	return string(raw)
}
