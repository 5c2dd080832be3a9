package schema

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

const testHousehold = `{"entity":"household","title":"H","scope_field":"village",
	"fields":[{"name":"village","type":"division_code","required":true,"policy":"manual"},
	          {"name":"category","type":"enum","values":["poor","other"],"policy":"manual"}]}`

func versionFile(n int, migrations string) []byte {
	return []byte(`{"version":` + string(rune('0'+n)) + `,"published":"2027-01-15","title":{"en":"v"},"migrations":` + migrations + `}`)
}

// The built-in set is version 1 (V1), version 2, the water criterion as
// published with its standards, and version 3, the household's members;
// each version's document parses back.
func TestBuiltInCatalog(t *testing.T) {
	c := BuiltIn()
	if got := c.Versions(); len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("versions %v", got)
	}
	if c.Version(1) != V1() || c.Latest() != c.Version(3) || c.Version(4) != nil || c.Version(0) != nil {
		t.Fatal("V1 is not the built-in set's version 1, or 3 not its latest")
	}
	for _, n := range []int{1, 2, 3} {
		want := "household,housing_inspection,water_inspection"
		if n >= 3 {
			want = "followup_visit,household,housing_inspection,person,water_inspection"
		}
		if got := strings.Join(c.Version(n).Entities(), ","); got != want {
			t.Fatalf("version %d: entities %s", n, got)
		}
		sch, info, err := ParseDocument(c.Document(n))
		if err != nil || info.Version != n || info.Published == "" || sch.Version != n {
			t.Fatalf("version %d: document does not parse back: %v %+v", n, err, info)
		}
		if d := Diff(c.Version(n), sch); len(d) != 0 {
			t.Fatalf("version %d: document differs from the forms: %v", n, d)
		}
		if len(c.Digest(n)) != 64 {
			t.Fatalf("digest %q", c.Digest(n))
		}
	}
	if V1().Standards != nil || c.Latest().Standards.Standard("water_quantity") == nil {
		t.Fatal("version 1 has standards, or version 2 lacks water_quantity")
	}
	sch, _, _ := ParseDocument(c.Document(2))
	if sch.Standards.Standard("water_quantity") == nil {
		t.Fatal("version 2's document lost its standards")
	}
}

// A form set with two versions loads both, numbered by their directories.
func TestLoadCatalogVersions(t *testing.T) {
	fsys := fstest.MapFS{
		"set/README.md":        {Data: []byte("ignored")},
		"set/1/version.json":   {Data: versionFile(1, `[]`)},
		"set/1/household.json": {Data: []byte(testHousehold)},
		"set/2/version.json":   {Data: versionFile(2, `[]`)},
		"set/2/household.json": {Data: []byte(testHousehold)},
		"set/2/school.json": {Data: []byte(`{"entity":"school","title":"S","parent":{"field":"household_id","entity":"household"},
			"fields":[{"name":"household_id","type":"reference","entity":"household","required":true,"policy":"manual"}]}`)},
	}
	c, err := LoadCatalog(fsys, "set")
	if err != nil {
		t.Fatal(err)
	}
	if c.Latest().Version != 2 || c.Version(1).Version != 1 || c.Latest().Form("school") == nil || c.Version(1).Form("school") != nil {
		t.Fatalf("versions %v", c.Versions())
	}
	if d := Diff(c.Version(1), c.Latest()); len(d) != 1 || d[0] != "form school added (1 fields)" {
		t.Fatalf("diff %q", d)
	}
}

// A broken set returns every problem at once, each with its file and JSON
// path, and no catalog.
func TestLoadCatalogListsEveryError(t *testing.T) {
	fsys := fstest.MapFS{
		"set/1/version.json":   {Data: []byte(`{"version":2,"published":"someday"}`)},
		"set/1/household.json": {Data: []byte(testHousehold)},
		"set/1/broken.json":    {Data: []byte("{\"entity\": \"x\",\n \"fields\": [}")},
		"set/1/water.json": {Data: []byte(`{"entity":"water","title":"W","fields":[{"name":"a","type":"text","policy":"lww"}],
			"region_rules":[{"name":"north","prefixes":["1"],"require":["a","no_such_field"]}]}`)},
		"set/1/typo.json": {Data: []byte(`{"entity":"t","title":"T","fields":[{"name":"a","type":"text","policy":"lww","requried":true}]}`)},
		"set/1/retyped.json": {Data: []byte(`{"entity":"r","title":"R","fields":[{"name":"a","type":"text","policy":"lww"},
			{"name":"b","type":"colour","policy":"lww"}]}`)},
		"set/3/version.json":   {Data: versionFile(3, `[]`)},
		"set/3/household.json": {Data: []byte(testHousehold)},
		"set/latest/x.json":    {Data: []byte(`{}`)},
	}
	c, err := LoadCatalog(fsys, "set")
	if c != nil || err == nil {
		t.Fatal("a broken set loaded")
	}
	errs, ok := err.(SetErrors)
	if !ok {
		t.Fatalf("error %T %v", err, err)
	}
	want := []string{
		"latest: $: a version directory",
		"3: $: versions must be consecutive from 1: version 2 is missing",
		"1/version.json: version: must be 1",
		"1/version.json: published: must be a date",
		"1/broken.json: $: invalid JSON at line 2, column 13",
		"1/retyped.json: fields[1].type: field \"b\": unknown type \"colour\"",
		"1/typo.json: fields[0].requried: unknown member",
		"1/water.json: region_rules[0].require[1]: region rule \"north\" requires unknown field \"no_such_field\"",
	}
	text := err.Error()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in\n%s", w, text)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(errs), len(want), text)
	}
}

// A published version is immutable: a set that changed it is refused,
// naming the version and what differs; a published version beyond the
// set's latest is still served.
func TestCatalogWithPublished(t *testing.T) {
	base := fstest.MapFS{
		"set/1/version.json":   {Data: versionFile(1, `[]`)},
		"set/1/household.json": {Data: []byte(testHousehold)},
	}
	c, err := LoadCatalog(base, "set")
	if err != nil {
		t.Fatal(err)
	}
	same, err := c.WithPublished(map[int][]byte{1: c.Document(1)})
	if err != nil || len(same.Versions()) != 1 {
		t.Fatalf("the same version refused: %v", err)
	}

	changed := fstest.MapFS{
		"set/1/version.json":   {Data: versionFile(1, `[]`)},
		"set/1/household.json": {Data: []byte(strings.Replace(testHousehold, `["poor","other"]`, `["poor","other","borderline"]`, 1))},
	}
	c2, err := LoadCatalog(changed, "set")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c2.WithPublished(map[int][]byte{1: c.Document(1)})
	if err == nil || !strings.Contains(err.Error(), "version 1 differs") || !strings.Contains(err.Error(), "household.category: values added: borderline") {
		t.Fatalf("a changed published version accepted: %v", err)
	}

	// Version 2 was published (from another directory); this one has 1 only.
	two := fstest.MapFS{
		"set/1/version.json":   {Data: versionFile(1, `[]`)},
		"set/1/household.json": {Data: []byte(testHousehold)},
		"set/2/version.json":   {Data: versionFile(2, `[]`)},
		"set/2/household.json": {Data: []byte(testHousehold)},
		"set/2/school.json":    {Data: []byte(`{"entity":"school","title":"S","fields":[{"name":"n","type":"integer","policy":"lww"}]}`)},
	}
	c3, err := LoadCatalog(two, "set")
	if err != nil {
		t.Fatal(err)
	}
	served, err := c.WithPublished(map[int][]byte{1: c3.Document(1), 2: c3.Document(2)})
	if err != nil {
		t.Fatal(err)
	}
	if served.Latest().Version != 2 || served.Latest().Form("school") == nil || string(served.Document(2)) != string(c3.Document(2)) {
		t.Fatalf("published version 2 not served: %v", served.Versions())
	}
	if len(c.Versions()) != 1 {
		t.Fatal("WithPublished changed its receiver")
	}
	if _, err := c.WithPublished(map[int][]byte{1: c.Document(1), 3: c3.Document(2)}); err == nil {
		t.Fatal("a gap in the published versions accepted")
	}
}

// The canonical document does not depend on the files' layout.
func TestDocumentIgnoresLayout(t *testing.T) {
	var v any
	if err := json.Unmarshal([]byte(testHousehold), &v); err != nil {
		t.Fatal(err)
	}
	compact, _ := json.Marshal(v)
	a, err := LoadCatalog(fstest.MapFS{"s/1/version.json": {Data: versionFile(1, "[ ]")}, "s/1/h.json": {Data: []byte(testHousehold)}}, "s")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadCatalog(fstest.MapFS{"s/1/version.json": {Data: versionFile(1, "[]")}, "s/1/h.json": {Data: compact}}, "s")
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest(1) != b.Digest(1) {
		t.Fatal("the digest depends on white space")
	}
}

// The migrations fixture (1→2→3) loads as a catalog, and Up chains its
// migrations to the latest version.
func TestCatalogChainsMigrations(t *testing.T) {
	c, err := LoadCatalog(os.DirFS("testdata"), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Versions(); len(got) != 3 {
		t.Fatalf("versions %v", got)
	}
	up, dropped, err := c.Up(1, "water_inspection", map[string]json.RawMessage{
		"liters_per_person_day": json.RawMessage(`55`), "source": json.RawMessage(`"trucked"`), "quality_ok": json.RawMessage(`true`)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := up["liters_per_person_day"]; ok || up["quality_ok"] != nil || len(dropped) != 1 || dropped[0] != "quality_ok" {
		t.Fatalf("up %s dropped %v", up, dropped)
	}
	if _, errs := c.Latest().Form("water_inspection").Validate(up); len(errs) != 0 {
		t.Fatalf("migrated change invalid in the latest version: %+v (%s)", errs, up)
	}
	down, lost := c.Down(1, "water_inspection", up)
	if string(down["liters_per_person_day"]) != "55" || string(down["source"]) != `"trucked"` {
		t.Fatalf("down %s lost %v", down, lost)
	}
	if _, _, err := c.Up(4, "water_inspection", up, false); err == nil {
		t.Fatal("Up from an unknown version")
	}
}

// Origins follows a field through every version: a rename chain to its
// first name, a derived field to its source, a dropped field nowhere, a
// field only a default sets to nothing.
func TestCatalogOrigins(t *testing.T) {
	c, err := LoadCatalog(os.DirFS("testdata"), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	w := c.Origins(1, "water_inspection")
	for name, want := range map[string]string{
		"quantity_lpd": "liters_per_person_day", "quantity_met": "liters_per_person_day",
		"convenience": "fetch_minutes", "source": "source", "fetch_minutes": "fetch_minutes",
	} {
		if w[name] != want {
			t.Errorf("water_inspection %s from v1: origin %q, want %q (%v)", name, w[name], want, w)
		}
	}
	for _, name := range []string{"quality_ok", "liters_per_person_day", "quality_basis"} {
		if o, ok := w[name]; ok {
			t.Errorf("water_inspection %s has origin %q", name, o)
		}
	}
	if got := c.Origins(2, "water_inspection")["quantity_met"]; got != "quantity_lpd" {
		t.Errorf("quantity_met from v2: origin %q", got)
	}
	if got := c.Origins(1, "housing_inspection")["renovation_state"]; got != "renovation" {
		t.Errorf("renovation_state from v1: origin %q", got)
	}
	if _, ok := c.Origins(1, "household")["borderline"]; ok {
		t.Error("a defaulted field has an origin")
	}
	if c.Origins(4, "household") != nil {
		t.Error("origins from an unknown version")
	}
}

// A step that names a field of neither version stops the set, at the
// step's path in its version.json.
func TestLoadCatalogMigrationErrors(t *testing.T) {
	fsys := fstest.MapFS{
		"set/1/version.json":   {Data: versionFile(1, `[]`)},
		"set/1/household.json": {Data: []byte(testHousehold)},
		"set/2/version.json":   {Data: versionFile(2, `[{"op":"rename","entity":"household","field":"no_such","to":"category"}]`)},
		"set/2/household.json": {Data: []byte(testHousehold)},
	}
	_, err := LoadCatalog(fsys, "set")
	if err == nil || !strings.Contains(err.Error(), "2/version.json: migrations[0].field") {
		t.Fatalf("a step naming a missing field accepted: %v", err)
	}
}
