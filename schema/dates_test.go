package schema

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// An inspection date lies between the form's min_date and today plus its
// max_days_ahead on the validating clock; outside it the error names the
// field and the range. The bounds are data in the form files.
func TestInspectionDatesArePlausible(t *testing.T) {
	now := time.Date(2026, 11, 20, 23, 30, 0, 0, time.UTC)
	for _, entity := range []string{"housing_inspection", "water_inspection"} {
		form := V1().Form(entity)
		fd := form.Field("inspected_on")
		if fd.MinDate != "2000-01-01" || fd.MaxDaysAhead == nil || *fd.MaxDaysAhead != 1 {
			t.Fatalf("%s.inspected_on declares min_date %q, max_days_ahead %v; want 2000-01-01 and 1", entity, fd.MinDate, fd.MaxDaysAhead)
		}
		for day, ok := range map[string]bool{
			"2000-01-01": true, "2026-11-20": true, "2026-11-21": true,
			"1999-12-31": false, "0000-01-01": false, "0001-01-01": false, "2026-11-22": false, "2099-12-31": false, "9999-12-31": false,
		} {
			_, errs := form.ValidateAt(map[string]json.RawMessage{"inspected_on": json.RawMessage(`"` + day + `"`)}, now)
			if ok && len(errs) > 0 {
				t.Errorf("%s %s: %v, want accepted", entity, day, errs)
			}
			if !ok && (len(errs) != 1 || errs[0].Path != "fields.inspected_on" ||
				errs[0].Message != "must be a date from 2000-01-01 to 2026-11-21 (today plus 1 day)") {
				t.Errorf("%s %s: %v, want one error at fields.inspected_on with the range", entity, day, errs)
			}
		}
	}
}

// A form that declares a date range on a field that is not a date, or a
// min_date that is not a date, does not load.
func TestDateRangeDeclarationsAreChecked(t *testing.T) {
	for name, field := range map[string]string{
		"on text":        `{"name": "note", "type": "text", "policy": "lww", "min_date": "2000-01-01"}`,
		"bad min_date":   `{"name": "day", "type": "date", "policy": "lww", "min_date": "2000-13-01"}`,
		"negative ahead": `{"name": "day", "type": "date", "policy": "lww", "max_days_ahead": -1}`,
	} {
		var f Form
		if err := json.Unmarshal([]byte(`{"entity": "x", "title": "X", "fields": [`+field+`]}`), &f); err != nil {
			t.Fatal(err)
		}
		if err := f.init(); err == nil || !strings.Contains(err.Error(), "min_date") && !strings.Contains(err.Error(), "max_days_ahead") {
			t.Errorf("%s: %v, want the declaration refused", name, err)
		}
	}
}
