package schema

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

func TestV1MatchesTheProtocolFieldTable(t *testing.T) {
	s := V1()
	if s.Version != 1 {
		t.Fatalf("schema_version %d", s.Version)
	}
	// PROTOCOL.md fixes these names, types and policies in v1.
	want := map[string]map[string]string{
		"household": {"village": "manual", "head_name": "lww", "registration_no": "manual", "members": "manual",
			"category": "manual", "status": "manual", "location": "lww"},
		"housing_inspection": {"household_id": "manual", "inspected_on": "lww", "grade": "safety_first",
			"renovation": "lww", "previous_id": "manual", "hazards": "union", "photos": "union"},
		"water_inspection": {"household_id": "manual", "inspected_on": "lww", "source": "lww",
			"quality_ok": "safety_first", "liters_per_person_day": "lww", "fetch_minutes": "lww",
			"reliability_pct": "lww", "photos": "union"},
	}
	for entity, fields := range want {
		f := s.Form(entity)
		if f == nil {
			t.Fatalf("no form %s", entity)
		}
		for name, policy := range fields {
			fd := f.Field(name)
			if fd == nil || string(fd.Policy) != policy {
				t.Errorf("%s.%s: %+v, want policy %s", entity, name, fd, policy)
			}
		}
	}
	required := map[string][]string{"household": {"village", "head_name"},
		"housing_inspection": {"household_id", "inspected_on", "grade"},
		"water_inspection":   {"household_id", "inspected_on"}}
	for entity, names := range required {
		if got := s.Form(entity).RequiredIn(""); strings.Join(got, ",") != strings.Join(names, ",") {
			t.Errorf("%s required %v, want %v", entity, got, names)
		}
	}
}

func TestValidateEveryType(t *testing.T) {
	hh, housing, water := V1().Form("household"), V1().Form("housing_inspection"), V1().Form("water_inspection")
	cases := []struct {
		form  *Form
		field string
		value string
		want  string // canonical value, or "error: <substring>"
	}{
		{hh, "village", `"500240107201"`, `"500240107201"`},
		{hh, "village", `"50024010720"`, "error: 12-digit"},
		{hh, "village", `500240107201`, "error: 12-digit"},
		{hh, "head_name", `"  谭明华 "`, `"谭明华"`},
		{hh, "head_name", `""`, "error: empty"},
		{hh, "head_name", `"` + strings.Repeat("名", 101) + `"`, "error: at most 100"},
		{hh, "members", `4`, `4`},
		{hh, "members", `4.0`, `4`},
		{hh, "members", `4.5`, "error: whole"},
		{hh, "members", `31`, "error: between 1 and 30"},
		{hh, "members", `"4"`, "error: number"},
		{hh, "members", `1e400`, "error: number"},
		{hh, "category", `"disabled_poor"`, `"disabled_poor"`},
		{hh, "category", `"rich"`, "error: one of"},
		{hh, "location", `{"lat": 30.0, "lon": 108.1}`, `{"lat":30,"lon":108.1}`},
		{hh, "location", `{"lat": 91, "lon": 0}`, "error: lat"},
		{hh, "location", `{"lat": 1}`, "error: lon"},
		{hh, "location", `{"lat": 1, "lon": 2, "alt": 3}`, "error: lat"},
		{housing, "grade", `"D"`, `"D"`},
		{housing, "grade", `"d"`, "error: one of A, B, C, D"},
		{housing, "inspected_on", `"2026-11-20"`, `"2026-11-20"`},
		{housing, "inspected_on", `"2026-02-30"`, "error: date"},
		{housing, "hazards", `["walls","roof","walls"]`, `["roof","walls"]`},
		{housing, "hazards", `["termites"]`, "error: item 0"},
		{housing, "hazards", `["roof","walls","foundation","ventilation","heating_insulation"]`, `["foundation","heating_insulation","roof","ventilation","walls"]`},
		{housing, "hazards", `["roof","walls","foundation","ventilation","heating_insulation","roof"]`, `["foundation","heating_insulation","roof","ventilation","walls"]`},
		{housing, "photos", `[` + strings.Repeat(`"`+strings.Repeat("ab", 32)+`",`, 100)[:100*67-1] + `]`, `["` + strings.Repeat("ab", 32) + `"]`},
		{housing, "photos", `[` + strings.Repeat(`"`+strings.Repeat("ab", 32)+`",`, 101)[:101*67-1] + `]`, `["` + strings.Repeat("ab", 32) + `"]`},
		{housing, "photos", distinctDigests(101), "error: at most 100 items"},
		{housing, "photos", `["` + strings.Repeat("AB", 32) + `"]`, `["` + strings.Repeat("ab", 32) + `"]`},
		{housing, "photos", `["abc"]`, "error: SHA-256"},
		{housing, "household_id", `"0193A000-0000-7000-8000-000000000101"`, `"0193a000-0000-7000-8000-000000000101"`},
		{housing, "household_id", `"../etc"`, "error: UUID"},
		{water, "quality_ok", `false`, `false`},
		{water, "quality_ok", `"false"`, "error: true or false"},
		{water, "reliability_pct", `100.0`, `100`},
		{water, "reliability_pct", `-1`, "error: between 0 and 100"},
		{water, "fetch_minutes", `-0.5`, "error: at least 0"},
	}
	for _, c := range cases {
		out, errs := c.form.Validate(map[string]json.RawMessage{c.field: json.RawMessage(c.value)})
		if msg, isErr := strings.CutPrefix(c.want, "error: "); isErr {
			if len(errs) != 1 || errs[0].Path != "fields."+c.field || !strings.Contains(errs[0].Message, msg) {
				t.Errorf("%s.%s=%s: errors %+v, want %q", c.form.Entity, c.field, c.value, errs, msg)
			}
			continue
		}
		if len(errs) != 0 || string(out[c.field]) != c.want {
			t.Errorf("%s.%s=%s: %s %+v, want %s", c.form.Entity, c.field, c.value, out[c.field], errs, c.want)
		}
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	_, errs := V1().Form("household").Validate(map[string]json.RawMessage{
		"members": json.RawMessage(`0`), "colour": json.RawMessage(`"red"`), "head_name": json.RawMessage(`null`)})
	paths := []string{}
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	if strings.Join(paths, ",") != "fields.colour,fields.head_name,fields.members" {
		t.Fatalf("paths %v", paths)
	}
}

func TestRegionRulesAreData(t *testing.T) {
	housing := V1().Form("housing_inspection")
	base := map[string]json.RawMessage{"household_id": json.RawMessage(`"x"`), "inspected_on": json.RawMessage(`"2026-11-20"`), "grade": json.RawMessage(`"B"`)}
	if errs := housing.CheckCreate(base, "500240107201"); len(errs) != 1 || errs[0].Path != "fields.ventilation" {
		t.Errorf("south: %+v", errs)
	}
	if errs := housing.CheckCreate(base, "150422103202"); len(errs) != 1 || errs[0].Path != "fields.heating_insulation" {
		t.Errorf("north: %+v", errs)
	}
	if errs := housing.CheckCreate(base, "820000000000"); len(errs) != 0 {
		t.Errorf("no rule: %+v", errs)
	}
	water := V1().Form("water_inspection")
	if th := water.ThresholdsFor("150422103202"); *th["liters_per_person_day"].Min != 40 || *th["fetch_minutes"].Max != 20 {
		t.Errorf("arid thresholds %+v", th)
	}
	if th := water.ThresholdsFor("500240107201"); *th["liters_per_person_day"].Min != 60 {
		t.Errorf("national thresholds %+v", th)
	}
}

func TestSeverityOrder(t *testing.T) {
	grade := V1().Form("housing_inspection").Field("grade")
	if !(grade.Rank(json.RawMessage(`"D"`)) > grade.Rank(json.RawMessage(`"C"`)) && grade.Rank(json.RawMessage(`"A"`)) == 0) {
		t.Fatal("grade severity A < B < C < D broken")
	}
	q := V1().Form("water_inspection").Field("quality_ok")
	if q.Rank(json.RawMessage(`false`)) <= q.Rank(json.RawMessage(`true`)) {
		t.Fatal("quality_ok: false must be more severe")
	}
}

// TestANewFormIsData loads a form that no code knows about.
func TestANewFormIsData(t *testing.T) {
	fsys := fstest.MapFS{
		"forms/household.json": {Data: []byte(`{"entity":"household","title":"H","scope_field":"village",
			"fields":[{"name":"village","type":"division_code","required":true,"policy":"manual"}]}`)},
		"forms/school_enrolment.json": {Data: []byte(`{"entity":"school_enrolment","title":"Education",
			"parent":{"field":"household_id","entity":"household"},
			"fields":[{"name":"household_id","type":"reference","entity":"household","required":true,"policy":"manual"},
			          {"name":"children_enrolled","type":"integer","min":0,"max":20,"policy":"lww"}]}`)},
	}
	s, err := Load(fsys, "forms")
	if err != nil {
		t.Fatal(err)
	}
	f := s.Form("school_enrolment")
	if _, errs := f.Validate(map[string]json.RawMessage{"children_enrolled": json.RawMessage(`21`)}); len(errs) != 1 {
		t.Fatalf("errors %+v", errs)
	}
	bad := fstest.MapFS{"forms/x.json": {Data: []byte(`{"entity":"x","fields":[{"name":"a","type":"text","policy":"union"}]}`)}}
	if _, err := Load(bad, "forms"); err == nil || !strings.Contains(err.Error(), "union needs a set") {
		t.Fatalf("invalid form accepted: %v", err)
	}
}

// What GET /v1/schema serves parses back into a schema that validates the
// same way (the Go client checks edits with it).
func TestParseTheServedSchema(t *testing.T) {
	b, err := json.Marshal(V1())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != Version || len(s.Forms) != len(V1().Forms) {
		t.Fatalf("parsed %d forms, version %d", len(s.Forms), s.Version)
	}
	_, errs := s.Form("housing_inspection").Validate(map[string]json.RawMessage{"grade": json.RawMessage(`"Z"`)})
	if len(errs) != 1 || errs[0].Path != "fields.grade" {
		t.Fatalf("validation with the parsed schema: %+v", errs)
	}
	if _, err := Parse([]byte(`{"schema_version":1,"forms":[{"entity":""}]}`)); err == nil {
		t.Fatal("a form without entity parsed")
	}
}

// TestTableLabelsAreComplete: the table labels of this build load, every
// column, sheet and "unset" has a zh and an en label, and a file missing
// one is refused.
func TestTableLabelsAreComplete(t *testing.T) {
	tl := Tables()
	if got := tl.Column("households", "", LangZH); got != "户数" {
		t.Errorf("households in zh: %q", got)
	}
	if got := tl.Column("grade", "A (safe)", LangEN); got != "Grade A (safe)" {
		t.Errorf("a per-value header: %q", got)
	}
	if got := tl.Value("reason", "dangerous_house", LangZH); got != "危房未改造" {
		t.Errorf("a reason in zh: %q", got)
	}
	if got := tl.Value("", "unset", LangEN); got != "Unset" {
		t.Errorf("unset in en: %q", got)
	}
	if got := tl.Column("no_such_column", "x", LangZH); got != "no_such_column_x" {
		t.Errorf("an unlabelled column: %q", got)
	}
	for _, bad := range []string{`{"columns": {"households": {"zh": "户数"}}}`, `{"sheets": {"areas": {"en": "Totals"}}}`,
		`{"values": {"unset": {"zh": "未填"}}}`, `{"values": {"reason": []}}`} {
		if _, err := parseTableLabels([]byte(bad)); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}

// distinctDigests is a JSON list of n different SHA-256 digests.
func distinctDigests(n int) string {
	list := make([]string, n)
	for i := range list {
		list[i] = fmt.Sprintf("%q", fmt.Sprintf("%064x", i+1))
	}
	return "[" + strings.Join(list, ",") + "]"
}
