package schema

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The four water criteria of the built-in version 2 (T/CHES 18-2018) on
// cases at each boundary, in a water-rich county (Shizhu, 500240) and a
// water-scarce one (Bairin Left Banner, 150422), with the standard each
// judgement applied.
func TestWaterCriteria(t *testing.T) {
	form := BuiltIn().Latest().Form("water_inspection")
	if form.Role.Criteria["quantity"] != "water_quantity" || len(form.RoleCriteria()) != 4 {
		t.Fatalf("criteria %v", form.Role.Criteria)
	}
	const rich, scarce = "500240107201", "150422101201"
	quantity := func(value float64, basis string) []AppliedStandard {
		return []AppliedStandard{{Name: "water_quantity", Version: "T/CHES 18-2018", Effective: "2019-01-01", Value: value, Basis: basis}}
	}
	for _, c := range []struct {
		name, rule, region string
		fields             string
		want               Verdict
		standards          []AppliedStandard // nil: not checked
	}{
		{"35 L in a water-rich county", "water_quantity", rich, `{"liters_per_person_day": 35}`, Met, quantity(35, "national")},
		{"34.9 L in a water-rich county", "water_quantity", rich, `{"liters_per_person_day": 34.9}`, NotMet, quantity(35, "national")},
		{"20 L in a water-scarce county", "water_quantity", scarce, `{"liters_per_person_day": 20}`, Met, quantity(20, "class water_scarce")},
		{"19.9 L in a water-scarce county", "water_quantity", scarce, `{"liters_per_person_day": 19.9}`, NotMet, quantity(20, "class water_scarce")},
		{"quantity unrecorded", "water_quantity", rich, `{}`, NotEvaluable, quantity(35, "national")},

		{"quality by a lab report, piped", "water_quality", rich, `{"quality_ok": true, "quality_basis": "lab_report", "source": "piped_home"}`, Met, nil},
		{"quality by a sensory check of a well", "water_quality", rich, `{"quality_ok": true, "quality_basis": "sensory_check", "source": "well"}`, Met, nil},
		{"a sensory check of piped water", "water_quality", rich, `{"quality_ok": true, "quality_basis": "sensory_check", "source": "piped_home"}`, NotMet, nil},
		{"a sensory check of a public tap", "water_quality", rich, `{"quality_ok": true, "quality_basis": "sensory_check", "source": "piped_point"}`, NotMet, nil},
		{"a lab report of bad water", "water_quality", rich, `{"quality_ok": false, "quality_basis": "lab_report", "source": "well"}`, NotMet, nil},
		{"good water, basis unrecorded (a v1 record)", "water_quality", rich, `{"quality_ok": true, "source": "piped_point"}`, NotEvaluable, nil},
		{"bad water, basis unrecorded", "water_quality", rich, `{"quality_ok": false, "source": "well"}`, NotMet, nil},

		{"piped into the home", "water_convenience", rich, `{"source": "piped_home"}`, Met, []AppliedStandard{}},
		{"a 20-minute round trip", "water_convenience", rich, `{"source": "well", "fetch_minutes": 20}`, Met, nil},
		{"21 minutes, 800 m", "water_convenience", rich, `{"source": "well", "fetch_minutes": 21, "distance_horizontal_m": 800, "distance_vertical_m": 100}`, Met, nil},
		{"21 minutes, 80 m up", "water_convenience", rich, `{"source": "well", "fetch_minutes": 21, "distance_horizontal_m": 900, "distance_vertical_m": 80}`, Met, nil},
		{"21 minutes, 801 m, 81 m up", "water_convenience", rich, `{"source": "spring", "fetch_minutes": 21, "distance_horizontal_m": 801, "distance_vertical_m": 81}`, NotMet, nil},
		{"21 minutes, distances unrecorded", "water_convenience", rich, `{"source": "piped_point", "fetch_minutes": 21}`, NotEvaluable, nil},

		{"36 days without water", "water_reliability", rich, `{"days_without_water": 36}`, Met, nil},
		{"37 days, 89.9 %", "water_reliability", rich, `{"days_without_water": 37, "reliability_pct": 89.9}`, NotMet, nil},
		{"37 days, 90 %", "water_reliability", rich, `{"days_without_water": 37, "reliability_pct": 90}`, Met, nil},
		{"90 % only (a v1 record)", "water_reliability", rich, `{"reliability_pct": 90}`, Met, nil},
		{"37 days, rate unrecorded", "water_reliability", rich, `{"days_without_water": 37}`, NotEvaluable, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var fields map[string]json.RawMessage
			if err := json.Unmarshal([]byte(c.fields), &fields); err != nil {
				t.Fatal(err)
			}
			j, err := form.Judge(c.rule, Facts{Fields: fields, Region: c.region, Now: day("2026-12-01")})
			if err != nil {
				t.Fatal(err)
			}
			if j.Verdict != c.want {
				t.Fatalf("%s on %s: %s (decided at %s), want %s", c.rule, c.fields, j.Verdict, j.Decided, c.want)
			}
			if c.standards != nil && len(c.standards) > 0 && !reflect.DeepEqual(j.Standards, c.standards) {
				t.Fatalf("standards %+v, want %+v", j.Standards, c.standards)
			}
		})
	}
	// The convenience criterion names its three thresholds, from
	// standards.json, whatever decided it.
	j, _ := form.Judge("water_convenience", Facts{Fields: map[string]json.RawMessage{"source": json.RawMessage(`"piped_home"`)}, Region: rich, Now: day("2026-12-01")})
	var names []string
	for _, a := range j.Standards {
		names = append(names, a.Name+"="+jsonNumber(a.Value))
	}
	if want := []string{"water_distance_horizontal=800", "water_distance_vertical=80", "water_fetch_minutes=20"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("convenience standards %v, want %v", names, want)
	}
}

func jsonNumber(x float64) string { b, _ := json.Marshal(x); return string(b) }

// The fetching time is required unless the water is piped into the home
// (a public tap, what v1's piped becomes, needs it).
func TestWaterFetchTimeRequirement(t *testing.T) {
	form := BuiltIn().Latest().Form("water_inspection")
	for source, fails := range map[string]bool{"well": true, "trucked": true, "piped_home": false, "piped_point": true} {
		errs := form.CheckRules(Facts{Fields: map[string]json.RawMessage{"source": json.RawMessage(`"` + source + `"`)}, Now: day("2026-12-01")}, nil)
		if got := len(errs) == 1 && errs[0].Rule == "fetch_minutes_unless_piped_home" && errs[0].Path == "fields.fetch_minutes"; got != fails {
			t.Errorf("source %s without fetch_minutes: %v", source, errs)
		}
	}
}

// A stored v1 water record migrates to version 2: piped becomes
// piped_point (not known to be into the home), the rest carries over, and
// its quality is not evaluable (no basis recorded) while the other
// criteria judge as before.
func TestWaterRecordMigratesFromV1(t *testing.T) {
	c := BuiltIn()
	v1 := map[string]json.RawMessage{"household_id": json.RawMessage(`"0b7e2c1a-3f4d-4e5a-9b6c-7d8e9f0a1b2c"`), "inspected_on": json.RawMessage(`"2026-11-20"`),
		"source": json.RawMessage(`"piped"`), "quality_ok": json.RawMessage(`true`), "liters_per_person_day": json.RawMessage(`36`),
		"fetch_minutes": json.RawMessage(`0`), "reliability_pct": json.RawMessage(`95`)}
	up, dropped, err := c.Up(1, "water_inspection", v1, true)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("up: %v, dropped %v", err, dropped)
	}
	if string(up["source"]) != `"piped_point"` || string(up["liters_per_person_day"]) != `36` || up["quality_basis"] != nil {
		t.Fatalf("migrated %v", up)
	}
	if _, errs := c.Latest().Form("water_inspection").ValidateAt(up, day("2026-12-01")); len(errs) > 0 {
		t.Fatalf("the migrated record is not valid in version 2: %v", errs)
	}
	form := c.Latest().Form("water_inspection")
	for rule, want := range map[string]Verdict{"water_quality": NotEvaluable, "water_quantity": Met, "water_convenience": Met, "water_reliability": Met} {
		if j, _ := form.Judge(rule, Facts{Fields: up, Region: "500240107201", Now: day("2026-12-01")}); j.Verdict != want {
			t.Errorf("%s: %s, want %s", rule, j.Verdict, want)
		}
	}
	// Down again: piped_point is v1's piped; piped_home cannot be told in v1.
	down, lost := c.Down(1, "water_inspection", up)
	if string(down["source"]) != `"piped"` || len(lost) != 0 {
		t.Fatalf("down %v, lost %v", down, lost)
	}
}
