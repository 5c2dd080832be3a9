package survey

import (
	"encoding/json"
	"reflect"
	"testing"
	"testing/fstest"

	"github.com/fieldsync/fieldsync/schema"
)

// TestJudgeWater judges recorded, failing and unrecorded indicators, with
// the arid regions' lower quantity: only an inspection recording all four
// within their standard is safe.
func TestJudgeWater(t *testing.T) {
	form := schema.V1().Form("water_inspection")
	raw := func(m map[string]any) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		for k, v := range m {
			out[k], _ = json.Marshal(v)
		}
		return out
	}
	all := []string{"fetch_minutes", "liters_per_person_day", "quality_ok", "reliability_pct"}
	for _, c := range []struct {
		name, village       string
		fields              map[string]any
		failing, unrecorded []string
		safe                bool
	}{
		{"nothing recorded", "500240107201", map[string]any{}, []string{}, all, false},
		{"all met", "500240107201", map[string]any{"quality_ok": true, "liters_per_person_day": 60, "fetch_minutes": 20, "reliability_pct": 90},
			[]string{}, []string{}, true},
		{"45 litres in the south", "500240107201", map[string]any{"quality_ok": true, "liters_per_person_day": 45, "fetch_minutes": 5, "reliability_pct": 95},
			[]string{"liters_per_person_day"}, []string{}, false},
		{"45 litres in the arid north", "150422101201", map[string]any{"quality_ok": true, "liters_per_person_day": 45, "fetch_minutes": 5, "reliability_pct": 95},
			[]string{}, []string{}, true},
		{"one failing, one unrecorded", "500240107201", map[string]any{"quality_ok": false, "liters_per_person_day": 60, "fetch_minutes": 5, "reliability_pct": nil},
			[]string{"quality_ok"}, []string{"reliability_pct"}, false},
		{"a number held as text cannot be judged", "500240107201", map[string]any{"quality_ok": true, "liters_per_person_day": "60", "fetch_minutes": 5, "reliability_pct": 95},
			[]string{}, []string{"liters_per_person_day"}, false},
	} {
		v := JudgeWater(raw(c.fields), form.ThresholdsFor(c.village))
		if !reflect.DeepEqual(v.Failing, c.failing) || !reflect.DeepEqual(v.Unrecorded, c.unrecorded) || v.Safe() != c.safe {
			t.Errorf("%s: failing %v, unrecorded %v, safe %v; want %v, %v, %v", c.name, v.Failing, v.Unrecorded, v.Safe(),
				c.failing, c.unrecorded, c.safe)
		}
	}
}

// TestWaterIndicators: the indicators the reports count are those of the
// water form's standards, national and regional, sorted.
func TestWaterIndicators(t *testing.T) {
	got := WaterIndicators(schema.V1())
	want := []string{"fetch_minutes", "liters_per_person_day", "quality_ok", "reliability_pct"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("indicators %v, want %v", got, want)
	}
	if got := WaterIndicators(&schema.Schema{}); len(got) != 0 {
		t.Fatalf("a schema without a water form: indicators %v, want none", got)
	}
	// An indicator only a regional standard judges is counted too (of the
	// form that plays the water inspection).
	regional, err := schema.Load(fstest.MapFS{"forms/water_inspection.json": {Data: []byte(`{"entity": "water_inspection",
		"role": {"plays": "water_inspection", "fields": {"date": "inspected_on"}},
		"fields": [{"name": "inspected_on", "type": "date", "policy": "lww"},
			{"name": "turbidity_ntu", "type": "number", "policy": "lww"}, {"name": "liters_per_person_day", "type": "number", "policy": "lww"}],
		"standards": {"national": {"liters_per_person_day": {"min": 60}},
			"regional": [{"name": "karst", "prefixes": ["52"], "thresholds": {"turbidity_ntu": {"max": 3}}}]}}`)}}, "forms")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := WaterIndicators(regional), []string{"liters_per_person_day", "turbidity_ntu"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("with a regional indicator: %v, want %v", got, want)
	}
}
