package client

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/fieldsync/fieldsync/schema"
)

// The versions of the forms (docs/protocol.md "Schema versions"). A device
// is on one version: the forms it fetched at Login (GET /v1/schema, or
// ?version=N with Options.SchemaVersion). It validates its edits against
// that version, seals them into change sets stamped with it
// (schema_version), and pulls in it (?schema_version=N). Upgrade moves it
// to the latest version the server serves: the edits queued before are
// sealed first and go as they were made, in the old version (the server
// migrates them on arrival); the edits after are in the new one.

// SchemaVersion returns the version of the forms this device is on: 0
// before a login.
func (c *Client) SchemaVersion(ctx context.Context) (int, error) {
	forms, err := c.formsOf(ctx)
	if err != nil || forms == nil {
		return 0, err
	}
	return forms.Version, nil
}

// sealVersion is the schema_version a change set sealed in tx is stamped
// with: the version the device is on, 1 (PROTOCOL.md's) for edits made
// before any login.
func sealVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	var v int
	err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT json_extract(value, '$.schema_version') FROM meta WHERE key = 'schema'), 1)`).Scan(&v)
	if err == nil && v < 1 {
		v = 1
	}
	return v, err
}

// fetchSchema gets version n of the forms from the server (n 0: the
// latest) and checks it.
func (c *Client) fetchSchema(ctx context.Context, n int) (json.RawMessage, error) {
	path := "/v1/schema"
	if n > 0 {
		path += "?version=" + strconv.Itoa(n)
	}
	var raw json.RawMessage
	if err := c.retry(ctx, func(ctx context.Context) error {
		return c.call(ctx, http.MethodGet, path, nil, &raw)
	}); err != nil {
		return nil, fmt.Errorf("client: fetching the schema: %w", err)
	}
	if _, err := parseSchema(raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// switchSchema puts the device on the forms raw (as GET /v1/schema
// serves them). When that is another version than the one it is on, in
// one local transaction: every edit of the outbox is sealed into change
// sets of the old version (they keep their fields and their version), and
// the pull cursor is reset, so that the next pull brings the whole scope
// in the new version. The documents of the versions between the old and
// the new are kept with both, for their migration steps (versionChain).
// It returns the number of edits sealed.
func (c *Client) switchSchema(ctx context.Context, raw json.RawMessage, between ...json.RawMessage) (int, error) {
	next, err := parseSchema(raw)
	if err != nil {
		return 0, err
	}
	c.versionMu.Lock()
	defer c.versionMu.Unlock()
	held, err := c.formsOf(ctx)
	if err != nil {
		return 0, err
	}
	sealed := 0
	err = c.tx(ctx, func(tx *sql.Tx) error {
		if held != nil && held.Version != next.Version {
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&sealed); err != nil {
				return err
			}
			for {
				set, err := c.seal(ctx, tx)
				if err != nil {
					return err
				}
				if set == nil {
					break
				}
			}
			if err := setMeta(ctx, tx, "cursor", ""); err != nil {
				return err
			}
		}
		keep := func(doc string, replace bool) error {
			q := `INSERT INTO schemas (version, doc) VALUES (json_extract(?1, '$.schema_version'), ?1) ON CONFLICT (version) DO NOTHING`
			if replace {
				q = `INSERT INTO schemas (version, doc) VALUES (json_extract(?1, '$.schema_version'), ?1)
					ON CONFLICT (version) DO UPDATE SET doc = excluded.doc`
			}
			_, err := tx.ExecContext(ctx, q, doc)
			return err
		}
		// The version the device was on (an older client kept it only in
		// meta): its edits in flight are read through it.
		prev, err := c.meta(ctx, tx, "schema")
		if err != nil {
			return err
		}
		if prev != "" {
			if err := keep(prev, false); err != nil {
				return err
			}
		}
		for _, doc := range append(between, raw) {
			if err := keep(string(doc), true); err != nil {
				return err
			}
		}
		return setMeta(ctx, tx, "schema", string(raw))
	})
	if err != nil {
		return 0, err
	}
	c.schemaMu.Lock()
	c.forms, c.versions = next, nil
	c.schemaMu.Unlock()
	return sealed, nil
}

// Upgraded is what Upgrade did.
type Upgraded struct {
	From, To int // the versions before and after (equal: it was on the latest)
	// Sealed counts the edits that were queued in From: they were sealed
	// into change sets of From and are pushed so by the next sync.
	Sealed int
	Pulled int // records pulled again, in To
}

// Upgrade moves this device to the latest version of the forms the server
// serves (GET /v1/schema): what it queued before stays in its version
// (sealed, pushed as it was made, migrated by the server on arrival), new
// edits are validated against and sent in the new version, and the scope
// is pulled again in it. On the latest already, it changes nothing. It
// needs the network; a pull cut short is completed by the next Sync.
func (c *Client) Upgrade(ctx context.Context) (Upgraded, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	var up Upgraded
	var err error
	if up.From, err = c.SchemaVersion(ctx); err != nil {
		return up, err
	}
	if _, err := c.server(ctx); err != nil {
		return up, err
	}
	raw, err := c.fetchSchema(ctx, 0)
	if err != nil {
		return up, err
	}
	var head struct {
		Version int `json:"schema_version"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return up, err
	}
	up.To = head.Version
	if up.To == up.From {
		return up, nil
	}
	// The versions in between, for their migration steps.
	var between []json.RawMessage
	for n := up.From + 1; up.From > 0 && n < up.To; n++ {
		doc, err := c.fetchSchema(ctx, n)
		if err != nil {
			return up, err
		}
		between = append(between, doc)
	}
	if up.Sealed, err = c.switchSchema(ctx, raw, between...); err != nil {
		return up, err
	}
	var rep Report
	err = c.pull(ctx, &rep, true)
	up.Pulled = rep.Pulled
	return up, err
}

// versionChain reads an edit made in an older version of the forms in the
// version the device is on, by the migration steps of every version in
// between (schema.Migration.Up, the server's own code): so that edits
// sealed before an Upgrade are shown, and rules judged, in the fields of
// the new version.
type versionChain struct {
	current int
	ups     map[int]*schema.Migration // ups[k] migrates version k-1 to k
}

// up converts the fields of a change of entity made in version from; it
// returns them as they are when they are in the current version already,
// or when the device lacks a step (a version fetched by an older client)
// or a step does not apply: what the server would quarantine stays shown
// as it was sent.
func (vc *versionChain) up(from int, entity string, fields map[string]json.RawMessage, created bool) map[string]json.RawMessage {
	if vc == nil || from <= 0 || from >= vc.current || len(fields) == 0 {
		return fields
	}
	out := fields
	for k := from + 1; k <= vc.current; k++ {
		m := vc.ups[k]
		if m == nil {
			return fields
		}
		next, _, err := m.Up(entity, out, created)
		if err != nil {
			return fields
		}
		out = next
	}
	return out
}

// chain returns the versionChain of the versions this device fetched
// (kept in the schemas table), built once per version switch.
func (c *Client) chain(ctx context.Context) (*versionChain, error) {
	current, err := c.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	c.schemaMu.Lock()
	defer c.schemaMu.Unlock()
	if c.versions != nil && c.versions.current == current {
		return c.versions, nil
	}
	rows, err := c.db.QueryContext(ctx, `SELECT version, doc FROM schemas WHERE version <= ? ORDER BY version`, current)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	vc := &versionChain{current: current, ups: map[int]*schema.Migration{}}
	var prev *schema.Schema
	for rows.Next() {
		var n int
		var doc string
		if err := rows.Scan(&n, &doc); err != nil {
			return nil, err
		}
		s, err := parseSchema([]byte(doc))
		if err != nil {
			return nil, err
		}
		var steps struct {
			Migrations json.RawMessage `json:"migrations"`
		}
		if err := json.Unmarshal([]byte(doc), &steps); err != nil {
			return nil, err
		}
		if prev != nil && prev.Version == n-1 && len(steps.Migrations) > 0 {
			if m, err := schema.CompileMigration(prev, s, steps.Migrations); err == nil {
				vc.ups[n] = m
			}
		}
		prev = s
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	c.versions = vc
	return vc, nil
}
