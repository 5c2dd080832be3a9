// Package console is the supervisors' web console: server-rendered pages
// (html/template, assets embedded with go:embed) over the same domain calls
// as the API — the ReportService for the overview, the SupervisionService
// for the queues' decisions, the store contract for records and history,
// the accounts for sign-in and revocation.
//
// It speaks net/http only (server/api, the one package that imports echo,
// mounts it at / and /console/...). A browser signs in with an account of
// server/auth and holds a session cookie (session.go); every form carries
// the session's CSRF token. Field workers see their own tablets, supervisors
// their region, admins every region: each page reads through the actor of
// the signed-in user, read afresh from the accounts on every request.
package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// DefaultIdle is how long a console session lasts without a request.
const DefaultIdle = 30 * time.Minute

// LoginFunc checks a user name and password as the API's token endpoint
// does (rate limits, the process's hash gate, timing that does not tell
// which names exist): the user, or nil with the key of the message to
// show (msg_login_failed, msg_rate_limited, msg_disabled, msg_internal).
type LoginFunc func(ctx context.Context, r *http.Request, name, password string) (*auth.User, string)

// Config is what New needs.
type Config struct {
	Store       syncproto.Store
	Accounts    auth.Accounts
	Schema      *schema.Schema
	Supervision *syncproto.SupervisionService
	Reports     *syncproto.ReportService
	// Login checks a password; required.
	Login LoginFunc
	// Divisions names regions; codes stay codes without it.
	Divisions schema.Divisions
	Now       func() time.Time
	// Idle ends a session after this long without a request; DefaultIdle
	// when 0.
	Idle time.Duration
	// MaxAge ends a session this long after sign-in however busy it is;
	// auth.ConsoleMaxAge when 0.
	MaxAge time.Duration
	// ReinspectAfter is the age of an appraisal that makes a household due.
	ReinspectAfter time.Duration
	// Tiles is an optional map tile URL template ({z}/{x}/{y}) drawn under
	// the map's points; TilesGCJ02 says its provider draws in GCJ-02, so
	// that the WGS-84 points are shifted onto it.
	Tiles      string
	TilesGCJ02 bool
	Log        *slog.Logger
}

// Console is the web console, an http.Handler.
type Console struct {
	cfg    Config
	mux    *http.ServeMux
	pages  map[string]*template.Template
	static http.Handler
}

// New builds the console.
func New(cfg Config) *Console {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = auth.ConsoleMaxAge
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	sub, _ := fs.Sub(staticFiles, "static")
	c := &Console{cfg: cfg, mux: http.NewServeMux(),
		static: http.StripPrefix("/console/static/", http.FileServerFS(sub))}
	c.pages = c.parsePages()
	c.routes()
	return c
}

// routes is the console's table of contents. Every page but sign-in and
// the assets needs a session (signedIn); every POST its CSRF token.
func (c *Console) routes() {
	m := c.mux
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	})
	m.Handle("GET /console/static/", c.static)
	m.HandleFunc("GET /console/login", c.handleLoginPage)
	m.HandleFunc("POST /console/login", c.handleLogin)
	m.HandleFunc("POST /console/logout", c.signedIn(c.handleLogout))
	m.HandleFunc("GET /console/lang/{lang}", c.handleLang)

	m.HandleFunc("GET /console/{$}", c.signedIn(c.handleHome))
	m.HandleFunc("GET /console/region/{code}", c.reader(c.handleOverview))
	m.HandleFunc("GET /console/events", c.reader(c.handleEvents))
	m.HandleFunc("GET /console/households/{id}", c.reader(c.handleHousehold))
	m.HandleFunc("GET /console/map/{code}", c.reader(c.handleMap))
	m.HandleFunc("GET /console/exports", c.reader(c.handleExports))

	m.HandleFunc("GET /console/conflicts", c.supervisor(c.handleConflicts))
	m.HandleFunc("POST /console/conflicts/{id}/resolve", c.supervisor(c.handleResolve))
	m.HandleFunc("GET /console/duplicates", c.supervisor(c.handleDuplicates))
	m.HandleFunc("POST /console/duplicates/{id}/merge", c.supervisor(c.handleMerge))
	m.HandleFunc("POST /console/duplicates/{id}/dismiss", c.supervisor(c.handleDismiss))
	m.HandleFunc("GET /console/quarantine", c.supervisor(c.handleQuarantine))
	m.HandleFunc("POST /console/quarantine/{id}/close", c.supervisor(c.handleCloseQuarantine))
	m.HandleFunc("GET /console/devices", c.signedIn(c.handleDevices))
	m.HandleFunc("POST /console/devices/{id}/revoke", c.supervisor(c.handleRevoke))
	m.HandleFunc("GET /console/reinspections", c.reader(c.handleReinspections))
	m.HandleFunc("GET /console/imports", c.supervisor(c.handleImports))
	m.HandleFunc("POST /console/imports", c.supervisor(c.handleImport))
	m.HandleFunc("GET /console/reconciliation/{code}", c.reader(c.handleReconciliation))
}

// ServeHTTP answers the console's pages.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", c.csp())
	if !strings.HasPrefix(r.URL.Path, "/console/static/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

// csp allows the console's own scripts and styles, and the configured
// tile server's images.
func (c *Console) csp() string {
	img := "'self' data:"
	if c.cfg.Tiles != "" {
		if i := strings.Index(c.cfg.Tiles, "://"); i > 0 {
			if j := strings.IndexByte(c.cfg.Tiles[i+3:], '/'); j > 0 {
				img += " " + c.cfg.Tiles[:i+3+j]
			}
		}
	}
	return "default-src 'self'; img-src " + img + "; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'"
}

// Actor is the actor of the console session a request carries, if it
// carries a live one. The API lets such a request download what the
// console links to (photos, exports) without a bearer token.
func (c *Console) Actor(r *http.Request) (syncproto.Actor, bool) {
	s, err := c.sessionOf(r)
	if err != nil || s == nil {
		return syncproto.Actor{}, false
	}
	u, err := c.cfg.Accounts.User(r.Context(), s.user)
	if err != nil || u == nil || u.Disabled {
		return syncproto.Actor{}, false
	}
	return u.Actor(ConsoleDevice), true
}

// ConsoleDevice is the device id of decisions made in the console (the
// history's "which tablet" of a supervisor's resolve or merge).
const ConsoleDevice = "console"
