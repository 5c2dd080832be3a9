package api

import (
	"encoding/json"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// identityMask masks the identity numbers (fields declared "personal":
// "identity") of what a record endpoint answers, for a caller without
// syncproto.PermissionSeeIdentity (a viewer); for any other caller it
// leaves everything as it is.
type identityMask struct {
	sch *schema.Schema
	on  bool
}

func (s *Server) identityMask(c echo.Context) identityMask {
	return identityMask{sch: s.schema, on: !s.actor(c).Can(syncproto.PermissionSeeIdentity)}
}

// isIdentity reports whether field of entity holds an identity number to
// mask.
func (m identityMask) isIdentity(entity, field string) bool {
	if !m.on {
		return false
	}
	f := m.sch.Form(entity)
	return f != nil && slices.Contains(f.IdentityFields(), field)
}

// value masks v when field of entity is an identity number.
func (m identityMask) value(entity, field string, v json.RawMessage) json.RawMessage {
	if len(v) == 0 || !m.isIdentity(entity, field) {
		return v
	}
	return schema.MaskIdentityValue(v)
}

// record returns the wire record with its identity numbers masked.
func (m identityMask) record(rec *syncproto.StoredRecord) syncproto.Record {
	out := syncproto.WireRecord(rec)
	if m.on {
		out.Fields = m.sch.MaskIdentities(rec.Entity, out.Fields)
	}
	return out
}

// changes returns a history entry's field changes with the identity
// numbers before and after masked (a copy when there is one).
func (m identityMask) changes(entity string, changes map[string]syncproto.FieldChange) map[string]syncproto.FieldChange {
	if !m.on {
		return changes
	}
	var out map[string]syncproto.FieldChange
	for name, fc := range changes {
		if !m.isIdentity(entity, name) {
			continue
		}
		if out == nil {
			out = make(map[string]syncproto.FieldChange, len(changes))
			for k, v := range changes {
				out[k] = v
			}
		}
		fc.Before, fc.After = m.value(entity, name, fc.Before), m.value(entity, name, fc.After)
		out[name] = fc
	}
	if out == nil {
		return changes
	}
	return out
}

// conflict masks a recorded decision on an identity number: the values
// stored, incoming, kept and resolved.
func (m identityMask) conflict(cf syncproto.ConflictEntry) syncproto.ConflictEntry {
	if !m.isIdentity(cf.Entity, cf.Field) {
		return cf
	}
	cf.Stored = m.value(cf.Entity, cf.Field, cf.Stored)
	cf.Incoming = m.value(cf.Entity, cf.Field, cf.Incoming)
	cf.Kept = m.value(cf.Entity, cf.Field, cf.Kept)
	if cf.Resolved != nil {
		r := *cf.Resolved
		r.Value = m.value(cf.Entity, cf.Field, r.Value)
		cf.Resolved = &r
	}
	return cf
}
