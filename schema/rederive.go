package schema

import "encoding/json"

// Rederivation says how the derived fields of a newer version follow
// their sources, for changes sent in an older version: a derive step's
// field merged on its own can part from its merged source under
// concurrent edits (see Migration.Up), so a server derives it again from
// the record as the merge left it. Make one with Migration.Rederivation
// or Catalog.Rederivation; it is safe for concurrent use.
type Rederivation struct {
	steps [][]step // each migration's steps, oldest first
	older *Schema  // the version changes are sent in
	up    func(entity string, fields map[string]json.RawMessage) (map[string]json.RawMessage, []string, error)
	down  func(entity string, fields map[string]json.RawMessage) (map[string]json.RawMessage, []string)
}

// Rederivation is the rederivation of this migration's derive steps.
func (m *Migration) Rederivation() *Rederivation {
	return &Rederivation{steps: [][]step{m.steps}, older: m.from,
		up: func(entity string, fields map[string]json.RawMessage) (map[string]json.RawMessage, []string, error) {
			return m.Up(entity, fields, false)
		}, down: m.Down}
}

// Rederivation is the rederivation of the derive steps of every version
// after from, for changes sent in version from; nil when from is not a
// version of the set or is the latest.
func (c *Catalog) Rederivation(from int) *Rederivation {
	if c.Version(from) == nil || from == len(c.versions) {
		return nil
	}
	r := &Rederivation{older: c.Version(from),
		up: func(entity string, fields map[string]json.RawMessage) (map[string]json.RawMessage, []string, error) {
			return c.Up(from, entity, fields, false)
		},
		down: func(entity string, fields map[string]json.RawMessage) (map[string]json.RawMessage, []string) {
			return c.Down(from, entity, fields)
		}}
	for n := from + 1; n <= len(c.versions); n++ {
		r.steps = append(r.steps, c.ups[n-2].steps)
	}
	return r
}

// Derived maps each field of entity in the newest version that a derive
// step writes to the newest version's name of the field it is derived
// from; "" when that source is no field of the newest version (a drop
// took it out): then the derived field cannot follow it and is merged on
// its own.
func (r *Rederivation) Derived(entity string) map[string]string {
	type entry struct {
		derived bool
		source  string
	}
	cur := map[string]entry{}
	if f := r.older.Form(entity); f != nil {
		for _, fd := range f.Fields {
			cur[fd.Name] = entry{}
		}
	}
	for _, steps := range r.steps {
		for _, st := range steps {
			if st.entity != entity {
				continue
			}
			switch st.op {
			case StepRename:
				if e, ok := cur[st.field]; ok {
					delete(cur, st.field)
					cur[st.rename] = e
					for name, d := range cur {
						if d.derived && d.source == st.field {
							d.source = st.rename
							cur[name] = d
						}
					}
				}
			case StepDerive:
				cur[st.field] = entry{derived: true, source: st.source}
			case StepDefault:
				if _, ok := cur[st.field]; !ok {
					cur[st.field] = entry{}
				}
			case StepDrop:
				delete(cur, st.field)
				for name, d := range cur {
					if d.derived && d.source == st.field {
						d.source = ""
						cur[name] = d
					}
				}
			}
		}
	}
	out := map[string]string{}
	for name, e := range cur {
		if e.derived {
			out[name] = e.source
		}
	}
	return out
}

// Rederive derives again, from a whole record of entity in the newest
// version, each derived field whose source is a field of the newest
// version (Derived): the record is converted back to the older version
// (Down) and migrated up again, so that each derive step reads its source
// as the steps before it left it. It returns the derived fields' values:
// Null for one whose source the record does not hold (a derived field
// follows its source, absent included). A field it cannot tell — its
// source holds a value the older version cannot express (a folding map),
// or the record does not migrate — is left out: the caller keeps what the
// merge made of it.
func (r *Rederivation) Rederive(entity string, record map[string]json.RawMessage) map[string]json.RawMessage {
	derived := r.Derived(entity)
	if len(derived) == 0 {
		return nil
	}
	var up map[string]json.RawMessage
	if down, _ := r.down(entity, record); down != nil {
		up, _, _ = r.up(entity, down)
	}
	out := make(map[string]json.RawMessage, len(derived))
	for name, src := range derived {
		if src == "" {
			continue
		}
		if v, holds := record[src]; !holds || isNull(v) {
			out[name] = Null
			continue
		}
		if v, ok := up[name]; ok {
			out[name] = v
		}
	}
	return out
}
