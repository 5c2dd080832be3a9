package client

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Record is a record as the app sees it: the server's copy with this
// device's pending edits laid over it.
type Record struct {
	Entity     string
	ID         string
	Version    int64 // the server's version last pulled (0: not yet pulled)
	Fields     map[string]json.RawMessage
	Deleted    bool
	MergedInto string
	UpdatedAt  string
	UpdatedBy  string
	// Flags are the server's marks on the record as pulled: "not_expressible"
	// (syncproto.FlagNotExpressible) when the device's schema version
	// cannot hold it whole (a field or a form of a newer version, left out).
	Flags []string
	// Pending: local edits of this record are not yet acknowledged and
	// pulled back.
	Pending bool
}

// Fields are the values of an edit: anything that marshals to JSON (a
// json.RawMessage is taken as it is; nil clears the field).
type Fields map[string]any

func marshalFields(f Fields) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(f))
	for k, v := range f {
		if raw, ok := v.(json.RawMessage); ok {
			if !json.Valid(raw) {
				return nil, fmt.Errorf("client: field %s: not JSON", k)
			}
			out[k] = raw
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("client: field %s: %w", k, err)
		}
		out[k] = b
	}
	return out, nil
}

// nextAt is the hybrid logical clock: the device's clock, but never
// earlier than (or equal to) the last time it issued or saw, so that the
// device's own edits are ordered even when its clock steps back.
func (c *Client) nextAt(ctx context.Context, tx *sql.Tx) (time.Time, error) {
	last, err := c.metaInt(ctx, tx, "hlc")
	if err != nil {
		return time.Time{}, err
	}
	t := c.opts.Now().UnixMilli()
	if t <= last {
		t = last + 1
	}
	if err := setMeta(ctx, tx, "hlc", fmt.Sprint(t)); err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(t).UTC(), nil
}

// observe advances the clock past a time seen in a pull.
func (c *Client) observe(ctx context.Context, tx *sql.Tx, at string) error {
	t, err := syncproto.ParseTime(at)
	if err != nil {
		return nil // not a time we can use; the clock stays
	}
	last, err := c.metaInt(ctx, tx, "hlc")
	if err != nil {
		return err
	}
	if ms := t.UnixMilli(); ms > last {
		return setMeta(ctx, tx, "hlc", fmt.Sprint(ms))
	}
	return nil
}

// Create records a new record of the entity and returns its id (a UUIDv7).
// Like every edit, it is in the outbox, on disk, when Create returns.
func (c *Client) Create(ctx context.Context, entity string, fields Fields) (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	return id.String(), c.edit(ctx, entity, id.String(), "create", fields)
}

// Update sets fields of a record this device holds (pulled, or created
// here and not yet pushed). Edits of one record coalesce until pushed.
func (c *Client) Update(ctx context.Context, entity, id string, fields Fields) error {
	return c.edit(ctx, entity, id, "upsert", fields)
}

// Delete deletes a record. A record created here and never pushed is
// simply dropped from the outbox.
func (c *Client) Delete(ctx context.Context, entity, id string) error {
	return c.edit(ctx, entity, id, "delete", nil)
}

type outboxRow struct {
	entity, op string
	base       int64
	fields     map[string]json.RawMessage
	exists     bool
}

// ValidationError is an edit refused on the device, before it reaches the
// outbox: the values break the form of the version the device is on
// (GET /v1/schema), a field's validation or a requirement rule — the
// verdict the server would give, by the same code (package schema). An
// error of a rule names it in Rule.
type ValidationError struct {
	Entity string
	Errors []syncproto.FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Path + ": " + fe.Message
		if fe.Rule != "" {
			parts[i] += " (rule " + fe.Rule + ")"
		}
	}
	return fmt.Sprintf("client: invalid %s: %s", e.Entity, strings.Join(parts, "; "))
}

// validate checks an edit of record id against the forms the device is on
// (nothing before a login: the server checks every change anyway): the
// fields' values, a new record's required fields, and then, as the push
// does, the form's requirement rules on the record as the edit leaves it.
func (c *Client) validate(ctx context.Context, entity, id, op string, fields map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	forms, err := c.formsOf(ctx)
	if err != nil || forms == nil {
		return fields, err
	}
	form := forms.Form(entity)
	if form == nil {
		return nil, fmt.Errorf("client: unknown entity %q (%s)", entity, strings.Join(forms.Entities(), ", "))
	}
	if op == "delete" {
		return fields, nil
	}
	norm, errs := form.ValidateAt(fields, c.opts.Now())
	if op == "create" {
		// Required fields, and those the region's rules require: the
		// region is the record's own (a household's village) or its
		// parent's, when the device holds the parent.
		region := ""
		if form.ScopeField != "" {
			_ = json.Unmarshal(norm[form.ScopeField], &region)
		} else if form.Parent != nil {
			var parent string
			if json.Unmarshal(norm[form.Parent.Field], &parent) == nil && parent != "" {
				if p, err := c.Get(ctx, parent); err == nil {
					if pf := forms.Form(p.Entity); pf != nil && pf.ScopeField != "" {
						_ = json.Unmarshal(p.Fields[pf.ScopeField], &region)
					}
				}
			}
		}
		errs = syncproto.AddMissing(errs, form.CheckCreate(norm, region))
	}
	if len(errs) == 0 && len(form.Rules) > 0 {
		if errs, err = c.checkRules(ctx, form, id, op == "create", norm); err != nil {
			return nil, err
		}
	}
	if len(errs) > 0 {
		return nil, &ValidationError{Entity: entity, Errors: errs}
	}
	return norm, nil
}

func (c *Client) edit(ctx context.Context, entity, id, op string, f Fields) error {
	fields, err := marshalFields(f)
	if err != nil {
		return err
	}
	if _, err := uuid.Parse(id); err != nil {
		return fmt.Errorf("client: record id %q is not a UUID", id)
	}
	// Validated and queued in one version of the forms (Upgrade waits).
	c.versionMu.RLock()
	defer c.versionMu.RUnlock()
	if fields, err = c.validate(ctx, entity, id, op, fields); err != nil {
		return err
	}
	return c.tx(ctx, func(tx *sql.Tx) error {
		var row outboxRow
		var rawFields string
		err := tx.QueryRowContext(ctx, `SELECT entity, op, base_version, fields FROM outbox WHERE record_id = ?`, id).
			Scan(&row.entity, &row.op, &row.base, &rawFields)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			row.exists = true
			if err := json.Unmarshal([]byte(rawFields), &row.fields); err != nil {
				return err
			}
		}
		if row.exists && row.entity != entity {
			return fmt.Errorf("client: record %s is a %s, not a %s", id, row.entity, entity)
		}
		// What the device knows of the record: its server copy, or an
		// acknowledged or in-flight change of it.
		var serverEntity string
		var serverVersion int64
		err = tx.QueryRowContext(ctx, `SELECT entity, version FROM records WHERE id = ?`, id).
			Scan(&serverEntity, &serverVersion)
		known := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if known && serverEntity != entity {
			return fmt.Errorf("client: record %s is a %s, not a %s", id, serverEntity, entity)
		}
		var sent int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM acked WHERE record_id = ?`, id).Scan(&sent); err != nil {
			return err
		}
		if sent == 0 {
			sent, err = c.inflightHas(ctx, tx, id)
			if err != nil {
				return err
			}
		}
		if !known && !row.exists && sent == 0 && op != "create" {
			// A record the server refused to create: the edit fixes it,
			// and the refused change goes out again with the fix.
			var raw string
			err := tx.QueryRowContext(ctx, `SELECT change FROM refused WHERE record_id = ? ORDER BY n DESC LIMIT 1`, id).Scan(&raw)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if raw != "" {
				var ch syncproto.Change
				if err := json.Unmarshal([]byte(raw), &ch); err != nil {
					return err
				}
				if ch.Entity != entity {
					return fmt.Errorf("client: record %s is a %s, not a %s", id, ch.Entity, entity)
				}
				row = outboxRow{entity: ch.Entity, op: ch.Op, base: ch.BaseVersion, fields: ch.Fields, exists: true}
				if row.fields == nil {
					row.fields = map[string]json.RawMessage{}
				}
			}
		}
		// A new edit of a record supersedes its refusals: the user acted.
		if _, err := tx.ExecContext(ctx, `DELETE FROM refused WHERE record_id = ?`, id); err != nil {
			return err
		}
		switch op {
		case "create":
			if known || row.exists || sent > 0 {
				return fmt.Errorf("client: record %s exists", id)
			}
			op = "upsert"
		case "upsert", "delete":
			if !known && !row.exists && sent == 0 {
				return fmt.Errorf("%w: %s", ErrNotFound, id)
			}
			if row.exists && row.op == "delete" {
				return fmt.Errorf("client: record %s was deleted on this device", id)
			}
		}
		at, err := c.nextAt(ctx, tx)
		if err != nil {
			return err
		}
		if op == "delete" && row.exists && !known && sent == 0 {
			// Created here, never sent: the server need not hear of it.
			_, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE record_id = ?`, id)
			return err
		}
		if !row.exists {
			// The base is the version last pulled: what the device saw
			// when it made the edit (0 for a record it has not pulled).
			row = outboxRow{entity: entity, op: op, base: serverVersion, fields: map[string]json.RawMessage{}}
		}
		if op == "delete" {
			row.op, row.fields = "delete", map[string]json.RawMessage{}
		} else {
			for k, v := range fields {
				row.fields[k] = v
			}
		}
		b, err := json.Marshal(row.fields)
		if err != nil {
			return err
		}
		// pos keeps the order of first edits (a household before the
		// inspection that references it).
		_, err = tx.ExecContext(ctx, `INSERT INTO outbox (record_id, entity, op, base_version, fields, at, pos)
			VALUES (?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(pos), 0) + 1 FROM outbox))
			ON CONFLICT (record_id) DO UPDATE SET op = excluded.op, fields = excluded.fields, at = excluded.at`,
			id, entity, row.op, row.base, string(b), syncproto.FormatTime(at))
		return err
	})
}

// inflightHas reports (as a count: 0 for none) whether a change set in
// flight holds a change of the record, without decoding the set in Go.
func (c *Client) inflightHas(ctx context.Context, q execer, id string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM inflight, json_each(inflight.body, '$.changes') AS ch
		WHERE json_extract(ch.value, '$.id') = ?`, id).Scan(&n)
	return n, err
}

// sealedSets returns the change sets in flight, in device_seq order: each
// body as it is sent, and decoded.
func sealedSets(ctx context.Context, q execer) ([]string, []syncproto.Changeset, error) {
	bodies, err := queryStrings(ctx, q, `SELECT body FROM inflight ORDER BY device_seq`)
	if err != nil {
		return nil, nil, err
	}
	sets := make([]syncproto.Changeset, len(bodies))
	for i, body := range bodies {
		if err := json.Unmarshal([]byte(body), &sets[i]); err != nil {
			return nil, nil, err
		}
	}
	return bodies, sets, nil
}

// overlay is every pending edit, by record id, in the order they lay over
// the server's copy: acknowledged, in flight, in the outbox.
type overlay map[string][]syncproto.Change

func (c *Client) overlays(ctx context.Context, q execer, id string) (overlay, error) {
	vc, err := c.chain(ctx)
	if err != nil {
		return nil, err
	}
	out := overlay{}
	filter, args := "", []any{}
	if id != "" {
		filter, args = " WHERE record_id = ?", []any{id}
	}
	rows, err := q.QueryContext(ctx, `SELECT record_id, entity, op, fields, schema_version FROM acked`+filter, args...)
	if err := scanChanges(rows, err, out, vc); err != nil {
		return nil, err
	}
	_, sets, err := sealedSets(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, cs := range sets {
		for _, ch := range cs.Changes {
			if id == "" || ch.ID == id {
				// Sealed before an Upgrade: read in the current version.
				ch.Fields = vc.up(cs.SchemaVersion, ch.Entity, ch.Fields, ch.BaseVersion == 0)
				out[ch.ID] = append(out[ch.ID], ch)
			}
		}
	}
	rows, err = q.QueryContext(ctx, `SELECT record_id, entity, op, fields, 0 FROM outbox`+filter+` ORDER BY pos`, args...)
	if err := scanChanges(rows, err, out, vc); err != nil {
		return nil, err
	}
	return out, nil
}

// scanChanges adds the rows (record_id, entity, op, fields, the schema
// version the fields are in: 0 for the current one) to out, read in the
// current version.
func scanChanges(rows *sql.Rows, err error, out overlay, vc *versionChain) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ch syncproto.Change
		var fields string
		var version int
		if err := rows.Scan(&ch.ID, &ch.Entity, &ch.Op, &fields, &version); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(fields), &ch.Fields); err != nil {
			return err
		}
		ch.Fields = vc.up(version, ch.Entity, ch.Fields, false)
		out[ch.ID] = append(out[ch.ID], ch)
	}
	return rows.Err()
}

func (o overlay) apply(r *Record) {
	for _, ch := range o[r.ID] {
		if r.Entity == "" {
			r.Entity = ch.Entity
		}
		r.Pending = true
		if ch.Op == "delete" {
			r.Deleted = true
			continue
		}
		if r.Fields == nil {
			r.Fields = map[string]json.RawMessage{}
		}
		for k, v := range ch.Fields {
			r.Fields[k] = v
		}
	}
}

const recordColumns = `id, entity, version, fields, deleted, merged_into, updated_at, updated_by, flags`

func scanLocal(row interface{ Scan(...any) error }) (Record, error) {
	var r Record
	var fields, flags string
	if err := row.Scan(&r.ID, &r.Entity, &r.Version, &fields, &r.Deleted, &r.MergedInto, &r.UpdatedAt, &r.UpdatedBy, &flags); err != nil {
		return r, err
	}
	if flags != "" {
		if err := json.Unmarshal([]byte(flags), &r.Flags); err != nil {
			return r, err
		}
	}
	return r, json.Unmarshal([]byte(fields), &r.Fields)
}

// Get returns a record as the app sees it, or ErrNotFound.
func (c *Client) Get(ctx context.Context, id string) (Record, error) {
	r, err := scanLocal(c.db.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM records WHERE id = ?`, id))
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return r, err
	}
	o, oerr := c.overlays(ctx, c.db, id)
	if oerr != nil {
		return r, oerr
	}
	if errors.Is(err, sql.ErrNoRows) {
		if len(o[id]) == 0 {
			return r, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		r = Record{ID: id}
	}
	o.apply(&r)
	return r, nil
}

// List returns the records of an entity (every entity when empty), with
// pending edits laid over them, tombstones included, ordered by id.
func (c *Client) List(ctx context.Context, entity string) ([]Record, error) {
	o, err := c.overlays(ctx, c.db, "")
	if err != nil {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, `SELECT `+recordColumns+` FROM records WHERE ? = '' OR entity = ? ORDER BY id`, entity, entity)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	seen := map[string]bool{}
	for rows.Next() {
		r, err := scanLocal(rows)
		if err != nil {
			return nil, err
		}
		o.apply(&r)
		seen[r.ID] = true
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for id, changes := range o {
		if seen[id] || (entity != "" && changes[0].Entity != entity) {
			continue
		}
		r := Record{ID: id}
		o.apply(&r)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Conflict is a concurrent-edit decision the server reported for one of
// this device's changes.
type Conflict struct {
	ConflictID  string
	ChangesetID string
	Entity      string
	RecordID    string
	Field       string
	Policy      string
	State       string // open (a supervisor decides), auto_resolved
	Kept        json.RawMessage
	Incoming    json.RawMessage
	Stored      json.RawMessage
	ReportedAt  string
}

// Conflicts lists the decisions reported to this device, oldest first.
func (c *Client) Conflicts(ctx context.Context) ([]Conflict, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT conflict_id, changeset_id, entity, record_id, field, policy, state,
		kept, incoming, stored, reported_at FROM conflicts ORDER BY reported_at, conflict_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Conflict
	for rows.Next() {
		var cf Conflict
		var kept, incoming, stored string
		if err := rows.Scan(&cf.ConflictID, &cf.ChangesetID, &cf.Entity, &cf.RecordID, &cf.Field, &cf.Policy,
			&cf.State, &kept, &incoming, &stored, &cf.ReportedAt); err != nil {
			return nil, err
		}
		cf.Kept, cf.Incoming, cf.Stored = json.RawMessage(kept), json.RawMessage(incoming), json.RawMessage(stored)
		out = append(out, cf)
	}
	return out, rows.Err()
}

// Refusal is a change the server did not apply, with the reason and the
// change as it was sent.
type Refusal struct {
	ChangesetID string
	Entity      string
	RecordID    string
	Reason      string
	Change      json.RawMessage
	ReportedAt  string
}

// Refused lists the changes the server did not apply, oldest first.
func (c *Client) Refused(ctx context.Context) ([]Refusal, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT changeset_id, entity, record_id, reason, change, reported_at FROM refused ORDER BY n`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Refusal
	for rows.Next() {
		var r Refusal
		var change string
		if err := rows.Scan(&r.ChangesetID, &r.Entity, &r.RecordID, &r.Reason, &change, &r.ReportedAt); err != nil {
			return nil, err
		}
		r.Change = json.RawMessage(change)
		out = append(out, r)
	}
	return out, rows.Err()
}
