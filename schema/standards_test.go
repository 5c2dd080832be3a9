package schema

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// testStandards is a standards.json with a class, a regional standard of
// two editions (the second lowers the national value and adds a regional
// one) and a max standard.
const testStandards = `{
 "classes": [{"name": "water_scarce", "labels": {"zh": "缺水地区", "en": "Water-scarce area"}, "source": "a test", "regions": ["150422", "6205"]}],
 "standards": [
  {"name": "water_quantity", "labels": {"zh": "水量", "en": "Quantity"}, "unit": "L/person/day", "direction": "min", "regional": true,
   "editions": [
    {"version": "SL 2004", "effective": "2005-01-01", "source": "the older one", "value": 40, "classes": {"water_scarce": 25}},
    {"version": "T/CHES 18-2018", "effective": "2019-01-01", "source": "the criterion", "value": 35, "classes": {"water_scarce": 20},
     "regional": [{"regions": ["61"], "value": 30, "description": {"zh": "陕西", "en": "Shaanxi"}},
                  {"regions": ["6101"], "value": 28, "description": {"zh": "西安", "en": "Xi'an"}}]}]},
  {"name": "water_fetch_minutes", "labels": {"zh": "取水时间", "en": "Fetching time"}, "unit": "min", "direction": "max",
   "editions": [{"version": "T/CHES 18-2018", "effective": "2019-01-01", "source": "the criterion", "value": 20}]}]}`

func mustStandards(t *testing.T, doc string) *StandardSet {
	t.Helper()
	var s StandardSet
	if err := json.Unmarshal([]byte(doc), &s); err != nil {
		t.Fatal(err)
	}
	if errs := s.check(); len(errs) > 0 {
		t.Fatalf("standards do not check: %v", errs)
	}
	return &s
}

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

// The value of a standard for a region and a date: the edition in effect,
// then its regional value of the longest prefix, else the class's, else
// the national one.
func TestStandardResolution(t *testing.T) {
	s := mustStandards(t, testStandards)
	for _, c := range []struct {
		name, standard, region, on string
		ok                         bool
		want                       AppliedStandard
	}{
		{"before the first edition", "water_quantity", "500240107201", "2004-12-31", false, AppliedStandard{}},
		{"first edition on its first day", "water_quantity", "500240107201", "2005-01-01", true,
			AppliedStandard{Name: "water_quantity", Version: "SL 2004", Effective: "2005-01-01", Value: 40, Basis: "national"}},
		{"first edition, class", "water_quantity", "150422101201", "2018-12-31", true,
			AppliedStandard{Name: "water_quantity", Version: "SL 2004", Effective: "2005-01-01", Value: 25, Basis: "class water_scarce"}},
		{"first edition has no regional value", "water_quantity", "610102001001", "2018-12-31", true,
			AppliedStandard{Name: "water_quantity", Version: "SL 2004", Effective: "2005-01-01", Value: 40, Basis: "national"}},
		{"second edition, national", "water_quantity", "500240107201", "2019-01-01", true,
			AppliedStandard{Name: "water_quantity", Version: "T/CHES 18-2018", Effective: "2019-01-01", Value: 35, Basis: "national"}},
		{"second edition, class by a 4-digit prefix", "water_quantity", "620502001001", "2026-12-01", true,
			AppliedStandard{Name: "water_quantity", Version: "T/CHES 18-2018", Effective: "2019-01-01", Value: 20, Basis: "class water_scarce"}},
		{"second edition, regional", "water_quantity", "610302001001", "2026-12-01", true,
			AppliedStandard{Name: "water_quantity", Version: "T/CHES 18-2018", Effective: "2019-01-01", Value: 30, Basis: "regional 61"}},
		{"second edition, the longest regional prefix", "water_quantity", "610102001001", "2026-12-01", true,
			AppliedStandard{Name: "water_quantity", Version: "T/CHES 18-2018", Effective: "2019-01-01", Value: 28, Basis: "regional 6101"}},
		{"a max standard", "water_fetch_minutes", "150422101201", "2026-12-01", true,
			AppliedStandard{Name: "water_fetch_minutes", Version: "T/CHES 18-2018", Effective: "2019-01-01", Value: 20, Basis: "national"}},
		{"unknown standard", "water_quality", "150422101201", "2026-12-01", false, AppliedStandard{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := s.Resolve(c.standard, c.region, day(c.on))
			if ok != c.ok || got != c.want {
				t.Fatalf("Resolve(%s, %s, %s) = %+v, %v; want %+v, %v", c.standard, c.region, c.on, got, ok, c.want, c.ok)
			}
		})
	}
	// A standard that allows no regional value ignores one (check refuses
	// it; Resolve does not read it).
	s.Standards[0].Regional = false
	if got, _ := s.Resolve("water_quantity", "610102001001", day("2026-12-01")); got.Basis != "national" || got.Value != 35 {
		t.Fatalf("regional value used on a standard without regional: %+v", got)
	}
}

// Every problem of a standards.json, with its file and JSON path, all at
// once, as the catalog reports the forms' problems.
func TestStandardsLoadErrors(t *testing.T) {
	edit := func(from, to string) string {
		if !strings.Contains(testStandards, from) {
			panic("no " + from)
		}
		return strings.Replace(testStandards, from, to, 1)
	}
	for _, c := range []struct {
		name, doc string
		want      []string // "path: message part"
	}{
		{"bad JSON", `{"standards": [`, []string{"$: unexpected EOF"}},
		{"unknown key", edit(`"unit": "min"`, `"unit": "min", "units": "min"`), []string{`standards[1].units: unknown member "units"`}},
		{"a value of the wrong type", edit(`"value": 20}`, `"value": "20"}`), []string{"standards.editions.value: must be float64"}},
		{"no standards", `{"standards": []}`, []string{"standards: must hold at least one standard"}},
		{"unknown class", edit(`"classes": {"water_scarce": 20}`, `"classes": {"water_scarse": 20}`),
			[]string{`standards[0].editions[1].classes.water_scarse: unknown class "water_scarse" (classes: water_scarce)`}},
		{"editions overlap", edit(`"effective": "2005-01-01"`, `"effective": "2019-01-01"`),
			[]string{"standards[0].editions[1].effective: editions[0] takes effect on 2019-01-01 too: editions overlap"}},
		{"editions out of order", edit(`"effective": "2005-01-01"`, `"effective": "2020-01-01"`),
			[]string{"standards[0].editions[1].effective: 2019-01-01 is before editions[0]'s 2020-01-01"}},
		{"a bad date", edit(`"effective": "2005-01-01"`, `"effective": "2005-13-01"`),
			[]string{`standards[0].editions[0].effective: "2005-13-01" is not a date (YYYY-MM-DD)`}},
		{"regional value on a standard that allows none", edit(`"regional": true,`, ``),
			[]string{"standards[0].editions[1].regional: water_quantity allows no regional value (regional is not true)"}},
		{"a bad prefix", edit(`"regions": ["61"]`, `"regions": ["6"]`),
			[]string{`standards[0].editions[1].regional[0].regions[0]: "6" is no division-code prefix`}},
		{"a prefix twice in an edition", edit(`"regions": ["6101"]`, `"regions": ["61"]`),
			[]string{"standards[0].editions[1].regional[1].regions[0]: region 61 has a regional value at standards[0].editions[1].regional[0].regions[0] too"}},
		{"a class without regions", edit(`"regions": ["150422", "6205"]`, `"regions": []`),
			[]string{"classes[0].regions: must name at least one region"}},
		{"missing members", `{"classes": [{"name": "c", "regions": ["15"]}],
			"standards": [{"name": "s", "direction": "up", "editions": [{"effective": "2019-01-01"}]}, {"name": "s", "labels": {"zh": "a", "en": "b"}, "unit": "m", "direction": "max", "editions": []}]}`,
			[]string{"classes[0].labels: needs zh and en", "classes[0].source: is required", "standards[0].labels: needs zh and en",
				"standards[0].unit: is required", `standards[0].direction: must be min or max, not "up"`,
				"standards[0].editions[0].version: is required", "standards[0].editions[0].source: is required",
				"standards[0].editions[0].value: is required", `standards[1].name: "s" is also the name of standards[0]`,
				"standards[1].editions: must hold at least one edition"}},
		{"a regional value without description", edit(`"description": {"zh": "陕西", "en": "Shaanxi"}`, `"description": {"en": "Shaanxi"}`),
			[]string{"standards[0].editions[1].regional[0].description: needs zh and en"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"set/1/version.json":   {Data: versionFile(1, `[]`)},
				"set/1/household.json": {Data: []byte(testHousehold)},
				"set/1/standards.json": {Data: []byte(c.doc)},
			}
			_, err := LoadCatalog(fsys, "set")
			var errs SetErrors
			if !errors.As(err, &errs) {
				t.Fatalf("loads: %v", err)
			}
			if len(errs) != len(c.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(errs), len(c.want), err)
			}
			for i, w := range c.want {
				got := errs[i].Path + ": " + errs[i].Message
				if errs[i].File != "1/standards.json" || !strings.HasPrefix(got, w) {
					t.Errorf("problem %d: %s: %s, want 1/standards.json: %s", i, errs[i].File, got, w)
				}
			}
		})
	}
	// The set itself loads.
	fsys := fstest.MapFS{
		"set/1/version.json":   {Data: versionFile(1, `[]`)},
		"set/1/household.json": {Data: []byte(testHousehold)},
		"set/1/standards.json": {Data: []byte(testStandards)},
	}
	c, err := LoadCatalog(fsys, "set")
	if err != nil {
		t.Fatal(err)
	}
	if c.Latest().Standards.Standard("water_quantity") == nil {
		t.Fatal("standards not loaded")
	}
}

// A regional value stricter than the value its edition gives the region
// otherwise is a warning, not an error: min above, max below; a regional
// value that lowers or equals is none.
func TestStandardWarnings(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		want      []string
	}{
		{"lower is no warning", testStandards, nil},
		{"a min raised above the national value", strings.Replace(testStandards, `"value": 30,`, `"value": 36,`, 1),
			[]string{"standards.json: standards[0].editions[1].regional[0].regions[0]: water_quantity T/CHES 18-2018 in 61 is 36 L/person/day, stricter than the national value 35"}},
		{"a min above the class value, below the national", strings.Replace(strings.Replace(testStandards, `"regions": ["61"]`, `"regions": ["620502"]`, 1), `"value": 30,`, `"value": 25,`, 1),
			[]string{"standards.json: standards[0].editions[1].regional[0].regions[0]: water_quantity T/CHES 18-2018 in 620502 is 25 L/person/day, stricter than the class water_scarce value 20"}},
		{"equal is no warning", strings.Replace(testStandards, `"value": 30,`, `"value": 35,`, 1), nil},
		{"a max lowered", strings.Replace(strings.Replace(testStandards, `"direction": "max",`, `"direction": "max", "regional": true,`, 1),
			`"source": "the criterion", "value": 20}`, `"source": "the criterion", "value": 20, "regional": [{"regions": ["15"], "value": 15, "description": {"zh": "北", "en": "North"}}, {"regions": ["50"], "value": 30, "description": {"zh": "南", "en": "South"}}]}`, 1),
			[]string{"standards.json: standards[1].editions[0].regional[0].regions[0]: water_fetch_minutes T/CHES 18-2018 in 15 is 15 min, stricter than the national value 20"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, w := range mustStandards(t, c.doc).Warnings(StandardsFile) {
				got = append(got, w.String())
			}
			if len(got) != len(c.want) {
				t.Fatalf("warnings %q, want %q", got, c.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Errorf("warning %q, want %q", got[i], c.want[i])
				}
			}
		})
	}
}

// testWaterForm compares with the standards: a criterion of quantity (min)
// and one of the fetching time (max).
const testWaterForm = `{"entity": "water_inspection", "title": "W",
 "parent": {"field": "household_id", "entity": "household"},
 "fields": [{"name": "household_id", "type": "reference", "entity": "household", "required": true, "policy": "manual"},
            {"name": "liters", "type": "number", "policy": "lww"},
            {"name": "minutes", "type": "number", "policy": "lww"},
            {"name": "note", "type": "text", "policy": "lww"}],
 "rules": [
  {"name": "quantity", "description": {"zh": "水量", "en": "Quantity"}, "source": "a test",
   "any_of": [{"field": "liters", "op": ">=", "standard": "water_quantity"}]},
  {"name": "convenience", "description": {"zh": "方便", "en": "Convenience"}, "source": "a test",
   "any_of": [{"field": "minutes", "op": "<=", "standard": "water_fetch_minutes"}]}]}`

func standardsCatalog(t *testing.T, form, standards string) (*Catalog, error) {
	t.Helper()
	fsys := fstest.MapFS{
		"set/1/version.json":          {Data: versionFile(1, `[]`)},
		"set/1/household.json":        {Data: []byte(testHousehold)},
		"set/1/water_inspection.json": {Data: []byte(form)},
	}
	if standards != "" {
		fsys["set/1/standards.json"] = &fstest.MapFile{Data: []byte(standards)}
	}
	return LoadCatalog(fsys, "set")
}

// A judgement names the standard it applied and the edition in effect on
// its date: the same 38 litres meet SL 2004's 40? no — and T/CHES
// 18-2018's 35, yes.
func TestJudgementNamesTheEditionInEffect(t *testing.T) {
	c, err := standardsCatalog(t, testWaterForm, testStandards)
	if err != nil {
		t.Fatal(err)
	}
	form := c.Latest().Form("water_inspection")
	fields := map[string]json.RawMessage{"household_id": json.RawMessage(`"h"`), "liters": json.RawMessage(`38`)}
	for _, x := range []struct {
		on, region string
		verdict    Verdict
		applied    AppliedStandard
	}{
		{"2018-12-31", "500240107201", NotMet, AppliedStandard{Name: "water_quantity", Version: "SL 2004", Effective: "2005-01-01", Value: 40, Basis: "national"}},
		{"2019-01-01", "500240107201", Met, AppliedStandard{Name: "water_quantity", Version: "T/CHES 18-2018", Effective: "2019-01-01", Value: 35, Basis: "national"}},
		{"2019-01-01", "610102001001", Met, AppliedStandard{Name: "water_quantity", Version: "T/CHES 18-2018", Effective: "2019-01-01", Value: 28, Basis: "regional 6101"}},
	} {
		j, err := form.Judge("quantity", Facts{Fields: fields, Region: x.region, AsOf: day(x.on), Now: day("2026-12-01")})
		if err != nil {
			t.Fatal(err)
		}
		if j.Verdict != x.verdict || !reflect.DeepEqual(j.Standards, []AppliedStandard{x.applied}) {
			t.Errorf("as of %s in %s: %s with %+v, want %s with %+v", x.on, x.region, j.Verdict, j.Standards, x.verdict, x.applied)
		}
	}
	// Without AsOf the date is Now's; before any edition the comparison
	// cannot be judged and no standard is named.
	j, _ := form.Judge("quantity", Facts{Fields: fields, Region: "500240107201", Now: day("2018-06-01")})
	if j.Verdict != NotMet || j.Standards[0].Version != "SL 2004" {
		t.Errorf("as of Now: %+v", j)
	}
	j, _ = form.Judge("quantity", Facts{Fields: fields, Region: "500240107201", Now: day("2001-06-01")})
	if j.Verdict != NotEvaluable || len(j.Standards) != 0 {
		t.Errorf("before any edition: %+v", j)
	}
	// A max standard: at most its value.
	for minutes, want := range map[string]Verdict{"20": Met, "20.5": NotMet} {
		fields["minutes"] = json.RawMessage(minutes)
		if j, _ := form.Judge("convenience", Facts{Fields: fields, Region: "150422101201", Now: day("2026-12-01")}); j.Verdict != want {
			t.Errorf("%s minutes: %s, want %s", minutes, j.Verdict, want)
		}
	}
	if got := form.RuleStandards("quantity"); !reflect.DeepEqual(got, []string{"water_quantity"}) {
		t.Errorf("RuleStandards %v", got)
	}
}

// A condition comparing with a standard is checked when the form loads:
// the standard exists, the field is a number, the operator is the
// standard's direction, and it is one right-hand side only.
func TestStandardConditionErrors(t *testing.T) {
	for _, c := range []struct {
		name, from, to, standards string
		want                      string
	}{
		{"unknown standard", `"standard": "water_quantity"`, `"standard": "water_quantiy"`, testStandards,
			`water_inspection.json: rules[0].any_of[0].standard: unknown standard "water_quantiy" (the version's standards.json declares the standards)`},
		{"no standards file", "", "", "",
			`water_inspection.json: rules[0].any_of[0].standard: unknown standard "water_quantity"`},
		{"a text field", `"field": "liters", "op": ">="`, `"field": "note", "op": ">="`, testStandards,
			`water_inspection.json: rules[0].any_of[0].field: note is a text field: op compares number and date fields`},
		{"the wrong direction", `"field": "liters", "op": ">="`, `"field": "liters", "op": "<="`, testStandards,
			`water_inspection.json: rules[0].any_of[0].op: water_quantity is a min standard: a value meets it when >=`},
		{"a value and a standard", `"standard": "water_quantity"`, `"standard": "water_quantity", "value": 3`, testStandards,
			`water_inspection.json: rules[0].any_of[0]: op needs exactly one of value, other, today_plus_days, standard`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := standardsCatalog(t, strings.Replace(testWaterForm, c.from, c.to, 1), c.standards)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant %s", err, c.want)
			}
		})
	}
}
