package survey

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"

	"github.com/fieldsync/fieldsync/schema"
)

// WaterVerdict is the judgement of one water inspection against the
// standards of its household's region. It is the only one: the coverage
// report, the relapse watch and the snapshots' water_safe all read it.
type WaterVerdict struct {
	// Failing lists the indicators recorded outside their threshold,
	// sorted; empty, not nil, when none.
	Failing []string
	// Unrecorded lists the indicators the inspection does not hold (or
	// holds as something that cannot be judged), sorted; empty, not nil,
	// when none.
	Unrecorded []string
}

// Safe reports whether the water is shown safe: every indicator recorded
// and within its threshold. Safe water is shown, not assumed: an
// unrecorded indicator makes it not safe, though it is not failing.
func (v WaterVerdict) Safe() bool { return len(v.Failing) == 0 && len(v.Unrecorded) == 0 }

// WaterIndicators returns the indicators of the water form's standards,
// national and regional, sorted: the keys of the reports' water counts.
// It returns none when sch has no water form or the form no standards.
func WaterIndicators(sch *schema.Schema) []string {
	seen := map[string]bool{}
	if f := sch.Playing(schema.RoleWaterInspection); f != nil && f.Standards != nil {
		for k := range f.Standards.National {
			seen[k] = true
		}
		for _, rs := range f.Standards.Regional {
			for k := range rs.Thresholds {
				seen[k] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// JudgeWater judges a water inspection's fields against thresholds (the
// form's standards for the household's region, schema.Form.ThresholdsFor).
func JudgeWater(fields map[string]json.RawMessage, thresholds map[string]schema.Threshold) WaterVerdict {
	failing, unrecorded := []string{}, []string{}
	for _, name := range slices.Sorted(maps.Keys(thresholds)) {
		th := thresholds[name]
		raw, ok := fields[name]
		if !ok || len(raw) == 0 || string(raw) == "null" {
			unrecorded = append(unrecorded, name)
			continue
		}
		if fail, known := fails(th, raw); !known {
			unrecorded = append(unrecorded, name)
		} else if fail {
			failing = append(failing, name)
		}
	}
	return WaterVerdict{Failing: failing, Unrecorded: unrecorded}
}

// fails reports whether a value misses the threshold; known is false when
// the value cannot be judged (a number expected and something else held).
func fails(th schema.Threshold, raw json.RawMessage) (fail, known bool) {
	if th.Equals != nil {
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return false, false
		}
		if !reflect.DeepEqual(v, th.Equals) {
			return true, true
		}
	}
	if th.Min != nil || th.Max != nil {
		var x float64
		if json.Unmarshal(raw, &x) != nil {
			return false, false
		}
		if (th.Min != nil && x < *th.Min) || (th.Max != nil && x > *th.Max) {
			return true, true
		}
	}
	return false, true
}
