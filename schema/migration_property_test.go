package schema_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/migrationtest"
	"pgregory.net/rapid"
)

// For random records valid under the older version and random valid steps,
// Up's result is valid under the newer version, and a new record that has
// every field the older version requires has every one the newer requires.
func TestMigrationUpIsValidInTheNewerVersion(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := migrationtest.DrawMigration(t, schema.V1())
		entity := rapid.SampledFrom(d.From.Entities()).Draw(t, "entity")
		created := rapid.Bool().Draw(t, "created")
		in := migrationtest.DrawRecord(t, d.From.Form(entity), created)
		out, _, err := d.Migration.Up(entity, in, created)
		if err != nil {
			t.Fatalf("steps %s: Up(%v): %v", d.Steps, in, err)
		}
		norm, errs := d.To.Form(entity).Validate(out)
		if errs != nil {
			t.Fatalf("steps %s: Up(%v) = %v, not valid: %v", d.Steps, in, out, errs)
		}
		if !reflect.DeepEqual(norm, out) {
			t.Fatalf("Up's result %v is not canonical (%v)", out, norm)
		}
		if created && d.From.Form(entity).CheckCreate(in, "") == nil {
			if errs := d.To.Form(entity).CheckCreate(out, ""); errs != nil {
				t.Fatalf("steps %s: a new record %v becomes %v, lacking %v", d.Steps, in, out, errs)
			}
		}
	})
}

// Down(Up(x)) is x but for the fields that do not survive: those dropped
// and those whose value a map folded together with another; exactly those
// folded are reported as not expressible.
func TestMigrationDownUndoesUp(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := migrationtest.DrawMigration(t, schema.V1())
		entity := rapid.SampledFrom(d.From.Entities()).Draw(t, "entity")
		created := rapid.Bool().Draw(t, "created")
		in := migrationtest.DrawRecord(t, d.From.Form(entity), created)
		up, dropped, err := d.Migration.Up(entity, in, created)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]json.RawMessage{}
		var lost, wantDropped []string
		for name, v := range in {
			if slices.Contains(d.Dropped[entity], name) {
				wantDropped = append(wantDropped, name)
				continue
			}
			if folded := d.Folded[entity][name]; folded != nil && holdsAny(up[name], folded) {
				lost = append(lost, name)
				continue
			}
			want[name] = v
		}
		sort.Strings(wantDropped)
		if !slices.Equal(dropped, wantDropped) {
			t.Fatalf("dropped %v, want %v", dropped, wantDropped)
		}
		down, gotLost := d.Migration.Down(entity, up)
		sort.Strings(lost)
		if !reflect.DeepEqual(down, want) || !slices.Equal(gotLost, lost) {
			t.Fatalf("steps %s:\n      x %v\n  Up(x) %v\nDown(…) %v lost %v\n   want %v lost %v", d.Steps, in, up, down, gotLost, want, lost)
		}
	})
}

// holdsAny reports whether an enum value, or a set, holds one of values.
func holdsAny(v json.RawMessage, values []string) bool {
	for _, s := range values {
		b, _ := json.Marshal(s)
		if bytes.Equal(v, b) || bytes.Contains(v, b) && bytes.HasPrefix(v, []byte("[")) {
			return true
		}
	}
	return false
}
