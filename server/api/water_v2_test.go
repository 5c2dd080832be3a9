package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// v2 is a device's change set in schema version 2.
func v2(d *storetest.Device, changes ...syncproto.Change) syncproto.Changeset {
	cs := d.Changeset(changes...)
	cs.SchemaVersion = 2
	return cs
}

// TestWaterCriteriaVerdictIsOneJudgement: under the built-in version 2, a
// water inspection of the water-scarce Bairin Left Banner with 25 L a day
// (the class's 20 met), a sensory check of a public tap (quality not met)
// and no days or rate recorded (reliability not evaluable): the GeoJSON and
// the coverage report give the same verdict, and the coverage names the
// standards applied — the class value of T/CHES 18-2018 — on the village
// and on the relapse case.
func TestWaterCriteriaVerdictIsOneJudgement(t *testing.T) {
	ts := apitest.MustServe(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	hh, water := uuid.NewString(), uuid.NewString()
	ts.MustPush(t, v2(storetest.NewDevice("admin"),
		storetest.Upsert("household", hh, 0, storetest.T0, map[string]any{"village": storetest.NorthVillage, "head_name": "巴特尔", "status": "lifted_out"}),
		storetest.Upsert("water_inspection", water, 0, storetest.T0, map[string]any{"household_id": hh, "inspected_on": "2026-11-20",
			"source": "piped_point", "quality_ok": true, "quality_basis": "sensory_check", "liters_per_person_day": 25, "fetch_minutes": 10})))

	_, body := ts.Snapshot(t, admin, "format=geojson")
	_, props := geojsonFeatures(t, body)
	failures, _ := json.Marshal(props[hh]["water_failures"])
	unrecorded, _ := json.Marshal(props[hh]["water_unrecorded"])
	if props[hh]["water_safe"] != false || string(failures) != `["quality"]` || string(unrecorded) != `["reliability"]` {
		t.Errorf("GeoJSON: water_safe %v, water_failures %s, water_unrecorded %s", props[hh]["water_safe"], failures, unrecorded)
	}

	resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/coverage?region="+storetest.NorthVillage, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("coverage: %d %s", resp.StatusCode, body)
	}
	var cov struct {
		Totals   survey.CoverageCounts    `json:"totals"`
		Villages []survey.VillageCoverage `json:"villages"`
	}
	if err := json.Unmarshal(body, &cov); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"convenience": 0, "quality": 1, "quantity": 0, "reliability": 0}; !reflect.DeepEqual(cov.Totals.WaterFailing, want) {
		t.Errorf("failing %v, want %v", cov.Totals.WaterFailing, want)
	}
	if want := map[string]int{"convenience": 0, "quality": 0, "quantity": 0, "reliability": 1}; !reflect.DeepEqual(cov.Totals.WaterUnrecorded, want) {
		t.Errorf("not evaluable %v, want %v", cov.Totals.WaterUnrecorded, want)
	}
	if len(cov.Villages) != 1 || len(cov.Villages[0].RelapseWatch) != 1 {
		t.Fatalf("villages %+v", cov.Villages)
	}
	v := cov.Villages[0]
	for where, applied := range map[string][]schema.AppliedStandard{"village": v.Standards, "relapse case": v.RelapseWatch[0].Standards} {
		i := slices.IndexFunc(applied, func(a schema.AppliedStandard) bool { return a.Name == "water_quantity" })
		if i < 0 || applied[i] != (schema.AppliedStandard{Name: "water_quantity", Version: "T/CHES 18-2018", Effective: "2019-01-01", Value: 20, Basis: "class water_scarce"}) {
			t.Errorf("%s: standards %+v", where, applied)
		}
	}
}

// TestOlderTabletIsHeldToItsVersionsRequirements: version 2 requires the
// fetching time unless the water is piped into the home. A v1 tablet,
// which knows nothing of it, pushes a well without the time: its change
// migrates and applies (v1 had no such rule). The same record sent in
// version 2 is rejected with the rule's name and quarantined.
func TestOlderTabletIsHeldToItsVersionsRequirements(t *testing.T) {
	ts := apitest.MustServe(t)
	hh := uuid.NewString()
	well := func() syncproto.Change {
		return storetest.Upsert("water_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": hh,
			"inspected_on": "2026-11-20", "source": "well", "quality_ok": true, "liters_per_person_day": 40})
	}
	tablet := storetest.NewDevice("li.na")
	ts.MustPush(t, tablet.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0), well()))

	before := ts.Counts(t)
	resp, body := ts.PushJSON(t, v2(storetest.NewDevice("zhao.lei"), well()))
	var pr syncproto.PushResponse
	if err := json.Unmarshal(body, &pr); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	r := pr.Results[0]
	if r.Status != syncproto.StatusRejected || len(r.Errors) != 1 || r.Errors[0].Rule != "fetch_minutes_unless_piped_home" ||
		r.Errors[0].Path != "fields.fetch_minutes" {
		t.Fatalf("a version 2 well without the fetching time: %+v", r)
	}
	if after := ts.Counts(t); after["quarantine"] != before["quarantine"]+1 || after["records"] != before["records"] {
		t.Fatalf("counts %v -> %v", before, after)
	}
}

// TestPushJudgesAStandardForTheRecordsVillage: a requirement comparing
// with a standard is checked on a push with the standard as it applies in
// the record's village: 25 L meets the water-scarce class's 20 in Bairin
// Left Banner, and fails the national 35 in Shizhu.
func TestPushJudgesAStandardForTheRecordsVillage(t *testing.T) {
	files := fstest.MapFS{}
	for _, name := range []string{"version.json", "household.json", "housing_inspection.json", "water_inspection.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "schema", "forms", "1", name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "water_inspection.json" {
			b = bytes.Replace(b, []byte(`"region_rules": [`), []byte(`"rules": [{"name": "enough_water", "description": {"zh": "水量", "en": "Enough water"},
				"source": "a test", "check": {"field": "liters_per_person_day", "op": ">=", "standard": "water_quantity"}}],
			"region_rules": [`), 1)
		}
		files["set/1/"+name] = &fstest.MapFile{Data: b}
	}
	files["set/1/standards.json"] = &fstest.MapFile{Data: []byte(`{"classes": [{"name": "water_scarce", "labels": {"zh": "缺水", "en": "Scarce"},
		"source": "a test", "regions": ["150422"]}],
		"standards": [{"name": "water_quantity", "labels": {"zh": "水量", "en": "Quantity"}, "unit": "L/person/day", "direction": "min",
		"editions": [{"version": "T/CHES 18-2018", "effective": "2019-01-01", "source": "a test", "value": 35, "classes": {"water_scarce": 20}}]}]}`)}
	set, err := schema.LoadCatalog(files, "set")
	if err != nil {
		t.Fatal(err)
	}
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(c *api.Config) { c.Catalog = set })
	north, south := uuid.NewString(), uuid.NewString()
	water := func(hh string) syncproto.Change {
		return storetest.Upsert("water_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": hh,
			"inspected_on": "2026-11-20", "source": "well", "liters_per_person_day": 25})
	}
	resp, body := ts.PushJSON(t, storetest.NewDevice("admin").Changeset(storetest.Household(north, storetest.NorthVillage, storetest.T0),
		storetest.Household(south, storetest.SouthVillage, storetest.T0), water(north), water(south)))
	var pr syncproto.PushResponse
	if err := json.Unmarshal(body, &pr); err != nil || resp.StatusCode != http.StatusOK || len(pr.Results) != 4 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	if r := pr.Results[2]; r.Status != syncproto.StatusApplied {
		t.Errorf("25 L in Bairin Left Banner: %+v", r)
	}
	if r := pr.Results[3]; r.Status != syncproto.StatusRejected || len(r.Errors) != 1 || r.Errors[0].Rule != "enough_water" {
		t.Errorf("25 L in Shizhu: %+v", r)
	}
}
