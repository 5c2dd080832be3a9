package console

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// recordView is one record on the household page.
type recordView struct {
	Entity, ID string
	Version    int64
	Deleted    bool
	MergedInto string
	Fields     []fieldView
	Photos     []string
	History    []historyRow
}

// fieldView is one field's current value.
type fieldView struct {
	Name  string
	Value json.RawMessage
}

// historyRow is one field's change in one version.
type historyRow struct {
	Version          int64
	At, User, Device string
	DeviceName       string
	Field            string
	Before, After    json.RawMessage
	// Policy, State and ResolvedBy are the merge decision on the field
	// that the version carried, if any.
	Policy, State, ResolvedBy string
	ConflictID, Note          string
	// Registered marks the status a household was registered with by a
	// deciding role (syncproto.FlagRegistered): shown in the console's
	// words instead of the version's note.
	Registered bool
}

// householdPage is the household page.
type householdPage struct {
	Household *recordView
	Records   []*recordView
	Village   string
	Head      string
}

func (h *householdPage) pageTitle(lang string) string { return t(lang, "households") + " · " + h.Head }

// handleHousehold is GET /console/households/{id}: the household, its
// inspections, their photos, and the history of every field.
func (c *Console) handleHousehold(q *request) {
	id := strings.ToLower(q.r.PathValue("id"))
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		c.refuse(q.w, q.r, q.lang, http.StatusNotFound, "not_found")
		return
	}
	ctx := q.r.Context()
	rec, err := c.cfg.Store.Record(ctx, id)
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	if !q.actor.InScope(rec.Village) {
		c.refuse(q.w, q.r, q.lang, http.StatusForbidden, "msg_scope")
		return
	}
	hhEntity := c.cfg.Schema.Playing(schema.RoleHousehold).Entity
	if rec.Entity != hhEntity && rec.Parent != "" {
		http.Redirect(q.w, q.r, "/console/households/"+rec.Parent, http.StatusSeeOther)
		return
	}
	names, err := c.deviceNames(ctx)
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	p := &householdPage{Village: rec.Village}
	// A reader without the right to see identity numbers (a viewer) sees
	// them masked, in the fields and in the history alike.
	mask := !q.actor.Can(syncproto.PermissionSeeIdentity)
	if p.Household, err = c.recordView(ctx, rec, names, mask); err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	_ = json.Unmarshal(rec.Fields[c.cfg.Schema.Playing(schema.RoleHousehold).RoleField("head_name")], &p.Head)
	village, _ := regionActor(q.actor, rec.Village)
	var children []syncproto.StoredRecord
	var entities []string
	for _, f := range c.cfg.Schema.Forms {
		if f.Parent != nil && f.Parent.Entity == hhEntity {
			entities = append(entities, f.Entity)
		}
	}
	err = c.cfg.Store.Snapshot(ctx, village, syncproto.SnapshotQuery{Schema: c.cfg.Schema, Entities: entities},
		sinkFunc(func(row syncproto.SnapshotRow) error {
			f := c.cfg.Schema.Form(row.Record.Entity)
			var parent string
			_ = json.Unmarshal(row.Record.Fields[f.Parent.Field], &parent)
			if parent == rec.ID || row.Record.Parent == rec.ID {
				children = append(children, row.Record)
			}
			return nil
		}))
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	for i := range children {
		v, err := c.recordView(ctx, &children[i], names, mask)
		if err != nil {
			c.fail(q.w, q.r, q.lang, err)
			return
		}
		p.Records = append(p.Records, v)
	}
	c.renderPage(q, http.StatusOK, "household", p, false)
}

// deviceNames are the names tablets gave themselves.
func (c *Console) deviceNames(ctx context.Context) (map[string]string, error) {
	devices, err := c.cfg.Store.Devices(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, d := range devices {
		if d.Name != "" {
			out[d.DeviceID] = d.Name
		}
	}
	return out, nil
}

// recordView reads a record's fields in the form's order, its photos and
// its history (every version, newest first, one row per changed field,
// with the merge decision the version carried on that field); with mask,
// every identity number in them masked (schema.MaskIdentity).
func (c *Console) recordView(ctx context.Context, rec *syncproto.StoredRecord, names map[string]string, mask bool) (*recordView, error) {
	v := &recordView{Entity: rec.Entity, ID: rec.ID, Version: rec.Version, Deleted: rec.Deleted, MergedInto: rec.MergedInto}
	form := c.cfg.Schema.Form(rec.Entity)
	var identity []string
	fields := rec.Fields
	if form != nil && mask {
		identity = form.IdentityFields()
		fields = c.cfg.Schema.MaskIdentities(rec.Entity, fields)
	}
	maskValue := func(field string, raw json.RawMessage) json.RawMessage {
		if len(raw) == 0 || !slices.Contains(identity, field) {
			return raw
		}
		return schema.MaskIdentityValue(raw)
	}
	if form != nil {
		for _, fd := range form.Fields {
			raw, ok := fields[fd.Name]
			if !ok {
				continue
			}
			if fd.Type == schema.TypeSet && fd.Items == "sha256" {
				var photos []string
				_ = json.Unmarshal(raw, &photos)
				v.Photos = append(v.Photos, photos...)
				continue
			}
			v.Fields = append(v.Fields, fieldView{Name: fd.Name, Value: raw})
		}
	}
	log, err := c.cfg.Store.History(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	conflicts, err := c.cfg.Store.Conflicts(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	byID := map[string]syncproto.ConflictEntry{}
	for _, cf := range conflicts {
		byID[cf.ID] = cf
	}
	forms := survey.FormsOf(c.cfg.Schema)
	for _, e := range slices.Backward(log) {
		// A decision's note (a status decided, overridden or registered)
		// concerns the status field: it is shown on that field's row, not
		// on every field of the version.
		decision := slices.ContainsFunc(e.Flags, func(f string) bool {
			return f == syncproto.FlagDecided || f == syncproto.FlagOverride || f == syncproto.FlagRegistered
		})
		fields := make([]string, 0, len(e.Changes))
		for f := range e.Changes {
			fields = append(fields, f)
		}
		slices.Sort(fields)
		for _, f := range fields {
			ch := e.Changes[f]
			row := historyRow{Version: e.Version, At: syncproto.FormatTime(e.ServerAt), User: e.UserID, Device: e.DeviceID,
				DeviceName: names[e.DeviceID], Field: f, Before: maskValue(f, ch.Before), After: maskValue(f, ch.After), Note: e.Note}
			if decision && (rec.Entity != forms.Household.Entity || f != forms.Status) {
				row.Note = ""
			} else if decision && slices.Contains(e.Flags, syncproto.FlagRegistered) {
				row.Note, row.Registered = "", true
			}
			for _, id := range e.ConflictIDs {
				if cf, ok := byID[id]; ok && cf.Field == f {
					row.ConflictID = cf.ID
					row.Policy, row.State = cf.Policy, cf.State
					if cf.Resolved != nil {
						row.ResolvedBy = cf.Resolved.By
						if cf.Resolved.Note != "" {
							row.Note = cf.Resolved.Note
						}
					}
				}
			}
			v.History = append(v.History, row)
		}
	}
	return v, nil
}
