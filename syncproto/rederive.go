package syncproto

import (
	"bytes"
	"encoding/json"

	"github.com/fieldsync/fieldsync/schema"
)

// RederiveMerged makes the derived fields of a merged change follow their
// merged sources. migrated holds the change's fields after its migration
// from the older version r starts from (schema.Catalog.Up): a derived
// field it holds (the change held the field's source) is derived again
// from the record as the merge left it (schema.Rederivation.Rederive),
// whatever the merge made of it on its own — so a derived field never
// disagrees with its source after concurrent edits of the source by
// tablets on different versions. Its change in the version's history
// names the source it was derived from (FieldChange.DerivedFrom: the
// server's derivation, not a device's value), its metadata becomes its
// source's (a later edit of it contends exactly when one of its source
// would, also when its value did not change), and a decision the merge took on it alone is dropped (the
// decision on the source is the one that counts). A rejected outcome, a
// tombstone, or a change holding no derived field is returned as it is.
func RederiveMerged(r *schema.Rederivation, entity string, stored *StoredRecord, migrated map[string]json.RawMessage, out Outcome) Outcome {
	if r == nil || out.Status == StatusRejected || out.Deleted {
		return out
	}
	derived := r.Derived(entity)
	var follow []string
	for _, name := range sortedKeys(derived) {
		if _, ok := migrated[name]; ok && derived[name] != "" {
			follow = append(follow, name)
		}
	}
	if len(follow) == 0 {
		return out
	}
	values := r.Rederive(entity, out.Fields)
	var before map[string]json.RawMessage
	var priorVersion int64
	var priorMeta map[string]FieldMeta
	if stored != nil {
		before, priorVersion, priorMeta = stored.Fields, stored.Version, stored.Meta
	}
	for _, name := range follow {
		v, ok := values[name]
		if !ok {
			continue
		}
		src := derived[name]
		if bytes.Equal(v, schema.Null) {
			delete(out.Fields, name)
		} else {
			out.Fields[name] = v
		}
		old := valueOf(before, name)
		if bytes.Equal(old, v) {
			delete(out.Changes, name)
		} else {
			out.Changes[name] = FieldChange{Before: old, After: v, DerivedFrom: src}
		}
		// The derived field was written by the write that wrote its source:
		// a later edit of it contends exactly when one of the source would.
		if m, ok := out.Meta[src]; ok {
			out.Meta[name] = m
		}
		kept := out.Decisions[:0]
		for _, d := range out.Decisions {
			if d.Field != name {
				kept = append(kept, d)
			}
		}
		out.Decisions = kept
	}
	// The version and status as Merge's finish would have made them.
	out.Version = priorVersion
	if len(out.Changes) > 0 {
		out.Version = priorVersion + 1
		for _, name := range follow {
			if c, changed := out.Changes[name]; changed && c.DerivedFrom != "" && out.Meta[name].Version < out.Version {
				// The source did not change in this version; the derived
				// field did, now.
				m := out.Meta[name]
				m.Version = out.Version
				out.Meta[name] = m
			}
		}
	} else {
		for _, name := range follow {
			if m, ok := out.Meta[name]; ok && m != priorMeta[name] {
				out.MetaTouched = true
			}
		}
	}
	return finish(out, out.Version)
}
