package export_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/export"
)

// TestCoverageTablesOfTheWaterCriteria: under the built-in version 2 the
// coverage tables count the water criteria (quality, quantity,
// convenience, reliability), labelled in zh and en, and a village's row
// ends with the standards its judgements applied, in the language.
func TestCoverageTablesOfTheWaterCriteria(t *testing.T) {
	sch := schema.BuiltIn().Latest()
	applied := []schema.AppliedStandard{
		{Name: "water_fetch_minutes", Version: "T/CHES 18-2018", Effective: "2019-01-01", Value: 20, Basis: "national"},
		{Name: "water_quantity", Version: "T/CHES 18-2018", Effective: "2019-01-01", Value: 20, Basis: "class water_scarce"}}
	counts := survey.CoverageCounts{Households: 2, WithWater: 2, Grades: map[string]int{}, DangerousByRenovation: map[string]int{},
		WaterFailing: map[string]int{"quantity": 1}, WaterUnrecorded: map[string]int{"quality": 1}, WaterUnsafe: 2, Status: map[string]int{}}
	v := &survey.VillageCoverage{Code: village, Township: "500240107", County: "500240", Counts: counts, Standards: applied}
	for _, c := range []struct {
		lang, failing, standards string
	}{
		{export.LangCodes, "water_failing_quantity",
			"water_fetch_minutes=20 min (T/CHES 18-2018, 2019-01-01, national);water_quantity=20 L/person/day (T/CHES 18-2018, 2019-01-01, class water_scarce)"},
		{"zh", "水量·不达标", "单次取水往返时间=20 min (T/CHES 18-2018, 2019-01-01, national);水量=20 L/person/day (T/CHES 18-2018, 2019-01-01, class water_scarce)"},
		{"en", "Failing: Water quantity", "Round trip to fetch water=20 min (T/CHES 18-2018, 2019-01-01, national);Water quantity=20 L/person/day (T/CHES 18-2018, 2019-01-01, class water_scarce)"},
	} {
		l := export.NewLabels(c.lang, sch)
		cov := export.NewCoverageTables(l, register)
		rows := csvOf(t, l, cov.Tables, export.CoverageVillages, func(row export.RowFunc) error { return cov.Village(v, row) })
		header, cells := rows[0], rows[1]
		i := slices.Index(header, c.failing)
		if i < 0 || cells[i] != "1" {
			t.Errorf("%s: no column %q counting 1 in %q", c.lang, c.failing, header)
		}
		if slices.ContainsFunc(header, func(h string) bool { return strings.Contains(h, "quality_ok") }) {
			t.Errorf("%s: a v1 indicator in %q", c.lang, header)
		}
		if got := cells[len(cells)-1]; got != c.standards {
			t.Errorf("%s: standards %q, want %q", c.lang, got, c.standards)
		}
	}
}
