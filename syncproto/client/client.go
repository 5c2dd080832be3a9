// Package client is fieldsync's offline sync client: what a tablet app (in
// Go, or through gomobile) embeds to keep its copy of the records in its
// scope and to never lose an edit made offline.
//
// The client keeps everything in one local SQLite database: the server's
// records as last pulled, the outbox of local edits (written durably before
// Update returns, coalesced per record until pushed), the change set in
// flight (sent with the same id and body until the server acknowledges it),
// the pull cursor, the device's sequence, its tokens, and the conflicts and
// refusals the server reported. Sync pushes the outbox in device_seq order,
// one change set at a time, retrying on network errors, timeouts, 429 and
// 5xx with backoff and jitter; then pulls until has_more is false; then
// checks its copy against the server's checksum and, on a mismatch, re-pulls
// its scope. What the app reads (Get, List) is the server's record with the
// pending edits laid over it, so a pull never hides an edit not yet pushed.
package client

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Options configure a Client. The zero value of every field has a default.
type Options struct {
	// Server is the base URL of the fieldsync server, e.g.
	// "http://127.0.0.1:8080". When empty, the URL given at Login (kept in
	// the database) is used.
	Server string
	// HTTP is the client requests go through (tests give it a faulty
	// transport). Default: a client with the default transport.
	HTTP *http.Client
	// Now is the device's clock. Default time.Now.
	Now func() time.Time
	// BatchSize is the number of changes per change set (at most 1000,
	// the server's limit). Default 200.
	BatchSize int
	// PullLimit is the page size of pulls (1–5000). Default 500.
	PullLimit int
	// RequestTimeout bounds one attempt of one request. Default 30 s.
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries: full
	// jitter over an exponential, at least what Retry-After asks.
	// Defaults 250 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// PhotoDir is where AddPhoto keeps photos until they are uploaded
	// (and after). Default: "photos" beside the database.
	PhotoDir string
	// PhotoChunk is the size of one upload request of a photo: a broken
	// upload resumes from the last chunk the server holds. Default 256 KiB.
	PhotoChunk int
	// SchemaVersion is the version of the forms Login puts this device on
	// (GET /v1/schema?version=N): an app built for version N keeps
	// speaking N until it calls Upgrade. Zero: the version the device is
	// on already, or, at its first login, the latest the server serves.
	SchemaVersion int
}

func (o *Options) defaults() {
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BatchSize <= 0 || o.BatchSize > 1000 {
		o.BatchSize = 200
	}
	if o.PullLimit <= 0 || o.PullLimit > 5000 {
		o.PullLimit = 500
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = 30 * time.Second
	}
	if o.PhotoChunk <= 0 {
		o.PhotoChunk = 256 << 10
	}
}

// Client is one device's sync client. Its methods are safe for concurrent
// use; Sync runs one at a time.
type Client struct {
	db     *sql.DB
	opts   Options
	device string
	syncMu sync.Mutex

	schemaMu sync.Mutex
	forms    *schema.Schema // parsed from the schema the device is on
	versions *versionChain  // the migrations up to it, built on first use

	// versionMu orders edits and a switch of the forms' version: an edit
	// is validated and queued under one version (read lock), and a
	// switch seals the outbox under the old version before it stores the
	// new one (write lock).
	versionMu sync.RWMutex
}

// Errors the app should tell its user about.
var (
	// ErrLoginRequired: there are no tokens, or the session ended (expired
	// after 30 days without a sync, password changed, a refresh token
	// reused, the user disabled and enabled again: disabling ends every
	// session for good). Pending edits are kept; log in and sync again.
	ErrLoginRequired = errors.New("client: not logged in, or the session ended: log in")
	// ErrDeviceRevoked: a supervisor revoked this tablet. Pending edits
	// are kept in the local database, but this device can no longer sync.
	ErrDeviceRevoked = errors.New("client: this device was revoked; ask a supervisor")
	// ErrAccountDisabled: an admin disabled this user. Logging in again
	// does not help until they enable the account; then a login is needed
	// (the old session stays ended). Pending edits are kept.
	ErrAccountDisabled = errors.New("client: this account is disabled; ask an admin to enable it, then log in")
	// ErrNotAPhoto: AddPhoto was given bytes that are no photo the server
	// takes; nothing was kept.
	ErrNotAPhoto = errors.New("client: not a photo the server takes (" + syncproto.PhotoTypes + "); nothing was kept")
	// ErrNotFound: no such record in the local copy.
	ErrNotFound = errors.New("client: no such record")
)

// Problem is an RFC 9457 error answered by the server.
type Problem struct {
	Type          string                 `json:"type"`
	Title         string                 `json:"title"`
	Status        int                    `json:"status"`
	Detail        string                 `json:"detail"`
	Errors        []syncproto.FieldError `json:"errors"`
	LastDeviceSeq *int64                 `json:"last_device_seq"`
	UploadOffset  *int64                 `json:"upload_offset"`
	RetryAfter    time.Duration          `json:"-"`
}

func (p *Problem) Error() string {
	msg := fmt.Sprintf("server: %d %s: %s", p.Status, p.Title, p.Detail)
	if len(p.Errors) > 0 {
		msg += fmt.Sprintf(" (%s: %s)", p.Errors[0].Path, p.Errors[0].Message)
	}
	return msg
}

// Open opens (creating it if needed) the client database at path.
func Open(path string, opts Options) (*Client, error) {
	opts.defaults()
	if opts.PhotoDir == "" {
		opts.PhotoDir = filepath.Join(filepath.Dir(path), "photos")
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("client: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	c := &Client{db: db, opts: opts}
	if err := c.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("client: open %s: %w", path, err)
	}
	return c, nil
}

// Close closes the database.
func (c *Client) Close() error { return c.db.Close() }

// DeviceID is this device's id, made at the first Open.
func (c *Client) DeviceID() string { return c.device }

const localSchema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- The server's records as last pulled (tombstones included).
CREATE TABLE IF NOT EXISTS records (
	id TEXT PRIMARY KEY, entity TEXT NOT NULL, version INTEGER NOT NULL, fields TEXT NOT NULL,
	deleted INTEGER NOT NULL, merged_into TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
	gen INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS records_entity ON records (entity, id);
-- Local edits not yet in a change set, one row per record (coalesced);
-- pos orders them by their first edit.
CREATE TABLE IF NOT EXISTS outbox (
	record_id TEXT PRIMARY KEY, entity TEXT NOT NULL, op TEXT NOT NULL, base_version INTEGER NOT NULL,
	fields TEXT NOT NULL, at TEXT NOT NULL, pos INTEGER NOT NULL);
-- The change sets sealed for pushing, each with its exact body, sent again
-- on every retry: the one of the lowest device_seq is being pushed; an
-- exported outbox seals every pending edit (ExportOutbox).
CREATE TABLE IF NOT EXISTS inflight (
	changeset_id TEXT PRIMARY KEY, device_seq INTEGER NOT NULL, body TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);
-- Acknowledged changes not yet seen in a pull: still laid over the
-- server's copy, until a pull brings the record at that version.
CREATE TABLE IF NOT EXISTS acked (
	record_id TEXT PRIMARY KEY, entity TEXT NOT NULL, op TEXT NOT NULL, version INTEGER NOT NULL, fields TEXT NOT NULL);
-- Concurrent-edit decisions the server reported for this device's changes.
CREATE TABLE IF NOT EXISTS conflicts (
	conflict_id TEXT PRIMARY KEY, changeset_id TEXT NOT NULL, entity TEXT NOT NULL, record_id TEXT NOT NULL,
	field TEXT NOT NULL, policy TEXT NOT NULL, state TEXT NOT NULL, kept TEXT NOT NULL, incoming TEXT NOT NULL,
	stored TEXT NOT NULL, reported_at TEXT NOT NULL);
-- Changes the server did not apply: a change it rejected (quarantined) or
-- a whole change set it refused; the raw change is kept.
CREATE TABLE IF NOT EXISTS refused (
	n INTEGER PRIMARY KEY AUTOINCREMENT, changeset_id TEXT NOT NULL, entity TEXT NOT NULL, record_id TEXT NOT NULL,
	reason TEXT NOT NULL, change TEXT NOT NULL, reported_at TEXT NOT NULL);
-- Photos taken on this device (the bytes are in Options.PhotoDir, named by
-- their SHA-256): pending until the server holds them whole; waiting when
-- their change was pushed without them (the server put them off).
CREATE TABLE IF NOT EXISTS photos (
	hash TEXT PRIMARY KEY, size INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', added_at TEXT NOT NULL);
-- Every version of the forms this device was on or passed through, as
-- GET /v1/schema?version= served it (with its migration steps): its edits
-- sealed in an older version are read in the current one through them.
CREATE TABLE IF NOT EXISTS schemas (version INTEGER PRIMARY KEY, doc TEXT NOT NULL);
`

// localColumns are the columns added to the local tables after their
// first release: a database made by an older client gains them at Open.
var localColumns = []struct{ table, column, decl string }{
	// The flags of a pulled record, as a JSON array ('' for none): a
	// record down-converted to this device's version that the version
	// cannot hold whole (syncproto.FlagNotExpressible).
	{"records", "flags", "TEXT NOT NULL DEFAULT ''"},
	// The schema version an acknowledged change's fields are in (an older
	// client spoke only version 1).
	{"acked", "schema_version", "INTEGER NOT NULL DEFAULT 1"},
}

func (c *Client) init() error {
	if _, err := c.db.Exec(localSchema); err != nil {
		return err
	}
	for _, col := range localColumns {
		var n int
		if err := c.db.QueryRow(`SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, col.table, col.column).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := c.db.Exec(`ALTER TABLE ` + col.table + ` ADD COLUMN ` + col.column + ` ` + col.decl); err != nil {
				return err
			}
		}
	}
	dev, err := c.meta(context.Background(), c.db, "device_id")
	if err != nil {
		return err
	}
	if dev == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		dev = id.String()
		if err := setMeta(context.Background(), c.db, "device_id", dev); err != nil {
			return err
		}
	}
	c.device = dev
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryStrings returns the single text column of every row of query.
func queryStrings(ctx context.Context, q execer, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (c *Client) meta(ctx context.Context, q execer, key string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func (c *Client) metaInt(ctx context.Context, q execer, key string) (int64, error) {
	v, err := c.meta(ctx, q, key)
	if err != nil || v == "" {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

func setMeta(ctx context.Context, q execer, key, value string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

// tx runs fn in one local write transaction.
func (c *Client) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// server is the base URL requests go to.
func (c *Client) server(ctx context.Context) (string, error) {
	if c.opts.Server != "" {
		return strings.TrimRight(c.opts.Server, "/"), nil
	}
	s, err := c.meta(ctx, c.db, "server")
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", ErrLoginRequired
	}
	return s, nil
}

// Login signs user in on this device and keeps the tokens, so that later
// syncs (even after weeks offline, within the refresh token's 30 days) need
// no password. It also fetches the form definitions (Schema) of the
// device's version: Options.SchemaVersion when set, else the version the
// device is on, else the latest the server serves. Moving to the latest
// later is Upgrade.
func (c *Client) Login(ctx context.Context, server, user, password string) error {
	if server == "" {
		server = c.opts.Server
	}
	server = strings.TrimRight(server, "/")
	if server == "" {
		return errors.New("client: login needs the server's URL")
	}
	body, _ := json.Marshal(map[string]string{"username": user, "password": password, "device_id": c.device})
	var tok tokenPair
	if err := c.retry(ctx, func(ctx context.Context) error {
		return c.send(ctx, server, http.MethodPost, "/v1/auth/token", "", body, &tok)
	}); err != nil {
		var p *Problem
		if errors.As(err, &p) && p.Type == problemAccountDisabled {
			return ErrAccountDisabled
		}
		return err
	}
	err := c.tx(ctx, func(tx *sql.Tx) error {
		for k, v := range map[string]string{"server": server, "user": user, "access_token": tok.AccessToken,
			"refresh_token": tok.RefreshToken} {
			if err := setMeta(ctx, tx, k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The version: the one configured, else the one the device is on (a
	// login again does not move it), else the latest.
	want := c.opts.SchemaVersion
	if want <= 0 {
		held, err := c.formsOf(ctx)
		if err != nil {
			return err
		}
		if held != nil {
			want = held.Version
		}
	}
	raw, err := c.fetchSchema(ctx, want)
	if err != nil {
		return err
	}
	_, err = c.switchSchema(ctx, raw)
	return err
}

func parseSchema(raw []byte) (*schema.Schema, error) {
	s, err := schema.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("client: the server's schema: %w", err)
	}
	return s, nil
}

// formsOf returns the form definitions of the version the device is on,
// or nil before a login.
func (c *Client) formsOf(ctx context.Context) (*schema.Schema, error) {
	c.schemaMu.Lock()
	defer c.schemaMu.Unlock()
	if c.forms != nil {
		return c.forms, nil
	}
	raw, err := c.meta(ctx, c.db, "schema")
	if err != nil || raw == "" {
		return nil, err
	}
	if c.forms, err = parseSchema([]byte(raw)); err != nil {
		return nil, err
	}
	return c.forms, nil
}

// Schema returns the form definitions of the version the device is on,
// as GET /v1/schema served them at login or Upgrade.
func (c *Client) Schema(ctx context.Context) (json.RawMessage, error) {
	s, err := c.meta(ctx, c.db, "schema")
	if err != nil || s == "" {
		return nil, err
	}
	return json.RawMessage(s), nil
}

// Status is what the device knows about its sync state.
type Status struct {
	Server        string
	User          string
	DeviceID      string
	DeviceSeq     int64     // last device_seq used
	Pending       int       // local edits not yet acknowledged (outbox and in flight)
	InFlight      string    // id of the change set being pushed (the first sealed), if any
	Cursor        string    // pull cursor
	Records       int       // records held (tombstones included)
	LastSync      time.Time // end of the last complete sync (device clock)
	LastVerified  time.Time // last time the copy matched the server's checksum
	OpenConflicts int       // conflicts reported open (awaiting a supervisor)
	Conflicts     int       // all decisions reported
	Refused       int       // changes the server did not apply
	PhotosPending int       // photos not yet held by the server (waiting ones included)
	PhotosWaiting int       // of those, photos whose changes were pushed without them (see Report.PhotosWaiting)
	LoggedIn      bool
	SchemaVersion int // the version of the forms this device edits and pulls in (0 before a login)
}

// Status reports the local sync state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	st := Status{DeviceID: c.device}
	var err error
	get := func(key string) string {
		v, e := c.meta(ctx, c.db, key)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	st.Server, st.User, st.Cursor = get("server"), get("user"), get("cursor")
	st.LoggedIn = get("refresh_token") != ""
	st.DeviceSeq, _ = strconv.ParseInt(get("device_seq"), 10, 64)
	st.LastSync, _ = time.Parse(time.RFC3339Nano, get("last_sync"))
	st.LastVerified, _ = time.Parse(time.RFC3339Nano, get("last_verified"))
	if err != nil {
		return st, err
	}
	if st.SchemaVersion, err = c.SchemaVersion(ctx); err != nil {
		return st, err
	}
	var inflight int
	err = c.db.QueryRowContext(ctx, `SELECT COALESCE((SELECT changeset_id FROM inflight ORDER BY device_seq LIMIT 1), ''),
		COALESCE(SUM(json_array_length(body, '$.changes')), 0) FROM inflight`).Scan(&st.InFlight, &inflight)
	if err != nil {
		return st, err
	}
	st.Pending += inflight
	var outbox int
	err = c.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM outbox), (SELECT COUNT(*) FROM records),
		(SELECT COUNT(*) FROM conflicts WHERE state = 'open'), (SELECT COUNT(*) FROM conflicts),
		(SELECT COUNT(*) FROM refused), (SELECT COUNT(*) FROM photos WHERE state IN ('pending', 'waiting')),
		(SELECT COUNT(*) FROM photos WHERE state = 'waiting')`).
		Scan(&outbox, &st.Records, &st.OpenConflicts, &st.Conflicts, &st.Refused, &st.PhotosPending, &st.PhotosWaiting)
	st.Pending += outbox
	return st, err
}
