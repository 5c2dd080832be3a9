package client

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The form's named rules, offline (docs/forms.md "Rules"): an edit that
// leaves its record failing a requirement is refused before it is queued,
// by schema.Form.CheckRules, as the server's push checks it — every rule
// for a record the server does not hold yet, on an update the rules that
// read a field the edit changes. Criteria are not enforced; Judge judges
// one for the app.

// checkRules returns the requirement rules that record id of form fails as
// the edit (its normalized fields) leaves it. The record as the server
// will meet the edit is the local copy with the edits already sent laid
// over it (acknowledged, in flight: the server applies them first); the
// edit is that, with the edits still in the outbox and this one.
func (c *Client) checkRules(ctx context.Context, form *schema.Form, id string, create bool, edit map[string]json.RawMessage) ([]syncproto.FieldError, error) {
	prior, held, queued, err := c.sides(ctx, id)
	if err != nil {
		return nil, err
	}
	after := make(map[string]json.RawMessage, len(prior)+len(queued)+len(edit))
	for _, m := range []map[string]json.RawMessage{prior, queued, edit} {
		for k, v := range m {
			after[k] = v
		}
	}
	var changed []string // nil: a new record, every rule
	if held && !create {
		changed = []string{}
		for _, m := range []map[string]json.RawMessage{queued, edit} {
			for name := range m {
				if !sameValue(prior[name], after[name]) && !slices.Contains(changed, name) {
					changed = append(changed, name)
				}
			}
		}
	}
	facts, err := c.facts(ctx, form, after)
	if err != nil {
		return nil, err
	}
	return form.CheckRules(facts, changed), nil
}

// sides returns what the server will hold of record id when the outbox
// reaches it (its fields, and whether it holds the record at all), and
// the fields the outbox changes.
func (c *Client) sides(ctx context.Context, id string) (prior map[string]json.RawMessage, held bool, queued map[string]json.RawMessage, err error) {
	r, err := scanLocal(c.db.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM records WHERE id = ?`, id))
	switch {
	case err == nil:
		held = true
	case errors.Is(err, sql.ErrNoRows):
	default:
		return nil, false, nil, err
	}
	prior = map[string]json.RawMessage{}
	for k, v := range r.Fields {
		prior[k] = v
	}
	o, err := c.overlays(ctx, c.db, id)
	if err != nil {
		return nil, false, nil, err
	}
	changes := o[id]
	var raw string
	err = c.db.QueryRowContext(ctx, `SELECT fields FROM outbox WHERE record_id = ?`, id).Scan(&raw)
	switch {
	case err == nil:
		// The outbox's row is the last overlay.
		changes = changes[:len(changes)-1]
		if err := json.Unmarshal([]byte(raw), &queued); err != nil {
			return nil, false, nil, err
		}
	case errors.Is(err, sql.ErrNoRows):
	default:
		return nil, false, nil, err
	}
	for _, ch := range changes {
		held = true
		for k, v := range ch.Fields {
			prior[k] = v
		}
	}
	return prior, held, queued, nil
}

// facts are the rules' facts of a record with fields: the records its
// rules read through reference fields, as this device holds them, and the
// device's clock.
func (c *Client) facts(ctx context.Context, form *schema.Form, fields map[string]json.RawMessage) (schema.Facts, error) {
	facts := schema.Facts{Fields: fields, Now: c.opts.Now()}
	for _, ref := range form.RuleReferences() {
		var id string
		if raw, ok := fields[ref]; !ok || json.Unmarshal(raw, &id) != nil || id == "" {
			continue
		}
		r, err := c.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return facts, err
		}
		if !r.Deleted {
			if facts.Related == nil {
				facts.Related = map[string]map[string]json.RawMessage{}
			}
			facts.Related[ref] = r.Fields
		}
	}
	return facts, nil
}

// Judge judges the named criterion of a record's form (an any_of rule,
// docs/forms.md) on the record as this device holds it, pending edits
// included, with the records its rules read through references and the
// device's clock: met, not met or not evaluable, and the condition that
// decided — what a tablet UI shows, e.g. whether the water is convenient
// to fetch. Criteria never refuse an edit. It returns ErrNotFound for a
// record the device does not hold, and an error when the form has no such
// criterion or the device has no forms yet (no login).
func (c *Client) Judge(ctx context.Context, id, criterion string) (schema.Judgement, error) {
	r, err := c.Get(ctx, id)
	if err != nil {
		return schema.Judgement{}, err
	}
	forms, err := c.formsOf(ctx)
	if err != nil {
		return schema.Judgement{}, err
	}
	if forms == nil {
		return schema.Judgement{}, ErrLoginRequired
	}
	form := forms.Form(r.Entity)
	if form == nil {
		return schema.Judgement{}, fmt.Errorf("client: version %d of the forms has no form %s", forms.Version, r.Entity)
	}
	facts, err := c.facts(ctx, form, r.Fields)
	if err != nil {
		return schema.Judgement{}, err
	}
	return form.Judge(criterion, facts)
}

// sameValue reports whether two values of a field are the same, missing
// and null alike.
func sameValue(a, b json.RawMessage) bool {
	null := func(v json.RawMessage) bool { return len(v) == 0 || bytes.Equal(v, schema.Null) }
	if null(a) || null(b) {
		return null(a) && null(b)
	}
	return bytes.Equal(a, b)
}
