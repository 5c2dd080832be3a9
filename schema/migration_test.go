package schema

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// fixtureVersion loads version n of the form set under
// testdata/migrations (a version directory: the forms and version.json)
// and returns its schema, numbered n, and the steps its version.json
// declares from version n-1.
func fixtureVersion(tb testing.TB, n int) (*Schema, json.RawMessage) {
	tb.Helper()
	dir := "testdata/migrations/" + string(rune('0'+n))
	// The forms without version.json, which Load would read as a form.
	forms := fstest.MapFS{}
	names, err := filepath.Glob(dir + "/*.json")
	if err != nil {
		tb.Fatal(err)
	}
	for _, name := range names {
		if filepath.Base(name) == "version.json" {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		forms[name] = &fstest.MapFile{Data: b}
	}
	s, err := Load(forms, dir)
	if err != nil {
		tb.Fatalf("load %s: %v", dir, err)
	}
	s.Version = n
	b, err := os.ReadFile(dir + "/version.json")
	if err != nil {
		tb.Fatal(err)
	}
	var meta struct {
		Version    int             `json:"version"`
		Migrations json.RawMessage `json:"migrations"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		tb.Fatalf("%s/version.json: %v", dir, err)
	}
	if meta.Version != n {
		tb.Fatalf("%s/version.json: version %d", dir, meta.Version)
	}
	return s, meta.Migrations
}

// fixtureMigrations compiles the fixture's migrations 1→2 and 2→3.
func fixtureMigrations(tb testing.TB) []*Migration {
	tb.Helper()
	var out []*Migration
	prev, _ := fixtureVersion(tb, 1)
	for n := 2; n <= 3; n++ {
		next, steps := fixtureVersion(tb, n)
		m, err := CompileMigration(prev, next, steps)
		if err != nil {
			tb.Fatalf("migration %d→%d: %v", n-1, n, err)
		}
		out = append(out, m)
		prev = next
	}
	return out
}

func fields(kv ...string) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	return m
}

func show(m map[string]json.RawMessage) string {
	b, _ := json.Marshal(m)
	return string(b)
}

func TestFixtureVersionOneIsTheBuiltInForms(t *testing.T) {
	s, steps := fixtureVersion(t, 1)
	for _, f := range V1().Forms {
		a, _ := json.Marshal(f)
		b, _ := json.Marshal(s.Form(f.Entity))
		if string(a) != string(b) {
			t.Errorf("testdata/migrations/1/%s.json differs from schema/forms", f.Entity)
		}
	}
	if strings.TrimSpace(string(steps)) != "[]" {
		t.Errorf("version 1 declares migrations %s", steps)
	}
}

func TestMigrationUpChainedOneToThree(t *testing.T) {
	ms := fixtureMigrations(t)
	up := func(entity string, in map[string]json.RawMessage, created bool) (map[string]json.RawMessage, []string) {
		t.Helper()
		var dropped []string
		for _, m := range ms {
			out, d, err := m.Up(entity, in, created)
			if err != nil {
				t.Fatalf("%s %d→%d: %v", entity, m.From().Version, m.To().Version, err)
			}
			in, dropped = out, append(dropped, d...)
		}
		return in, dropped
	}
	water := fields("household_id", `"0193b7c2-3333-7000-8000-000000000003"`, "inspected_on", `"2026-11-27"`,
		"source", `"trucked"`, "quality_ok", `false`, "liters_per_person_day", `35`, "fetch_minutes", `25`)
	got, dropped := up("water_inspection", water, true)
	want := fields("household_id", `"0193b7c2-3333-7000-8000-000000000003"`, "inspected_on", `"2026-11-27"`,
		"source", `"delivered"`, "quality_basis", `"not_established"`, "quantity_lpd", `35`, "fetch_minutes", `25`,
		"convenience", `"not_met"`, "quantity_met", `false`)
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(dropped, []string{"quality_ok"}) {
		t.Errorf("water 1→3:\n got %s dropped %v\nwant %s dropped [quality_ok]", show(got), dropped, show(want))
	}
	// An edit (not a creation) gets no default.
	got, _ = up("water_inspection", fields("liters_per_person_day", `70`), false)
	if want := fields("quantity_lpd", `70`, "quantity_met", `true`); !reflect.DeepEqual(got, want) {
		t.Errorf("water edit 1→3: got %s, want %s", show(got), show(want))
	}
	got, _ = up("housing_inspection", fields("renovation", `"planned"`, "hazards", `["walls","ventilation","heating_insulation"]`), false)
	if want := fields("renovation_state", `"planned"`, "hazards", `["climate","walls"]`); !reflect.DeepEqual(got, want) {
		t.Errorf("housing 1→3: got %s, want %s", show(got), show(want))
	}
	got, _ = up("household", fields("status", `"relapse_risk"`), true)
	if want := fields("status", `"at_risk"`, "borderline", `false`); !reflect.DeepEqual(got, want) {
		t.Errorf("household 1→3: got %s, want %s", show(got), show(want))
	}
}
