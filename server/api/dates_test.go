package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A pushed inspection dated outside its form's range (before 2000, or
// after the server's today plus one day) is rejected with the path of the
// date and the range, and stored nowhere but the quarantine.
func TestPushRefusesImplausibleInspectionDates(t *testing.T) {
	ts := apitest.MustServe(t) // the server's clock is storetest.T0, 2026-11-20
	d := storetest.NewDevice("li.na")
	hh := uuid.NewString()
	changes := []syncproto.Change{storetest.Household(hh, storetest.SouthVillage, storetest.T0)}
	for _, day := range []string{"2099-12-31", "1999-12-31", "2026-11-21"} {
		changes = append(changes, storetest.Upsert("housing_inspection", uuid.NewString(), 0, storetest.T0,
			map[string]any{"household_id": hh, "grade": "A", "inspected_on": day, "ventilation": "adequate"}))
	}
	resp, body := ts.PushJSON(t, d.Changeset(changes...))
	var pr syncproto.PushResponse
	if err := json.Unmarshal(body, &pr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	for i, want := range []string{"applied", "rejected", "rejected", "applied"} {
		r := pr.Results[i]
		if r.Status != want {
			t.Fatalf("change %d: %+v, want %s", i, r, want)
		}
		if want == "rejected" && (len(r.Errors) != 1 || r.Errors[0].Path != "fields.inspected_on" ||
			!strings.Contains(r.Errors[0].Message, "from 2000-01-01 to 2026-11-21")) {
			t.Fatalf("change %d: errors %+v, want the date's path and range", i, r.Errors)
		}
	}
}
