package syncproto

import (
	"encoding/json"

	"github.com/fieldsync/fieldsync/schema"
)

// FlagNotExpressible marks a pulled record that the schema version the
// tablet asked for cannot hold whole: a field it lacks (a new field, a new
// form) is left out of the record's fields.
const FlagNotExpressible = "not_expressible"

// DownRecords converts pulled records, stored in the catalog's latest
// version, to version to (schema.Catalog.Down), in place: the fields are
// decoded and re-encoded in the older version, and a record that the
// older version cannot hold whole is flagged FlagNotExpressible. Removed
// records and records of the latest version pass unchanged.
func DownRecords(cat *schema.Catalog, to int, recs []Record) error {
	if cat == nil || to == cat.Latest().Version || cat.Version(to) == nil {
		return nil
	}
	older := cat.Version(to)
	for i := range recs {
		r := &recs[i]
		if r.Removed {
			continue
		}
		fields := r.Fields
		if r.RawFields != nil {
			fields = nil
			if err := json.Unmarshal(r.RawFields, &fields); err != nil {
				return err
			}
		}
		if older.Form(r.Entity) == nil {
			r.Fields, r.RawFields = nil, nil
			r.Flags = append(r.Flags, FlagNotExpressible)
			continue
		}
		down, lost := cat.Down(to, r.Entity, fields)
		r.Fields, r.RawFields = down, nil
		if r.Fields == nil {
			r.Fields = map[string]json.RawMessage{}
		}
		if len(lost) > 0 {
			r.Flags = append(r.Flags, FlagNotExpressible)
		}
	}
	return nil
}
