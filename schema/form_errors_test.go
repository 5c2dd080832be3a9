package schema

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// pathError is one error as the tests compare them: its path and a part
// of its message.
type pathError struct{ path, says string }

// TestFormErrorsAllAtOnce: a form's field, policy and reference errors
// are each reported with the JSON path of the offending value, all at
// once — by Load (each a *FormError) and by LoadCatalog (each a SetError
// of the file) alike.
func TestFormErrorsAllAtOnce(t *testing.T) {
	const household = `{"entity": "household", "title": "H", "scope_field": "village",
	 "fields": [{"name": "village", "type": "division_code", "required": true, "policy": "lww"}]}`
	cases := []struct {
		name   string
		fields string // the fields of the form under test
		extra  string // more members of the form
		want   []pathError
	}{
		{name: "five different errors",
			fields: `{"name": "household_id", "type": "reference", "entity": "household", "required": true, "policy": "manual"},
			 {"name": "grade", "type": "enum", "values": ["A", "B"], "policy": "lwww"},
			 {"name": "kind", "type": "enum", "policy": "lww"},
			 {"name": "school", "type": "reference", "entity": "school", "policy": "manual"},
			 {"name": "note", "type": "colour", "policy": "lww"}`,
			extra: `"parent": {"field": "household", "entity": "household"},
			 "region_rules": [{"name": "north", "prefixes": ["15"], "require": ["grade", "heating"]}]`,
			want: []pathError{
				{"fields[1].policy", `unknown policy "lwww"`},
				{"fields[2].values", "enum without values"},
				{"fields[4].type", `unknown type "colour"`},
				{"region_rules[0].require[1]", `requires unknown field "heating"`},
				{"parent.field", `parent field "household" unknown`},
				{"fields[3].entity", `reference to unknown entity "school"`},
			}},
		{name: "a field's own errors, each at its member",
			fields: `{"name": "household_id", "type": "reference", "entity": "household", "required": true, "policy": "manual"},
			 {"name": "tags", "type": "text", "policy": "union", "min_date": "2000-01-01",
			  "value_labels": {"x": {"en": "X"}}},
			 {"name": "risk", "type": "boolean", "policy": "safety_first", "severity": [false]},
			 {"name": "day", "type": "date", "policy": "lww", "min_date": "2000-13-01", "max_days_ahead": 400}`,
			extra: `"parent": {"field": "household_id", "entity": "household"}`,
			want: []pathError{
				{"fields[1].policy", "union needs a set"},
				{"fields[1].value_labels.x", `value_labels names "x"`},
				{"fields[1].min_date", "are for date fields"},
				{"fields[2].severity", "safety_first needs a severity order"},
				{"fields[3].min_date", `"2000-13-01" is not a date`},
				{"fields[3].max_days_ahead", "must be from 0 to 366"},
			}},
		{name: "names, references and the scope",
			fields: `{"name": "", "type": "text", "policy": "lww"},
			 {"name": "a", "type": "text", "policy": "lww"},
			 {"name": "a", "type": "integer", "policy": "lww"},
			 {"name": "ref", "type": "reference", "policy": "manual"},
			 {"name": "level", "type": "enum", "values": ["low", "high"], "policy": "safety_first", "severity": ["low", "extreme"]}`,
			extra: `"scope_field": "village", "parent": {"field": "a", "entity": "district"}`,
			want: []pathError{
				{"fields[0].name", `invalid name ""`},
				{"fields[2].name", `"a" defined twice (also fields[1])`},
				{"fields[3].entity", "reference without entity"},
				{"fields[4].severity[1]", "severity[1]"},
				{"scope_field", `scope field "village" unknown`},
				{"parent.entity", `parent entity "district" unknown`},
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := fmt.Sprintf(`{"entity": "visit", "title": "V", %s, "fields": [%s]}`, c.extra, c.fields)
			check := func(how string, got []pathError) {
				t.Helper()
				for _, w := range c.want {
					if !slices.ContainsFunc(got, func(g pathError) bool { return g.path == w.path && strings.Contains(g.says, w.says) }) {
						t.Errorf("%s: no error at %s saying %q in %v", how, w.path, w.says, got)
					}
				}
				if len(got) != len(c.want) {
					t.Errorf("%s: %d errors, want %d: %v", how, len(got), len(c.want), got)
				}
			}

			_, err := Load(fstest.MapFS{"forms/household.json": {Data: []byte(household)}, "forms/visit.json": {Data: []byte(form)}}, "forms")
			var got []pathError
			for _, e := range formErrors(err) {
				var fe *FormError
				if !errors.As(e, &fe) || fe.File != "forms/visit.json" {
					t.Fatalf("Load: %T %v, want a *FormError of forms/visit.json", e, e)
				}
				got = append(got, pathError{fe.Path, fe.Message})
			}
			check("Load", got)

			_, err = LoadCatalog(fstest.MapFS{"set/1/version.json": {Data: versionFile(1, `[]`)},
				"set/1/household.json": {Data: []byte(household)}, "set/1/visit.json": {Data: []byte(form)}}, "set")
			var set SetErrors
			if !errors.As(err, &set) {
				t.Fatalf("LoadCatalog: %T %v", err, err)
			}
			got = nil
			for _, e := range set {
				if e.File != "1/visit.json" {
					t.Fatalf("LoadCatalog: an error of %s: %v", e.File, e)
				}
				got = append(got, pathError{e.Path, e.Message})
			}
			check("LoadCatalog", got)
		})
	}
}
