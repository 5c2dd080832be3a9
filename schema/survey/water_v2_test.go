package survey

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

func waterFacts(id, on string, fields string) InspectionFacts {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(fields), &m); err != nil {
		panic(err)
	}
	return InspectionFacts{ID: id, Entity: "water_inspection", Kind: KindWater, InspectedOn: on, Fields: m}
}

// Under the built-in version 2, coverage counts the water criteria: a
// criterion not met is failing, one not evaluable unrecorded (a migrated v1
// record's quality), per indicator; each village names the standards its
// judgements applied (the water-scarce class in Bairin Left Banner, the
// national value in Shizhu), and so does each relapse case.
func TestCoverageJudgesTheWaterCriteria(t *testing.T) {
	sch := schema.BuiltIn().Latest()
	if got, want := WaterIndicators(sch), []string{"convenience", "quality", "quantity", "reliability"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("indicators %v, want %v", got, want)
	}
	const good = `"quality_ok": true, "quality_basis": "lab_report", "source": "piped_home", "days_without_water": 3`
	households := []*HouseholdInspections{
		// Bairin Left Banner, water-scarce: 25 L meets the class's 20.
		{ID: "b1", Village: "150422101201", Status: "lifted_out", Inspections: []InspectionFacts{
			waterFacts("w1", "2026-11-20", `{`+good+`, "liters_per_person_day": 25}`)}},
		// 19 L does not; lifted out: on the relapse watch with the standard.
		{ID: "b2", Village: "150422101201", Status: "lifted_out", Inspections: []InspectionFacts{
			waterFacts("w2", "2026-11-20", `{`+good+`, "liters_per_person_day": 19}`)}},
		// Shizhu, water-rich: 25 L fails the national 35.
		{ID: "s1", Village: "500240107201", Status: "in_poverty", Inspections: []InspectionFacts{
			waterFacts("w3", "2026-11-20", `{`+good+`, "liters_per_person_day": 25}`)}},
		// A v1 record migrated: no quality basis, a public tap, 0 minutes.
		{ID: "s2", Village: "500240107201", Status: "in_poverty", Inspections: []InspectionFacts{
			waterFacts("w4", "2026-11-20", `{"quality_ok": true, "source": "piped_point", "fetch_minutes": 0, "liters_per_person_day": 40, "reliability_pct": 95}`)}},
		// Far, unreliable, a sensory check of a public tap.
		{ID: "s3", Village: "500240107201", Status: "in_poverty", Inspections: []InspectionFacts{
			waterFacts("w5", "2026-11-20", `{"quality_ok": true, "quality_basis": "sensory_check", "source": "piped_point", "fetch_minutes": 40,
				"distance_horizontal_m": 1200, "distance_vertical_m": 90, "days_without_water": 50, "reliability_pct": 80, "liters_per_person_day": 40}`)}},
	}
	b := NewCoverageBuilder(sch)
	b.AsOf = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var villages []*VillageCoverage
	for _, h := range households {
		done, err := b.Add(h)
		if err != nil {
			t.Fatal(err)
		}
		if done != nil {
			villages = append(villages, done)
		}
	}
	last, sum := b.Finish()
	villages = append(villages, last)

	tot := sum.Totals
	if want := map[string]int{"convenience": 1, "quality": 1, "quantity": 2, "reliability": 1}; !reflect.DeepEqual(tot.WaterFailing, want) {
		t.Errorf("failing %v, want %v", tot.WaterFailing, want)
	}
	if want := map[string]int{"convenience": 0, "quality": 1, "quantity": 0, "reliability": 0}; !reflect.DeepEqual(tot.WaterUnrecorded, want) {
		t.Errorf("unrecorded (not evaluable) %v, want %v", tot.WaterUnrecorded, want)
	}
	if tot.WaterUnsafe != 4 {
		t.Errorf("unsafe %d, want 4", tot.WaterUnsafe)
	}
	quantity := func(v *VillageCoverage) schema.AppliedStandard {
		for _, a := range v.Standards {
			if a.Name == "water_quantity" {
				return a
			}
		}
		return schema.AppliedStandard{}
	}
	if a := quantity(villages[0]); a.Value != 20 || a.Basis != "class water_scarce" || a.Version != "T/CHES 18-2018" || a.Effective != "2019-01-01" {
		t.Errorf("Bairin's quantity standard %+v", a)
	}
	if a := quantity(villages[1]); a.Value != 35 || a.Basis != "national" {
		t.Errorf("Shizhu's quantity standard %+v", a)
	}
	if len(villages[0].Standards) != 6 {
		t.Errorf("Bairin's standards %+v, want the six the criteria compare with", villages[0].Standards)
	}
	rw := villages[0].RelapseWatch
	if len(rw) != 1 || rw[0].ID != "b2" || !reflect.DeepEqual(rw[0].WaterFailing, []string{"quantity"}) || len(rw[0].Standards) != 6 {
		t.Fatalf("relapse watch %+v", rw)
	}
}
