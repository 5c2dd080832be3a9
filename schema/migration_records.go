package schema

import (
	"encoding/json"
	"fmt"
)

// UpRecord migrates a whole stored record of entity, valid under the
// older version, to the newer one, as Up does an update, but for its
// defaults: a default step fills a field the record lacks (absent or null)
// when the field is new in the newer version (the older one has no such
// field at that step) or the newer version requires it. A field the older
// version had and left optional, and that the record does not hold, stays
// absent: the record was made under a form that allowed it so, and a
// default is no observation. It returns what Up returns.
func (m *Migration) UpRecord(entity string, fields map[string]json.RawMessage) (map[string]json.RawMessage, []string, error) {
	return m.up(entity, fields, fillStored)
}

// UpRecord migrates a whole stored record of entity from version from to
// the latest, by each version's Migration.UpRecord in turn: what
// publishing a version does to the records stored before it. It returns
// the migrated fields and the dropped fields' names, or an error when from
// is not a version of the set or a step cannot apply.
func (c *Catalog) UpRecord(from int, entity string, fields map[string]json.RawMessage) (map[string]json.RawMessage, []string, error) {
	if c.Version(from) == nil {
		return nil, nil, fmt.Errorf("schema: no version %d (the latest is %d)", from, len(c.versions))
	}
	var dropped []string
	for n := from + 1; n <= len(c.versions); n++ {
		out, d, err := c.ups[n-2].UpRecord(entity, fields)
		if err != nil {
			return nil, nil, fmt.Errorf("schema: migrating to version %d: %w", n, err)
		}
		fields, dropped = out, append(dropped, d...)
	}
	return fields, dropped, nil
}

// Through returns the set of versions 1 to n of c (n itself the latest),
// or nil when c has no version n: what finishing a migration of stored
// records to version n, interrupted before a later version was published,
// migrates by.
func (c *Catalog) Through(n int) *Catalog {
	if c.Version(n) == nil {
		return nil
	}
	return &Catalog{versions: c.versions[:n:n], infos: c.infos[:n:n], docs: c.docs[:n:n], ups: c.ups[: n-1 : n-1]}
}
