package survey

import (
	"cmp"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// WaterVerdict is the judgement of one water inspection against the
// standards of its household's region. It is the only one: the coverage
// report, the relapse watch and the snapshots' water_safe all read it
// (WaterJudge).
type WaterVerdict struct {
	// Failing lists the indicators recorded outside their threshold, or
	// whose criterion is not met, sorted; empty, not nil, when none.
	Failing []string
	// Unrecorded lists the indicators the inspection does not hold (or
	// holds as something that cannot be judged: a criterion not
	// evaluable), sorted; empty, not nil, when none.
	Unrecorded []string
	// Standards are the published standards the judgement applied (the
	// criteria's, for the household's region and the judgement's date),
	// by name; none for a form judged by its form-level thresholds.
	Standards []schema.AppliedStandard
}

// Safe reports whether the water is shown safe: every indicator recorded
// and within its threshold. Safe water is shown, not assumed: an
// unrecorded indicator makes it not safe, though it is not failing.
func (v WaterVerdict) Safe() bool { return len(v.Failing) == 0 && len(v.Unrecorded) == 0 }

// WaterIndicators returns the indicators the water form is judged by,
// sorted: the keys of the reports' water counts. They are its role's
// criteria (quality, quantity, convenience, reliability) when the role
// declares them, else the fields of its form-level standards, national and
// regional. It returns none when sch has no water form or the form neither.
func WaterIndicators(sch *schema.Schema) []string {
	seen := map[string]bool{}
	f := sch.Playing(schema.RoleWaterInspection)
	if c := f.RoleCriteria(); len(c) > 0 {
		return c
	}
	if f != nil && f.Standards != nil {
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

// WaterJudge judges water inspections by the form playing the water
// inspection in a schema: by its role's criteria, the standards they
// compare with resolved for the household's region and the judgement's
// date; or, for a form without criteria (version 1), by its form-level
// thresholds for the region. It keeps the last region's thresholds, so a
// judge is used by one goroutine.
type WaterJudge struct {
	form       *schema.Form
	indicators []string
	criteria   bool

	region     string
	thresholds map[string]schema.Threshold
}

// NewWaterJudge returns the judge of sch's water form; it judges nothing
// (every verdict safe, no indicator) when sch has none.
func NewWaterJudge(sch *schema.Schema) *WaterJudge {
	f := sch.Playing(schema.RoleWaterInspection)
	return &WaterJudge{form: f, indicators: WaterIndicators(sch), criteria: len(f.RoleCriteria()) > 0}
}

// Indicators are the indicators the judge's verdicts name (WaterIndicators).
func (j *WaterJudge) Indicators() []string { return j.indicators }

// Judge judges one water inspection's fields for a household of region
// (its village's division code) as of the day asOf (UTC; today when zero).
// A criterion not met is failing, one not evaluable is unrecorded.
func (j *WaterJudge) Judge(fields map[string]json.RawMessage, region string, asOf time.Time) WaterVerdict {
	if j.form == nil {
		return WaterVerdict{Failing: []string{}, Unrecorded: []string{}}
	}
	if !j.criteria {
		if j.thresholds == nil || j.region != region {
			j.region, j.thresholds = region, j.form.ThresholdsFor(region)
		}
		return JudgeWater(fields, j.thresholds)
	}
	if asOf.IsZero() {
		asOf = time.Now()
	}
	v := WaterVerdict{Failing: []string{}, Unrecorded: []string{}}
	seen := map[string]bool{}
	for _, ind := range j.indicators {
		jd, err := j.form.Judge(j.form.RoleCriterion(ind), schema.Facts{Fields: fields, Region: region, AsOf: asOf, Now: asOf})
		if err != nil { // the role names criteria of the form: loading checked it
			v.Unrecorded = append(v.Unrecorded, ind)
			continue
		}
		switch jd.Verdict {
		case schema.NotMet:
			v.Failing = append(v.Failing, ind)
		case schema.NotEvaluable:
			v.Unrecorded = append(v.Unrecorded, ind)
		}
		for _, a := range jd.Standards {
			if !seen[a.Name] {
				seen[a.Name] = true
				v.Standards = append(v.Standards, a)
			}
		}
	}
	slices.SortFunc(v.Standards, func(a, b schema.AppliedStandard) int { return cmp.Compare(a.Name, b.Name) })
	return v
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
