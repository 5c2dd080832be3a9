// Package api is fieldsync's HTTP adapter: the echo application over the
// store contract — New and Config, the routes (routes.go, the API's table
// of contents), the one mapping of domain errors to RFC 9457 problems
// (errors.go), the middleware (request scope and access log, the auth
// gate), the metrics, and one file per resource (sync, records, supervise,
// reports, snapshot, attachments, outbox, access), with the OpenAPI
// document it serves.
//
// It is the only package that imports echo, and no echo type leaves it. It
// may import the domain (schema, syncproto), export (the encoders), auth
// and attachments; never a store package, the command line or the load
// generator: cli wires a store into Config.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/console"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Limits bound what one request may ask of the server.
type Limits struct {
	// MaxBodyBytes bounds a request body (413 beyond).
	MaxBodyBytes int64
	// MaxChanges bounds the changes of one change set (413 beyond).
	MaxChanges int
	// DefaultPull and MaxPull are the default and the largest pull limit.
	DefaultPull, MaxPull int
}

// DefaultLimits are the limits the README documents.
var DefaultLimits = Limits{MaxBodyBytes: 8 << 20, MaxChanges: syncproto.DefaultMaxChanges, DefaultPull: 500, MaxPull: 5000}

// Timeouts bound how long the HTTP server waits on a connection; beyond
// them the connection is closed.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers.
	ReadHeader time.Duration
	// Read bounds reading a whole request, its body included.
	Read time.Duration
	// Write bounds writing a response; a snapshot and a streamed report
	// renew it at every write that makes progress, for as long as the
	// client keeps reading (rateBoundWriter).
	Write time.Duration
	// Idle bounds how long a kept-alive connection waits for its next
	// request.
	Idle time.Duration
}

// DefaultTimeouts are the timeouts the README documents.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 2 * time.Minute, Write: 10 * time.Minute, Idle: 2 * time.Minute}

// orDefault is t with each zero (or negative) timeout replaced by its
// DefaultTimeouts value.
func (t Timeouts) orDefault() Timeouts {
	d := DefaultTimeouts
	if t.ReadHeader > 0 {
		d.ReadHeader = t.ReadHeader
	}
	if t.Read > 0 {
		d.Read = t.Read
	}
	if t.Write > 0 {
		d.Write = t.Write
	}
	if t.Idle > 0 {
		d.Idle = t.Idle
	}
	return d
}

// DefaultSnapshotConcurrency is how many snapshots may stream at once.
const DefaultSnapshotConcurrency = 2

// Server is the fieldsync HTTP application over a store.
type Server struct {
	echo  *echo.Echo
	store syncproto.Store
	push  *syncproto.PushService // pushes and outbox replays
	// cursors is the push service's codec: every cursor the API hands out
	// or takes back (pull, checksum, history, lists, snapshots).
	cursors  *syncproto.CursorCodec
	accounts auth.Accounts
	keys     *auth.Keyring
	schema   *schema.Schema
	log      *slog.Logger
	metrics  *Metrics
	// metricsRoute serves /metrics on the API's listener (otherwise serve
	// answers it on a listener of its own, --metrics-addr).
	metricsRoute bool
	limits       Limits
	timeouts     Timeouts
	now          func() time.Time
	// snapshots holds a token for every snapshot being streamed: at most
	// its capacity at once.
	snapshots chan struct{}
	// snapshotsByUser bounds the snapshots of one user; snapshotMinRate
	// and snapshotRateGrace the pace a snapshot's client must read at
	// (snapshot_slots.go).
	snapshotsByUser   *userSnapshots
	snapshotMinRate   int64
	snapshotRateGrace time.Duration
	// reinspectAfter is how old a housing appraisal may get before the
	// household is due for re-inspection.
	reinspectAfter time.Duration
	// divisions is the operator's division register (Config.Divisions).
	divisions schema.Divisions

	loginFailsByUser, loginFailsByAddr, refreshByAddr, pushByDevice *auth.Limiter
	// hashGate bounds the password hashes in flight (handleToken).
	hashGate *auth.HashGate

	// pulls buffers the devices' pull positions (pull_positions.go).
	pulls *pullPositions

	// photos is the photo store (nil: the attachment endpoints answer 503).
	photos *attachments.Store

	// supervision makes the supervisors' decisions and reports reads the
	// coverage and re-inspection reports: both, like push, on Config.Schema
	// (and supervision on Config.Now).
	supervision *syncproto.SupervisionService
	reports     *syncproto.ReportService

	// console is the supervisors' web console (console.go), mounted at /
	// and /console/.
	console *console.Console
}

// Config is what New needs.
type Config struct {
	Store    syncproto.Store
	Accounts auth.Accounts
	Keys     *auth.Keyring
	// Schema is the one version of the forms served when Catalog is nil.
	Schema *schema.Schema
	// Catalog is every version of the forms (serve --forms): pushes in an
	// older version are migrated on arrival, pulls may ask for one, and
	// the latest is the schema of pushes, supervision, reports and
	// snapshots. schema.BuiltIn() when both are nil.
	Catalog *schema.Catalog
	Logger  *slog.Logger
	// Version is the binary's version, shown by the build-info metric of
	// the Metrics that New makes when Metrics is nil.
	Version string
	// Metrics receives the server's measurements; a new Metrics when nil.
	Metrics *Metrics
	// MetricsElsewhere leaves /metrics out of the API's routes (serve
	// --metrics-addr answers it on a listener of its own).
	MetricsElsewhere bool
	Limits           Limits
	Timeouts         Timeouts    // each zero field takes its DefaultTimeouts value
	Rates            *RateLimits // DefaultRateLimits when nil
	Now              func() time.Time
	// ReinspectAfter is how old a housing appraisal may get before its
	// household is due for re-inspection; DefaultReinspectAfter when 0.
	ReinspectAfter time.Duration
	// SnapshotConcurrency is how many snapshots may stream at once (503
	// beyond); DefaultSnapshotConcurrency when 0.
	SnapshotConcurrency int
	// SnapshotsPerUser is how many snapshots one user may stream at once
	// (429 beyond); DefaultSnapshotsPerUser when 0.
	SnapshotsPerUser int
	// SnapshotMinRate (bytes per second) and SnapshotRateGrace bound how
	// slowly the client of a snapshot or a streamed report may read: the
	// writes of the first B bytes may wait for it at most
	// SnapshotRateGrace + B/SnapshotMinRate in all, or the connection is
	// cut (rateBoundWriter). DefaultSnapshotMinRate and
	// DefaultSnapshotRateGrace when 0.
	SnapshotMinRate   int64
	SnapshotRateGrace time.Duration
	// Divisions names regions in the labelled CSV and XLSX snapshots
	// (schema.LoadDivisions); codes stay codes without it.
	Divisions schema.Divisions
	// Attachments is the photo store; without it the attachment endpoints
	// answer 503.
	Attachments *attachments.Store
	// HashGate bounds the password hashes in flight for the whole
	// process; auth.NewHashGate(0, 0, 0) when nil.
	HashGate *auth.HashGate
	// PullPositionsEvery is how long a pull position may wait in memory
	// before it is written; DefaultPullPositionsEvery when 0.
	PullPositionsEvery time.Duration
	// ConsoleIdle ends a web console session after this long without a
	// request; console.DefaultIdle when 0.
	ConsoleIdle time.Duration
	// MapTiles is an optional tile URL template ({z}/{x}/{y}) under the
	// console's map; MapTilesGCJ02 says the provider draws in GCJ-02.
	MapTiles      string
	MapTilesGCJ02 bool
}

// New builds the echo application with every route.
func New(cfg Config) *Server {
	if cfg.Catalog == nil && cfg.Schema == nil {
		cfg.Catalog = schema.BuiltIn()
	}
	if cfg.Catalog != nil {
		cfg.Schema = cfg.Catalog.Latest()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(cfg.Version)
		if p, ok := cfg.Store.(interface{ Path() string }); ok {
			_ = cfg.Metrics.WatchDatabase(p.Path())
		}
	}
	if cfg.Rates == nil {
		cfg.Rates = &DefaultRateLimits
	}
	if cfg.ReinspectAfter <= 0 {
		cfg.ReinspectAfter = DefaultReinspectAfter
	}
	if cfg.SnapshotConcurrency <= 0 {
		cfg.SnapshotConcurrency = DefaultSnapshotConcurrency
	}
	if cfg.SnapshotsPerUser <= 0 {
		cfg.SnapshotsPerUser = DefaultSnapshotsPerUser
	}
	if cfg.SnapshotMinRate <= 0 {
		cfg.SnapshotMinRate = DefaultSnapshotMinRate
	}
	if cfg.SnapshotRateGrace <= 0 {
		cfg.SnapshotRateGrace = DefaultSnapshotRateGrace
	}
	cfg.Timeouts = cfg.Timeouts.orDefault()
	s := &Server{store: cfg.Store, accounts: cfg.Accounts, keys: cfg.Keys, schema: cfg.Schema, log: cfg.Logger,
		metrics: cfg.Metrics, metricsRoute: !cfg.MetricsElsewhere, limits: cfg.Limits, timeouts: cfg.Timeouts, now: cfg.Now, reinspectAfter: cfg.ReinspectAfter,
		snapshots: make(chan struct{}, cfg.SnapshotConcurrency), loginFailsByUser: cfg.Rates.LoginPerUser.limiter(),
		loginFailsByAddr: cfg.Rates.LoginPerAddress.limiter(), refreshByAddr: cfg.Rates.RefreshPerAddress.limiter(),
		pushByDevice: cfg.Rates.PushPerDevice.limiter(), hashGate: cfg.HashGate,
		divisions: cfg.Divisions, push: syncproto.NewPushService(cfg.Store, syncproto.PushOptions{Schema: cfg.Schema, Catalog: cfg.Catalog, Now: cfg.Now}),
		supervision: syncproto.NewSupervisionService(cfg.Store, syncproto.SupervisionOptions{Schema: cfg.Schema, Now: cfg.Now}),
		reports:     syncproto.NewReportService(cfg.Store, syncproto.ReportOptions{Schema: cfg.Schema, Now: cfg.Now})}
	s.cursors = s.push.Cursors()
	if s.hashGate == nil {
		s.hashGate = auth.NewHashGate(0, 0, 0)
	}
	e := echo.New()
	// The client address is the TCP peer: forwarding headers are not
	// trusted unless a proxy is configured in front.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HideBanner, e.HidePort = true, true
	e.Debug = false
	e.HTTPErrorHandler = s.errorHandler
	// requestScope is outermost, so that the request id, the metrics and
	// the access log cover every answer, a recovered panic's 500 too.
	e.Use(s.requestScope)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.reqLog(c).Error("panic", "path", c.Request().URL.Path, "err", err, "stack", string(stack))
			return err
		},
	}))
	s.photos = cfg.Attachments
	s.snapshotsByUser = &userSnapshots{max: cfg.SnapshotsPerUser}
	s.snapshotMinRate, s.snapshotRateGrace = cfg.SnapshotMinRate, cfg.SnapshotRateGrace
	s.pulls = newPullPositions(cfg.Store, cfg.PullPositionsEvery, s.log.Warn)
	s.echo = e
	s.metrics.watchSnapshots(s.snapshots)
	s.metrics.initLabels(s.schema)
	s.console = s.newConsole(cfg)
	s.routes()
	return s
}

// FlushPullPositions writes the buffered pull positions of devices now,
// and every later one at once: call it at shutdown, before the store
// closes (Serve does).
func (s *Server) FlushPullPositions(ctx context.Context) error { return s.pulls.close(ctx) }

// ServeHTTP makes the Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Serve answers HTTP on ln, with the configured timeouts, until ctx is
// done, then shuts down gracefully: it stops accepting, closes idle
// connections and lets requests in flight finish (up to grace).
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.timeouts.ReadHeader,
		ReadTimeout:       s.timeouts.Read,
		WriteTimeout:      s.timeouts.Write,
		IdleTimeout:       s.timeouts.Idle,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing requests in flight", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	// The pull positions still buffered are written before the store
	// closes (a failure is logged by the buffer and loses bookkeeping only).
	_ = s.FlushPullPositions(context.Background())
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeJSON answers status with v as application/json.
func writeJSON(c echo.Context, status int, v any) error {
	jsonHeader(c, status)
	return jsonEncode(c.Response(), v)
}

// writeJSONBytes answers status with b, JSON already encoded.
func writeJSONBytes(c echo.Context, status int, b []byte) error {
	jsonHeader(c, status)
	_, err := c.Response().Write(b)
	return err
}

func jsonHeader(c echo.Context, status int) {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c.Response().WriteHeader(status)
}
