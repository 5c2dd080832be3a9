package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// The older form of the step tests: one field of each kind a step reads.
const visitV1 = `[
 {"name": "name", "type": "text", "required": true, "policy": "lww", "max_length": 20},
 {"name": "count", "type": "integer", "min": 0, "max": 100, "policy": "lww"},
 {"name": "kind", "type": "enum", "values": ["x", "y", "z"], "policy": "lww"},
 {"name": "tags", "type": "set", "values": ["p", "q", "r"], "policy": "union"},
 {"name": "ok", "type": "boolean", "policy": "lww"},
 {"name": "old", "type": "text", "policy": "lww"}]`

// visitSchema builds a schema of one form, visit, with the given fields.
func visitSchema(tb testing.TB, version int, fieldsJSON string) *Schema {
	tb.Helper()
	doc := fmt.Sprintf(`{"schema_version": %d, "forms": [{"entity": "visit", "title": "Visit", "fields": %s}]}`, version, fieldsJSON)
	s, err := Parse([]byte(doc))
	if err != nil {
		tb.Fatalf("schema: %v", err)
	}
	return s
}

// visitV2 is visitV1 with the fields named in drop left out and add
// appended.
func visitV2(tb testing.TB, drop []string, add ...string) *Schema {
	tb.Helper()
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(visitV1), &list); err != nil {
		tb.Fatal(err)
	}
	var kept []string
	for _, f := range list {
		var fd struct{ Name string }
		_ = json.Unmarshal(f, &fd)
		if !contains(drop, fd.Name) {
			kept = append(kept, string(f))
		}
	}
	return visitSchema(tb, 2, "["+strings.Join(append(kept, add...), ",")+"]")
}

func compile(tb testing.TB, from, to *Schema, steps string) *Migration {
	tb.Helper()
	m, err := CompileMigration(from, to, json.RawMessage(steps))
	if err != nil {
		tb.Fatalf("compile %s: %v", steps, err)
	}
	return m
}

func TestMigrationSteps(t *testing.T) {
	v1 := visitSchema(t, 1, visitV1)
	cases := []struct {
		name    string
		to      *Schema
		steps   string
		in      map[string]json.RawMessage
		created bool
		want    map[string]json.RawMessage
		dropped []string
		// down is what Down gives back for want, and lost what it reports.
		down map[string]json.RawMessage
		lost []string
	}{
		{name: "no steps carry every field as it is", to: visitV2(t, nil), steps: `[]`,
			in: fields("name", `"Li"`, "kind", `"y"`), want: fields("name", `"Li"`, "kind", `"y"`),
			down: fields("name", `"Li"`, "kind", `"y"`)},
		{name: "rename moves the value", to: visitV2(t, []string{"old"}, `{"name": "recent", "type": "text", "policy": "lww"}`),
			steps: `[{"op": "rename", "entity": "visit", "field": "old", "to": "recent"}]`,
			in:    fields("old", `"note"`, "count", `3`), want: fields("recent", `"note"`, "count", `3`),
			down: fields("old", `"note"`, "count", `3`)},
		{name: "rename widens an integer to a number", to: visitV2(t, []string{"count"}, `{"name": "amount", "type": "number", "policy": "lww"}`),
			steps: `[{"op": "rename", "entity": "visit", "field": "count", "to": "amount"}]`,
			in:    fields("count", `7`), want: fields("amount", `7`), down: fields("count", `7`)},
		{name: "rename carries a null", to: visitV2(t, []string{"old"}, `{"name": "recent", "type": "text", "policy": "lww"}`),
			steps: `[{"op": "rename", "entity": "visit", "field": "old", "to": "recent"}]`,
			in:    fields("old", `null`), want: fields("recent", `null`), down: fields("old", `null`)},
		{name: "map translates an enum value, one-to-one back",
			to:    visitV2(t, []string{"kind"}, `{"name": "kind", "type": "enum", "values": ["x", "y", "w"], "policy": "lww"}`),
			steps: `[{"op": "map", "entity": "visit", "field": "kind", "values": {"z": "w"}}]`,
			in:    fields("kind", `"z"`), want: fields("kind", `"w"`), down: fields("kind", `"z"`)},
		{name: "map leaves an unmapped value",
			to:    visitV2(t, []string{"kind"}, `{"name": "kind", "type": "enum", "values": ["x", "y", "w"], "policy": "lww"}`),
			steps: `[{"op": "map", "entity": "visit", "field": "kind", "values": {"z": "w"}}]`,
			in:    fields("kind", `"x"`), want: fields("kind", `"x"`), down: fields("kind", `"x"`)},
		{name: "map many-to-one cannot go back",
			to:    visitV2(t, []string{"kind"}, `{"name": "kind", "type": "enum", "values": ["x", "yz"], "policy": "lww"}`),
			steps: `[{"op": "map", "entity": "visit", "field": "kind", "values": {"y": "yz", "z": "yz"}}]`,
			in:    fields("kind", `"y"`), want: fields("kind", `"yz"`), down: fields(), lost: []string{"kind"}},
		{name: "map translates each item of a set, canonical",
			to:    visitV2(t, []string{"tags"}, `{"name": "tags", "type": "set", "values": ["a", "q", "r"], "policy": "union"}`),
			steps: `[{"op": "map", "entity": "visit", "field": "tags", "values": {"p": "a"}}]`,
			in:    fields("tags", `["q","r","p"]`), want: fields("tags", `["a","q","r"]`), down: fields("tags", `["p","q","r"]`)},
		{name: "map folding two items into one keeps one",
			to:    visitV2(t, []string{"tags"}, `{"name": "tags", "type": "set", "values": ["pq", "r"], "policy": "union"}`),
			steps: `[{"op": "map", "entity": "visit", "field": "tags", "values": {"p": "pq", "q": "pq"}}]`,
			in:    fields("tags", `["p","q"]`), want: fields("tags", `["pq"]`), down: fields(), lost: []string{"tags"}},
		{name: "default sets a field a new record lacks", to: visitV2(t, nil, `{"name": "level", "type": "integer", "policy": "lww"}`),
			steps: `[{"op": "default", "entity": "visit", "field": "level", "value": 1}]`,
			in:    fields("name", `"Li"`), created: true, want: fields("name", `"Li"`, "level", `1`), down: fields("name", `"Li"`)},
		{name: "default leaves a change that is no creation", to: visitV2(t, nil, `{"name": "level", "type": "integer", "policy": "lww"}`),
			steps: `[{"op": "default", "entity": "visit", "field": "level", "value": 1}]`,
			in:    fields("count", `2`), want: fields("count", `2`), down: fields("count", `2`)},
		{name: "default fills a null of a new record, keeps a field of the older version",
			to:    visitV2(t, nil),
			steps: `[{"op": "default", "entity": "visit", "field": "kind", "value": "x"}]`,
			in:    fields("kind", `null`), created: true, want: fields("kind", `"x"`), down: fields("kind", `"x"`)},
		{name: "derive by numeric ranges, first match",
			to:    visitV2(t, nil, `{"name": "size", "type": "enum", "values": ["small", "large"], "policy": "lww"}`),
			steps: `[{"op": "derive", "entity": "visit", "field": "size", "from": "count", "cases": [{"max": 10, "value": "small"}, {"min": 10, "value": "large"}]}]`,
			in:    fields("count", `10`), want: fields("count", `10`, "size", `"small"`), down: fields("count", `10`)},
		{name: "derive: min is inclusive",
			to:    visitV2(t, nil, `{"name": "size", "type": "enum", "values": ["small", "large"], "policy": "lww"}`),
			steps: `[{"op": "derive", "entity": "visit", "field": "size", "from": "count", "cases": [{"min": 10, "value": "large"}, {"value": "small"}]}]`,
			in:    fields("count", `10`), want: fields("count", `10`, "size", `"large"`), down: fields("count", `10`)},
		{name: "derive by equals",
			to:    visitV2(t, nil, `{"name": "flag", "type": "boolean", "policy": "lww"}`),
			steps: `[{"op": "derive", "entity": "visit", "field": "flag", "from": "kind", "cases": [{"equals": "z", "value": true}, {"value": false}]}]`,
			in:    fields("kind", `"z"`), want: fields("kind", `"z"`, "flag", `true`), down: fields("kind", `"z"`)},
		{name: "derive: no case matches, null",
			to:    visitV2(t, nil, `{"name": "size", "type": "enum", "values": ["small"], "policy": "lww"}`),
			steps: `[{"op": "derive", "entity": "visit", "field": "size", "from": "count", "cases": [{"max": 10, "value": "small"}]}]`,
			in:    fields("count", `11`), want: fields("count", `11`, "size", `null`), down: fields("count", `11`)},
		{name: "derive: a null source clears",
			to:    visitV2(t, nil, `{"name": "size", "type": "enum", "values": ["small"], "policy": "lww"}`),
			steps: `[{"op": "derive", "entity": "visit", "field": "size", "from": "count", "cases": [{"max": 10, "value": "small"}]}]`,
			in:    fields("count", `null`), want: fields("count", `null`, "size", `null`), down: fields("count", `null`)},
		{name: "derive: no source in the change, nothing derived",
			to:    visitV2(t, nil, `{"name": "size", "type": "enum", "values": ["small"], "policy": "lww"}`),
			steps: `[{"op": "derive", "entity": "visit", "field": "size", "from": "count", "cases": [{"max": 10, "value": "small"}]}]`,
			in:    fields("name", `"Li"`), want: fields("name", `"Li"`), down: fields("name", `"Li"`)},
		{name: "derive from a field then dropped",
			to:    visitV2(t, []string{"count"}, `{"name": "size", "type": "enum", "values": ["small", "large"], "policy": "lww"}`),
			steps: `[{"op": "derive", "entity": "visit", "field": "size", "from": "count", "cases": [{"max": 10, "value": "small"}, {"value": "large"}]}, {"op": "drop", "entity": "visit", "field": "count"}]`,
			in:    fields("count", `50`), want: fields("size", `"large"`), dropped: []string{"count"}, down: fields()},
		{name: "drop takes the value out and names it", to: visitV2(t, []string{"ok"}),
			steps: `[{"op": "drop", "entity": "visit", "field": "ok"}]`,
			in:    fields("ok", `true`, "name", `"Li"`), want: fields("name", `"Li"`), dropped: []string{"ok"}, down: fields("name", `"Li"`)},
		{name: "steps read names after the renames before them",
			to:    visitV2(t, []string{"kind"}, `{"name": "sort", "type": "enum", "values": ["x", "y", "w"], "policy": "lww"}`),
			steps: `[{"op": "rename", "entity": "visit", "field": "kind", "to": "sort"}, {"op": "map", "entity": "visit", "field": "sort", "values": {"z": "w"}}]`,
			in:    fields("kind", `"z"`), want: fields("sort", `"w"`), down: fields("kind", `"z"`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := compile(t, v1, c.to, c.steps)
			got, dropped, err := m.Up("visit", c.in, c.created)
			if err != nil {
				t.Fatalf("Up: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) || !reflect.DeepEqual(dropped, c.dropped) {
				t.Fatalf("Up: got %s dropped %v, want %s dropped %v", show(got), dropped, show(c.want), c.dropped)
			}
			if _, errs := c.to.Form("visit").Validate(got); errs != nil {
				t.Errorf("Up's result is not valid in version 2: %v", errs)
			}
			down, lost := m.Down("visit", got)
			if !reflect.DeepEqual(down, c.down) || !reflect.DeepEqual(lost, c.lost) {
				t.Errorf("Down: got %s lost %v, want %s lost %v", show(down), lost, show(c.down), c.lost)
			}
		})
	}
}

func TestMigrationDownReportsWhatTheOlderVersionLacks(t *testing.T) {
	v1 := visitSchema(t, 1, visitV1)
	v2 := visitV2(t, []string{"kind"},
		`{"name": "sort", "type": "enum", "values": ["x", "y", "z", "new"], "policy": "lww"}`,
		`{"name": "level", "type": "integer", "policy": "lww"}`,
		`{"name": "note", "type": "text", "policy": "lww"}`)
	m := compile(t, v1, v2, `[{"op": "rename", "entity": "visit", "field": "kind", "to": "sort"},
		{"op": "default", "entity": "visit", "field": "level", "value": 1}]`)
	// A record written in version 2: a value version 1's enum lacks, a
	// default edited, a field version 1 lacks, and one that is null.
	down, lost := m.Down("visit", fields("name", `"Li"`, "sort", `"new"`, "level", `2`, "note", `"n"`, "old", `null`))
	if want := fields("name", `"Li"`, "old", `null`); !reflect.DeepEqual(down, want) {
		t.Errorf("down %s, want %s", show(down), show(want))
	}
	if want := []string{"level", "note", "sort"}; !reflect.DeepEqual(lost, want) {
		t.Errorf("lost %v, want %v (named as version 2 names them)", lost, want)
	}
	down, lost = m.Down("visit", fields("level", `1`, "note", `null`))
	if len(down) != 0 || lost != nil {
		t.Errorf("a default left as it is and a null: down %s lost %v, want nothing", show(down), lost)
	}
}

func TestMigrationUpRefusesWhatIsNotOfTheOlderVersion(t *testing.T) {
	v1 := visitSchema(t, 1, visitV1)
	v2 := visitV2(t, []string{"count"}, `{"name": "count", "type": "integer", "min": 0, "max": 10, "policy": "lww"}`)
	m := compile(t, v1, v2, `[]`)
	for _, c := range []struct {
		entity string
		in     map[string]json.RawMessage
		path   string
	}{
		{"visit", fields("nope", `1`), "fields.nope"},
		{"house", fields("count", `1`), "entity"},
		// Valid in version 1 (at most 100), not in version 2 (at most 10).
		{"visit", fields("count", `50`), "fields.count"},
		{"visit", fields("name", `null`), "fields.name"},
	} {
		_, _, err := m.Up(c.entity, c.in, false)
		var merr *MigrationError
		if !errors.As(err, &merr) || len(merr.Errors) != 1 || merr.Errors[0].Path != c.path {
			t.Errorf("Up(%s, %s): %v, want one error at %s", c.entity, show(c.in), err, c.path)
		}
	}
}

func TestCompileMigrationNamesEveryStepError(t *testing.T) {
	v1 := visitSchema(t, 1, visitV1)
	v2 := visitV2(t, nil)
	withSize := visitV2(t, nil, `{"name": "size", "type": "enum", "values": ["small", "large"], "policy": "lww"}`)
	cases := []struct {
		name  string
		to    *Schema
		steps string
		path  string
		msg   string
	}{
		{"steps not a list", v2, `{"op": "drop"}`, "migrations", "list of steps"},
		{"step not an object", v2, `[3]`, "migrations[0]", "object"},
		{"unknown op", v2, `[{"op": "split", "entity": "visit", "field": "name"}]`, "migrations[0].op", `unknown op "split"`},
		{"op missing", v2, `[{"entity": "visit", "field": "name"}]`, "migrations[0].op", "required"},
		{"member the op lacks", v2, `[{"op": "drop", "entity": "visit", "field": "old", "to": "x"}]`, "migrations[0].to", "not a member of a drop step"},
		{"entity missing in a version", v2, `[{"op": "drop", "entity": "house", "field": "old"}]`, "migrations[0].entity", `"house" must be an entity of both`},
		{"field missing", v2, `[{"op": "rename", "entity": "visit", "to": "x"}]`, "migrations[0].field", "required"},
		{"rename of a field the older version lacks", visitV2(t, nil, `{"name": "b", "type": "text", "policy": "lww"}`),
			`[{"op": "rename", "entity": "visit", "field": "a", "to": "b"}]`, "migrations[0].field", `no field "a"`},
		{"rename to a field the newer version lacks", visitV2(t, []string{"old"}),
			`[{"op": "rename", "entity": "visit", "field": "old", "to": "recent"}]`, "migrations[0].to", `no field "recent" in version 2`},
		{"rename onto a field that is there", visitV2(t, []string{"old"}),
			`[{"op": "rename", "entity": "visit", "field": "old", "to": "name"}]`, "migrations[0].to", "already a field"},
		{"rename to another type", visitV2(t, []string{"ok"}, `{"name": "okay", "type": "text", "policy": "lww"}`),
			`[{"op": "rename", "entity": "visit", "field": "ok", "to": "okay"}]`, "migrations[0].to", "type boolean is not text"},
		{"map of a field that is no enum", v2,
			`[{"op": "map", "entity": "visit", "field": "ok", "values": {"true": "false"}}]`, "migrations[0].field", "no enum or set"},
		{"map without values", v2,
			`[{"op": "map", "entity": "visit", "field": "kind", "values": {}}]`, "migrations[0].values", "old value → new value"},
		{"map of an older value that is none", v2,
			`[{"op": "map", "entity": "visit", "field": "kind", "values": {"q": "x"}}]`, "migrations[0].values.q", `"q" is not a value of visit.kind in version 1`},
		{"map to a newer value that is none", v2,
			`[{"op": "map", "entity": "visit", "field": "kind", "values": {"x": "w"}}]`, "migrations[0].values.x", `"w" is not a value of visit.kind in version 2`},
		{"map twice", v2,
			`[{"op": "map", "entity": "visit", "field": "kind", "values": {"x": "y"}}, {"op": "map", "entity": "visit", "field": "kind", "values": {"y": "z"}}]`,
			"migrations[1].field", "mapped already by migrations[0]"},
		{"default of a field the newer version lacks", v2,
			`[{"op": "default", "entity": "visit", "field": "level", "value": 1}]`, "migrations[0].field", `no field "level" in version 2`},
		{"default without a value", v2,
			`[{"op": "default", "entity": "visit", "field": "count"}]`, "migrations[0].value", "required"},
		{"default not valid in the newer version", v2,
			`[{"op": "default", "entity": "visit", "field": "count", "value": 101}]`, "migrations[0].value", "between 0 and 100"},
		{"derive into a field the older version has", v2,
			`[{"op": "derive", "entity": "visit", "field": "kind", "from": "count", "cases": [{"value": "x"}]}]`, "migrations[0].field", "already a field"},
		{"derive into a required field", visitV2(t, nil, `{"name": "size", "type": "enum", "values": ["small"], "required": true, "policy": "lww"}`),
			`[{"op": "derive", "entity": "visit", "field": "size", "from": "count", "cases": [{"value": "small"}]}, {"op": "default", "entity": "visit", "field": "size", "value": "small"}]`,
			"migrations[0].field", "is required in version 2"},
		{"derive from a field that is not there", withSize,
			`[{"op": "derive", "entity": "visit", "field": "size", "from": "weight", "cases": [{"value": "small"}]}]`, "migrations[0].from", `no field "weight"`},
		{"derive without cases", withSize,
			`[{"op": "derive", "entity": "visit", "field": "size", "from": "count", "cases": []}]`, "migrations[0].cases", "non-empty list"},
		{"derive: min of a source that is no number", withSize,
			`[{"op": "derive", "entity": "visit", "field": "size", "from": "kind", "cases": [{"min": 1, "value": "small"}]}]`, "migrations[0].cases[0].min", "numeric source"},
		{"derive: equals not a value of the source", withSize,
			`[{"op": "derive", "entity": "visit", "field": "size", "from": "kind", "cases": [{"equals": "q", "value": "small"}]}]`, "migrations[0].cases[0].equals", "one of x, y, z"},
		{"derive: value not valid for the target", withSize,
			`[{"op": "derive", "entity": "visit", "field": "size", "from": "count", "cases": [{"max": 3, "value": "tiny"}]}]`, "migrations[0].cases[0].value", "one of small, large"},
		{"derive: case without value", withSize,
			`[{"op": "derive", "entity": "visit", "field": "size", "from": "count", "cases": [{"max": 3}]}]`, "migrations[0].cases[0].value", "required"},
		{"derive: min above max", withSize,
			`[{"op": "derive", "entity": "visit", "field": "size", "from": "count", "cases": [{"min": 5, "max": 3, "value": "small"}]}]`, "migrations[0].cases[0].min", "above max"},
		{"derive: unknown member of a case", withSize,
			`[{"op": "derive", "entity": "visit", "field": "size", "from": "count", "cases": [{"below": 5, "value": "small"}]}]`, "migrations[0].cases[0].below", "not a member of a case"},
		{"drop of a field the newer version keeps", v2,
			`[{"op": "drop", "entity": "visit", "field": "old"}]`, "migrations[0].field", "still a field in version 2"},
		{"drop of a field that is not there", visitV2(t, []string{"old"}),
			`[{"op": "drop", "entity": "visit", "field": "old"}, {"op": "drop", "entity": "visit", "field": "old"}]`, "migrations[1].field", `no field "old"`},
		{"a field of the older version no step carries", visitV2(t, []string{"old"}), `[]`, "migrations", "visit.old of version 1 is not in version 2: rename or drop it"},
		{"a field whose type changes without a step", visitV2(t, []string{"ok"}, `{"name": "ok", "type": "text", "policy": "lww"}`), `[]`,
			"migrations", "visit.ok changes from version 1 to 2: type boolean is not text"},
		{"an enum value the newer version lacks, unmapped", visitV2(t, []string{"kind"}, `{"name": "kind", "type": "enum", "values": ["x", "y"], "policy": "lww"}`), `[]`,
			"migrations", `value "z" of visit.kind is not a value in version 2: map it`},
		{"an enum value left out of the map", visitV2(t, []string{"kind"}, `{"name": "kind", "type": "enum", "values": ["x", "w"], "policy": "lww"}`),
			`[{"op": "map", "entity": "visit", "field": "kind", "values": {"z": "w"}}]`, "migrations[0].values", `value "y" of visit.kind is not a value in version 2`},
		{"a newly required field without a default", visitV2(t, nil, `{"name": "level", "type": "integer", "required": true, "policy": "lww"}`), `[]`,
			"migrations", "visit.level is required in version 2 but not in 1: give it a default"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := CompileMigration(v1, c.to, json.RawMessage(c.steps))
			var merr *MigrationError
			if !errors.As(err, &merr) {
				t.Fatalf("err %v, want a *MigrationError", err)
			}
			for _, fe := range merr.Errors {
				if fe.Path == c.path && strings.Contains(fe.Message, c.msg) {
					return
				}
			}
			t.Errorf("errors %v, want one at %s saying %q", merr.Errors, c.path, c.msg)
		})
	}
}

func TestCompileMigrationReturnsEveryErrorAtOnce(t *testing.T) {
	from, _ := fixtureVersion(t, 1)
	to, _ := fixtureVersion(t, 2)
	_, err := CompileMigration(from, to, json.RawMessage(`[
		{"op": "map", "entity": "household", "field": "status", "values": {"relapse_risk": "gone"}},
		{"op": "rename", "entity": "water_inspection", "field": "liters", "to": "quantity_lpd"},
		{"op": "merge", "entity": "water_inspection", "field": "source"},
		{"op": "default", "entity": "water_inspection", "field": "quality_basis", "value": "guessed"},
		{"op": "derive", "entity": "water_inspection", "field": "convenience", "from": "fetch_minutes", "cases": [{"max": 20, "value": "ok"}]},
		{"op": "drop", "entity": "water_inspection", "field": "quality_ok"}]`))
	var merr *MigrationError
	if !errors.As(err, &merr) {
		t.Fatalf("err %v, want a *MigrationError", err)
	}
	var paths []string
	for _, fe := range merr.Errors {
		paths = append(paths, fe.Path)
	}
	want := []string{"migrations[0].values.relapse_risk", "migrations[1].field", "migrations[2].op",
		"migrations[3].value", "migrations[4].cases[0].value"}
	for _, p := range want {
		if !contains(paths, p) {
			t.Errorf("no error at %s in %v", p, merr.Errors)
		}
	}
	// What the broken steps leave undone is named too.
	for _, msg := range []string{"water_inspection.liters_per_person_day of version 1 is not in version 2", `value "trucked" of water_inspection.source`} {
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("%v\nsays nothing of %q", err, msg)
		}
	}
}
