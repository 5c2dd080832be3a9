package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The operations of a migration step (the "op" of each object in a
// version.json's "migrations").
const (
	StepRename  = "rename"  // {"op","entity","field","to"}: the value moves to another field
	StepMap     = "map"     // {"op","entity","field","values"}: enum values (and set items) are translated
	StepDefault = "default" // {"op","entity","field","value"}: a new record that lacks the field gets the value
	StepDerive  = "derive"  // {"op","entity","field","from","cases"}: the field is computed from another one
	StepDrop    = "drop"    // {"op","entity","field"}: the value leaves the record (the change log keeps it)
)

// MigrationError lists every problem found in a migration's steps, or in
// one change a migration was given. Each error's path names the step and
// its member ("migrations[2].field", "migrations[0].values.piped"),
// "migrations" for a problem of the steps as a whole (a field of the older
// version that no step carries over), or, from Up, the change's field
// ("fields.grade").
type MigrationError struct {
	From, To int
	Errors   []FieldError
}

// Error lists every problem, one after the other.
func (e *MigrationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Path + ": " + fe.Message
	}
	return fmt.Sprintf("schema: migration %d→%d: %s", e.From, e.To, strings.Join(parts, "; "))
}

// Migration carries a change's fields from one schema version to the next
// by the steps the newer version declares. It is compiled once, by
// CompileMigration, and is safe for concurrent use.
type Migration struct {
	from, to *Schema
	steps    []step
}

// From is the older schema of the migration.
func (m *Migration) From() *Schema { return m.from }

// To is the newer schema of the migration.
func (m *Migration) To() *Schema { return m.to }

type step struct {
	index  int
	op     string
	entity string
	field  string
	// rename: the new name.
	rename string
	// map: old value → new value, and new value → old value where that is
	// one-to-one (what Down can restore).
	values map[string]string
	back   map[string]string
	// default: the canonical value.
	value json.RawMessage
	// default: the field is not one of the older version's (Down takes
	// it away again when it still holds the default).
	added bool
	// derive: the source field and the cases, first match wins.
	source      string
	sourceField *Field
	cases       []deriveCase
	// derive: the newer version lacks the source (a later step drops it)
	// and every case is an equals giving a value no other case gives, so
	// Down restores the source from the derived value (a scalar become a
	// one-element set, and back).
	invertible bool
}

type deriveCase struct {
	min, max *float64
	equals   json.RawMessage
	value    json.RawMessage
}

// slot is what compiling knows of one field of an entity at a point in
// the steps: the older version's field it carries (nil for a field the
// steps add) and how it got there.
type slot struct {
	origin  *Field
	renamed bool
	mapStep int // index of the map step of this field, -1 when none
	values  map[string]string
	derived bool
}

// stepMembers are the members each op's step has besides op, entity and
// field.
var stepMembers = map[string][]string{
	StepRename: {"to"}, StepMap: {"values"}, StepDefault: {"value"},
	StepDerive: {"from", "cases"}, StepDrop: nil,
}

// CompileMigration checks steps (a JSON array of step objects, applied in
// order) against the older schema from and the newer schema to, and returns
// the migration between them. Each step names its entity, which both
// versions must have, and its field by the name it has at that point of the
// steps (after the renames before it). It checks that:
//
//   - a rename moves a field of from to a field of to of a compatible type
//     (the same type, or integer to number) that no other field holds;
//   - a map translates values of from's field (its keys) into values of to's
//     field, for an enum or a set of enum values;
//   - a default's value is valid for to's field;
//   - a derive reads a field present at that point and writes a field to
//     has and from lacks, not a required one, with at least one case; a
//     case's min and max are for a numeric source, its equals a valid
//     source value, its value valid for the target;
//   - a drop names a field present at that point that to lacks;
//   - after the steps, every field of from left is a field of to of a
//     compatible type whose enum values all exist in to (or are mapped), and
//     every field to requires is required in from or has a default.
//
// Every problem is returned at once, as a *MigrationError whose paths name
// the step index and member. An unknown op, or a member the op does not
// take, is an error. Null or empty steps make a migration that changes
// nothing but still needs from's fields to fit to.
func CompileMigration(from, to *Schema, steps json.RawMessage) (*Migration, error) {
	m := &Migration{from: from, to: to}
	merr := &MigrationError{From: from.Version, To: to.Version}
	fail := func(path, format string, a ...any) {
		merr.Errors = append(merr.Errors, FieldError{Path: path, Message: fmt.Sprintf(format, a...)})
	}
	var raws []json.RawMessage
	if t := bytes.TrimSpace(steps); len(t) > 0 && !bytes.Equal(t, Null) {
		if err := json.Unmarshal(t, &raws); err != nil {
			fail("migrations", "must be a list of steps")
			return nil, merr
		}
	}
	state := map[string]map[string]*slot{}
	slotsOf := func(entity string) map[string]*slot {
		if s, ok := state[entity]; ok {
			return s
		}
		s := map[string]*slot{}
		fields := from.Form(entity).Fields
		for i := range fields {
			fd := &fields[i]
			s[fd.Name] = &slot{origin: fd, mapStep: -1}
		}
		state[entity] = s
		return s
	}
	defaulted := map[string]bool{} // "entity.field"

	for i, r := range raws {
		at := fmt.Sprintf("migrations[%d]", i)
		var obj map[string]json.RawMessage
		if json.Unmarshal(r, &obj) != nil || obj == nil {
			fail(at, "must be an object")
			continue
		}
		str := func(key string) string {
			var s string
			v, ok := obj[key]
			if !ok {
				fail(at+"."+key, "is required")
				return ""
			}
			if json.Unmarshal(v, &s) != nil || s == "" {
				fail(at+"."+key, "must be a non-empty string")
				return ""
			}
			return s
		}
		op := str("op")
		extra, known := stepMembers[op]
		if op != "" && !known {
			fail(at+".op", "unknown op %q (one of rename, map, default, derive, drop)", op)
			continue
		}
		if op == "" {
			continue
		}
		for _, key := range sortedNames(obj) {
			// "description" says why, for people (the v1→v2 water source
			// map says what v1's value does not know), on any step.
			if key != "op" && key != "entity" && key != "field" && key != "description" && !contains(extra, key) {
				fail(at+"."+key, "is not a member of a %s step", op)
			}
		}
		entity, field := str("entity"), str("field")
		if entity == "" || field == "" {
			continue
		}
		ff, tf := from.Form(entity), to.Form(entity)
		if ff == nil || tf == nil {
			fail(at+".entity", "%q must be an entity of both versions %d and %d", entity, from.Version, to.Version)
			continue
		}
		cur := slotsOf(entity)
		st := step{index: i, op: op, entity: entity, field: field}
		switch op {
		case StepRename:
			sl := cur[field]
			if sl == nil || sl.origin == nil {
				fail(at+".field", "%s has no field %q of version %d at this step", entity, field, from.Version)
			}
			target := str("to")
			if target == "" {
				continue
			}
			tfd := tf.Field(target)
			switch {
			case tfd == nil:
				fail(at+".to", "%s has no field %q in version %d", entity, target, to.Version)
			case cur[target] != nil:
				fail(at+".to", "%s.%s is already a field at this step", entity, target)
			case sl != nil && sl.origin != nil:
				if why := incompatible(sl.origin, tfd); why != "" {
					fail(at+".to", "%s.%s cannot become %s: %s", entity, field, target, why)
				}
			}
			if sl == nil || sl.origin == nil || tfd == nil || cur[target] != nil {
				continue
			}
			sl.renamed = true
			delete(cur, field)
			cur[target] = sl
			st.rename = target
		case StepMap:
			sl := cur[field]
			tfd := tf.Field(field)
			if sl == nil || sl.origin == nil {
				fail(at+".field", "%s has no field %q of version %d at this step", entity, field, from.Version)
				continue
			}
			if (sl.origin.Type != TypeEnum && sl.origin.Type != TypeSet) || len(sl.origin.Values) == 0 {
				fail(at+".field", "%s.%s is no enum or set of values: only those map", entity, field)
				continue
			}
			if tfd == nil || len(tfd.Values) == 0 {
				fail(at+".field", "%s has no enum or set field %q in version %d", entity, field, to.Version)
				continue
			}
			if sl.mapStep >= 0 {
				fail(at+".field", "%s.%s is mapped already by migrations[%d]", entity, field, sl.mapStep)
				continue
			}
			var values map[string]string
			if v, ok := obj["values"]; !ok || json.Unmarshal(v, &values) != nil || len(values) == 0 {
				fail(at+".values", `must be an object of old value → new value ({"old": "new"})`)
				continue
			}
			bad := false
			for _, old := range sortedNames(values) {
				if !contains(sl.origin.Values, old) {
					fail(at+".values."+old, "%q is not a value of %s.%s in version %d", old, entity, sl.origin.Name, from.Version)
					bad = true
				}
				if !contains(tfd.Values, values[old]) {
					fail(at+".values."+old, "%q is not a value of %s.%s in version %d", values[old], entity, field, to.Version)
					bad = true
				}
			}
			if bad {
				continue
			}
			sl.mapStep, sl.values = i, values
			st.values = values
			st.back = inverse(values, sl.origin.Values, tfd.Values)
		case StepDefault:
			tfd := tf.Field(field)
			if tfd == nil {
				fail(at+".field", "%s has no field %q in version %d", entity, field, to.Version)
				continue
			}
			v, ok := obj["value"]
			if !ok || bytes.Equal(bytes.TrimSpace(v), Null) {
				fail(at+".value", "is required (a value of %s.%s)", entity, field)
				continue
			}
			norm, ferr := normalizeTimeless(tfd, v)
			if ferr != nil {
				fail(at+".value", "%s", ferr.Message)
				continue
			}
			st.value = norm
			sl := cur[field]
			st.added = sl == nil || sl.origin == nil
			if sl == nil {
				cur[field] = &slot{mapStep: -1}
			}
			defaulted[entity+"."+field] = true
		case StepDerive:
			tfd := tf.Field(field)
			switch {
			case tfd == nil:
				fail(at+".field", "%s has no field %q in version %d", entity, field, to.Version)
			case cur[field] != nil:
				fail(at+".field", "%s.%s is already a field at this step: derive writes a field the older version lacks", entity, field)
			case tfd.Required:
				fail(at+".field", "%s.%s is required in version %d: a derived value is not always there", entity, field, to.Version)
			}
			src := str("from")
			var sfd *Field
			if src != "" {
				switch sl := cur[src]; {
				case sl == nil:
					fail(at+".from", "%s has no field %q at this step", entity, src)
				case tf.Field(src) != nil:
					sfd = tf.Field(src)
				default:
					sfd = sl.origin
				}
			}
			cases, ok := obj["cases"]
			var list []map[string]json.RawMessage
			if !ok || json.Unmarshal(cases, &list) != nil || len(list) == 0 {
				fail(at+".cases", `must be a non-empty list of {"min", "max", "equals", "value"}`)
				continue
			}
			if tfd == nil || sfd == nil || cur[field] != nil {
				continue
			}
			for j, c := range list {
				cat := fmt.Sprintf("%s.cases[%d]", at, j)
				dc, errs := compileCase(cat, c, sfd, tfd)
				merr.Errors = append(merr.Errors, errs...)
				st.cases = append(st.cases, dc)
			}
			st.source, st.sourceField = src, sfd
			st.invertible = tf.Field(src) == nil && oneToOne(st.cases)
			cur[field] = &slot{mapStep: -1, derived: true}
		case StepDrop:
			sl := cur[field]
			switch {
			case sl == nil || sl.origin == nil:
				fail(at+".field", "%s has no field %q of version %d at this step", entity, field, from.Version)
				continue
			case tf.Field(field) != nil:
				fail(at+".field", "%s.%s is still a field in version %d: drop is for a field the newer version lacks", entity, field, to.Version)
				continue
			}
			delete(cur, field)
		}
		m.steps = append(m.steps, st)
	}

	// What no step mentions carries over as it is, and must fit.
	for _, ff := range from.Forms {
		tf := to.Form(ff.Entity)
		if tf == nil {
			continue // the newer version has no such form: Up refuses its changes
		}
		cur := slotsOf(ff.Entity)
		for _, name := range sortedNames(cur) {
			sl := cur[name]
			if sl.origin == nil {
				continue
			}
			tfd := tf.Field(name)
			if tfd == nil {
				fail("migrations", "%s.%s of version %d is not in version %d: rename or drop it", ff.Entity, name, from.Version, to.Version)
				continue
			}
			if why := incompatible(sl.origin, tfd); why != "" && !sl.renamed {
				fail("migrations", "%s.%s changes from version %d to %d: %s", ff.Entity, name, from.Version, to.Version, why)
				continue
			}
			path := "migrations"
			if sl.mapStep >= 0 {
				path = fmt.Sprintf("migrations[%d].values", sl.mapStep)
			}
			for _, v := range sl.origin.Values {
				if _, mapped := sl.values[v]; !mapped && !contains(tfd.Values, v) {
					fail(path, "value %q of %s.%s is not a value in version %d: map it", v, ff.Entity, sl.origin.Name, to.Version)
				}
			}
		}
		for _, tfd := range tf.Fields {
			if !tfd.Required || defaulted[ff.Entity+"."+tfd.Name] {
				continue
			}
			if sl := cur[tfd.Name]; sl == nil || sl.origin == nil || !sl.origin.Required {
				fail("migrations", "%s.%s is required in version %d but not in %d: give it a default", ff.Entity, tfd.Name, to.Version, from.Version)
			}
		}
	}
	if len(merr.Errors) > 0 {
		return nil, merr
	}
	return m, nil
}

func compileCase(at string, c map[string]json.RawMessage, src, target *Field) (deriveCase, []FieldError) {
	var dc deriveCase
	var errs []FieldError
	fail := func(path, format string, a ...any) {
		errs = append(errs, FieldError{Path: path, Message: fmt.Sprintf(format, a...)})
	}
	numeric := src.Type == TypeInteger || src.Type == TypeNumber
	for _, key := range sortedNames(c) {
		v := c[key]
		switch key {
		case "min", "max":
			var x float64
			if !numeric {
				fail(at+"."+key, "is for a numeric source; %s is %s", src.Name, src.Type)
			} else if json.Unmarshal(v, &x) != nil {
				fail(at+"."+key, "must be a number")
			} else if key == "min" {
				dc.min = &x
			} else {
				dc.max = &x
			}
		case "equals":
			norm, ferr := normalizeTimeless(src, v)
			if ferr != nil {
				fail(at+".equals", "%s", ferr.Message)
			}
			dc.equals = norm
		case "value":
			if bytes.Equal(bytes.TrimSpace(v), Null) {
				fail(at+".value", "must be a value of %s", target.Name)
				continue
			}
			norm, ferr := normalizeTimeless(target, v)
			if ferr != nil {
				fail(at+".value", "%s", ferr.Message)
			}
			dc.value = norm
		default:
			fail(at+"."+key, "is not a member of a case (min, max, equals, value)")
		}
	}
	if _, ok := c["value"]; !ok {
		fail(at+".value", "is required")
	}
	if dc.min != nil && dc.max != nil && *dc.min > *dc.max {
		fail(at+".min", "is above max")
	}
	return dc, errs
}

// incompatible says why a value of a cannot stand as a value of b, or ""
// when it can (enum values apart, which maps decide).
func incompatible(a, b *Field) string {
	switch {
	case a.Type == b.Type:
	case a.Type == TypeInteger && b.Type == TypeNumber:
		return ""
	default:
		return fmt.Sprintf("type %s is not %s", a.Type, b.Type)
	}
	switch {
	case a.Type == TypeReference && a.Entity != b.Entity:
		return fmt.Sprintf("a reference to %s is not one to %s", a.Entity, b.Entity)
	case a.Type == TypeSet && a.Items != b.Items:
		return "the set's items differ"
	}
	return ""
}

// inverse returns, for each value of the newer field, the one older value
// it stands for: the one value mapped to it, or itself when it is an
// unmapped value of the older field too. A value more than one older value
// becomes has no entry: Down cannot tell which it was.
func inverse(values map[string]string, older, newer []string) map[string]string {
	candidates := map[string][]string{}
	for old, nv := range values {
		candidates[nv] = append(candidates[nv], old)
	}
	for _, v := range older {
		if _, mapped := values[v]; !mapped && contains(newer, v) {
			candidates[v] = append(candidates[v], v)
		}
	}
	back := map[string]string{}
	for nv, olds := range candidates {
		if len(olds) == 1 {
			back[nv] = olds[0]
		}
	}
	return back
}

// Up migrates the fields of one change to entity, valid under the older
// version, to the newer version: the steps apply in order to the fields
// the change holds (a partial record). created tells whether the change
// creates the record (base_version 0): only then do defaults apply, to the
// fields the change leaves out (or sends as null). It returns the migrated
// fields in canonical form, valid under the newer version, and the names
// of the fields dropped (their values are no longer in the record).
//
// A derived field follows its source: when the change holds the source,
// the first case that matches its value sets the derived field (min and
// max are inclusive, equals compares the value), and a null source or no
// matching case sets it to null.
//
// Migrating and merging commute (TestMergeCommutesWithMigration) except in
// two cases, which a server that merges migrated changes must know: a
// derived field merged on its own can disagree with its merged source (one
// device edits the source without changing the derived value, another
// changes both), so it is to be derived again from the merged source
// (syncproto.RederiveMerged, with Rederivation; a derived field whose
// source a later version drops cannot be, and is merged on its own); and a
// map that folds several values into one turns an edit between two folded
// values into no edit, so a concurrent edit wins in the newer version where
// it lost in the older.
//
// It returns a *MigrationError when entity has no form in either version,
// when a field is not one of the older version's, or when a value does
// not fit the newer version (a change that was not valid under the older
// one).
func (m *Migration) Up(entity string, fields map[string]json.RawMessage, created bool) (map[string]json.RawMessage, []string, error) {
	fill := fillNone
	if created {
		fill = fillCreated
	}
	return m.up(entity, fields, fill)
}

// How a migration's default steps fill a field: not at all (an update),
// for a change creating its record, or for a whole stored record
// migrated at publication (UpRecord).
const (
	fillNone = iota
	fillCreated
	fillStored
)

func (m *Migration) up(entity string, fields map[string]json.RawMessage, fill int) (map[string]json.RawMessage, []string, error) {
	merr := &MigrationError{From: m.from.Version, To: m.to.Version}
	ff, tf := m.from.Form(entity), m.to.Form(entity)
	if ff == nil || tf == nil {
		merr.Errors = append(merr.Errors, FieldError{Path: "entity",
			Message: fmt.Sprintf("%q has no form in both versions %d and %d", entity, m.from.Version, m.to.Version)})
		return nil, nil, merr
	}
	out := make(map[string]json.RawMessage, len(fields))
	for _, name := range sortedNames(fields) {
		if ff.Field(name) == nil {
			merr.Errors = append(merr.Errors, FieldError{Path: "fields." + name,
				Message: fmt.Sprintf("unknown field of %s in version %d", entity, m.from.Version)})
			continue
		}
		out[name] = fields[name]
	}
	if len(merr.Errors) > 0 {
		return nil, nil, merr
	}
	var dropped []string
	for _, st := range m.steps {
		if st.entity != entity {
			continue
		}
		v, holds := out[st.field]
		switch st.op {
		case StepRename:
			if holds {
				delete(out, st.field)
				out[st.rename] = v
			}
		case StepMap:
			if holds && !isNull(v) {
				out[st.field] = mapValue(v, st.values)
			}
		case StepDefault:
			missing := !holds || isNull(v)
			if missing && (fill == fillCreated || fill == fillStored && (st.added || tf.Field(st.field).Required)) {
				out[st.field] = st.value
			}
		case StepDerive:
			if src, ok := out[st.source]; ok {
				out[st.field] = derive(src, st.sourceField, st.cases)
			}
		case StepDrop:
			if holds {
				delete(out, st.field)
				dropped = append(dropped, st.field)
			}
		}
	}
	for _, name := range sortedNames(out) {
		fd := tf.Field(name)
		if fd == nil {
			merr.Errors = append(merr.Errors, FieldError{Path: "fields." + name,
				Message: fmt.Sprintf("is no field of %s in version %d", entity, m.to.Version)})
			continue
		}
		if isNull(out[name]) {
			if fd.Required {
				merr.Errors = append(merr.Errors, FieldError{Path: "fields." + name,
					Message: fmt.Sprintf("is required in version %d and cannot be null", m.to.Version)})
			}
			out[name] = Null
			continue
		}
		norm, ferr := normalizeTimeless(fd, out[name])
		if ferr != nil {
			merr.Errors = append(merr.Errors, FieldError{Path: "fields." + name,
				Message: fmt.Sprintf("%s in version %d", ferr.Message, m.to.Version)})
			continue
		}
		out[name] = norm
	}
	if len(merr.Errors) > 0 {
		return nil, nil, merr
	}
	sort.Strings(dropped)
	return out, dropped, nil
}

// Down converts fields of entity (a whole record or a change) from the
// newer version back to the older one, undoing the steps in reverse where
// they can be undone: a rename moves the value back, a map translates it
// back when the mapping is one-to-one for that value, a derived field goes
// (its source comes back; when the newer version has dropped the source
// and every case is an equals giving its own value, the source is restored
// from the derived value — category "a" from categories ["a"] — and a
// value no case gives is not expressible), a defaulted field stays, or goes when it is not
// one of the older version's and still holds the default; a dropped field
// cannot come back and is not reported. It returns the down-converted
// fields and the names, as the newer version has them, of the fields the
// older version cannot express (a field it lacks that holds a value, a
// value a map made from several): they are left out, and the caller flags
// the record. When the older version has no form for entity, nothing is
// expressible.
func (m *Migration) Down(entity string, fields map[string]json.RawMessage) (map[string]json.RawMessage, []string) {
	ff := m.from.Form(entity)
	if ff == nil {
		return map[string]json.RawMessage{}, sortedNames(fields)
	}
	out := make(map[string]json.RawMessage, len(fields))
	newer := make(map[string]string, len(fields)) // current name → name in the newer version
	for name, v := range fields {
		out[name] = v
		newer[name] = name
	}
	var lost []string
	loseField := func(name string) {
		lost = append(lost, newer[name])
		delete(out, name)
	}
	for i := len(m.steps) - 1; i >= 0; i-- {
		st := m.steps[i]
		if st.entity != entity {
			continue
		}
		switch st.op {
		case StepRename:
			if v, ok := out[st.rename]; ok {
				delete(out, st.rename)
				out[st.field] = v
				newer[st.field] = newer[st.rename]
			}
		case StepMap:
			v, ok := out[st.field]
			if !ok || isNull(v) {
				continue
			}
			if back, ok := unmapValue(v, st.back); ok {
				out[st.field] = back
			} else {
				loseField(st.field)
			}
		case StepDerive:
			v, ok := out[st.field]
			if !st.invertible || !ok || isNull(v) {
				delete(out, st.field)
				continue
			}
			if src, ok := underive(v, st.cases); ok {
				delete(out, st.field)
				out[st.source] = src
				newer[st.source] = newer[st.field]
			} else {
				loseField(st.field)
			}
		case StepDefault:
			if v, ok := out[st.field]; ok && st.added && (isNull(v) || bytes.Equal(v, st.value)) {
				delete(out, st.field)
			}
		}
	}
	for _, name := range sortedNames(out) {
		fd := ff.Field(name)
		if fd == nil {
			if isNull(out[name]) {
				delete(out, name)
			} else {
				loseField(name)
			}
			continue
		}
		if isNull(out[name]) {
			continue
		}
		norm, ferr := normalizeTimeless(fd, out[name])
		if ferr != nil {
			loseField(name)
			continue
		}
		out[name] = norm
	}
	sort.Strings(lost)
	return out, lost
}

func mapValue(v json.RawMessage, values map[string]string) json.RawMessage {
	var s string
	if json.Unmarshal(v, &s) == nil {
		if nv, ok := values[s]; ok {
			b, _ := json.Marshal(nv)
			return b
		}
		return v
	}
	var items []string
	if json.Unmarshal(v, &items) != nil {
		return v // not a value a map reads: the check under the newer version says so
	}
	for i, it := range items {
		if nv, ok := values[it]; ok {
			items[i] = nv
		}
	}
	b, _ := json.Marshal(items) // duplicates and order: normalizing canonicalizes
	return b
}

// unmapValue translates an enum value, or each item of a set, back by
// back; false when one has no single older value.
func unmapValue(v json.RawMessage, back map[string]string) (json.RawMessage, bool) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		old, ok := back[s]
		if !ok {
			return nil, false
		}
		b, _ := json.Marshal(old)
		return b, true
	}
	var items []string
	if json.Unmarshal(v, &items) != nil {
		return nil, false
	}
	for i, it := range items {
		old, ok := back[it]
		if !ok {
			return nil, false
		}
		items[i] = old
	}
	b, _ := json.Marshal(items)
	return b, true
}

func derive(src json.RawMessage, fd *Field, cases []deriveCase) json.RawMessage {
	if isNull(src) {
		return Null
	}
	if norm, ferr := normalizeTimeless(fd, src); ferr == nil {
		src = norm
	}
	var x float64
	numeric := json.Unmarshal(src, &x) == nil
	for _, c := range cases {
		if c.min != nil && (!numeric || x < *c.min) || c.max != nil && (!numeric || x > *c.max) {
			continue
		}
		if c.equals != nil && !bytes.Equal(c.equals, src) {
			continue
		}
		return c.value
	}
	return Null
}

// oneToOne reports whether every case is an equals (no range, no
// catch-all) and no two give the same value: a derivation Down can undo.
func oneToOne(cases []deriveCase) bool {
	seen := map[string]bool{}
	for _, c := range cases {
		if c.equals == nil || c.min != nil || c.max != nil || seen[string(c.value)] {
			return false
		}
		seen[string(c.value)] = true
	}
	return len(cases) > 0
}

// underive returns the source value whose case derives v (canonical, as
// the cases' values are); false when no case gives v.
func underive(v json.RawMessage, cases []deriveCase) (json.RawMessage, bool) {
	for _, c := range cases {
		if bytes.Equal(c.value, v) {
			return c.equals, true
		}
	}
	return nil, false
}

// normalizeTimeless is Normalize without the bound relative to today: a
// migration is no clock's business (the push checked the date on arrival).
func normalizeTimeless(fd *Field, v json.RawMessage) (json.RawMessage, *FieldError) {
	f := *fd
	f.MaxDaysAhead = nil
	return f.NormalizeAt(bytes.TrimSpace(v), time.Time{})
}

func isNull(v json.RawMessage) bool {
	t := bytes.TrimSpace(v)
	return len(t) == 0 || bytes.Equal(t, Null)
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Origins maps each field of entity that Up can produce in the newer
// version to the field of the older version whose last write it carries:
// a field to itself, a renamed field to its old name, a derived field to
// its source (it changes when its source does). A field only a default
// sets has no origin.
func (m *Migration) Origins(entity string) map[string]string {
	cur := map[string]string{}
	if ff := m.from.Form(entity); ff != nil {
		for _, fd := range ff.Fields {
			cur[fd.Name] = fd.Name
		}
	}
	for _, st := range m.steps {
		if st.entity != entity {
			continue
		}
		switch st.op {
		case StepRename:
			if o, ok := cur[st.field]; ok {
				delete(cur, st.field)
				cur[st.rename] = o
			}
		case StepDerive:
			if o, ok := cur[st.source]; ok {
				cur[st.field] = o
			}
		case StepDrop:
			delete(cur, st.field)
		}
	}
	return cur
}
