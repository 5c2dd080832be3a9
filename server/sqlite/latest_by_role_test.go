package sqlite

import (
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/export"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// sampledOnForms are the built-in version 1 forms with the water
// inspection's date field named "sampled_on" (and its role saying so):
// the housing appraisal's and the water inspection's date fields differ.
func sampledOnForms(t *testing.T) *schema.Schema {
	t.Helper()
	dir := os.DirFS("../../schema/forms/1")
	src := fstest.MapFS{}
	names, err := fs.Glob(dir, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if name == schema.VersionFile {
			continue
		}
		b, err := fs.ReadFile(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "water_inspection.json" {
			s := strings.Replace(string(b), `{"name": "inspected_on",`, `{"name": "sampled_on",`, 1)
			s = strings.Replace(s, `"date": "inspected_on"`, `"date": "sampled_on"`, 1)
			if strings.Count(s, "sampled_on") != 2 || strings.Contains(s, `"inspected_on"`) {
				t.Fatalf("the water form's date field was not renamed")
			}
			b = []byte(s)
		}
		src["forms/"+path.Base(name)] = &fstest.MapFile{Data: b}
	}
	sch, err := schema.Load(src, "forms")
	if err != nil {
		t.Fatal(err)
	}
	if f := survey.FormsOf(sch); f.WaterDate != "sampled_on" || f.HousingDate != "inspected_on" {
		t.Fatalf("date fields: housing %q, water %q", f.HousingDate, f.WaterDate)
	}
	return sch
}

// TestGeoJSONLatestInspectionByEachRolesDate: the GeoJSON snapshot's
// latest housing appraisal and latest water inspection of a household are
// each chosen by the date field of their own role (role.fields.date), here
// inspected_on and sampled_on: at the head of the change log (the SQL
// lookup) and as of an earlier point (rebuilt in Go).
func TestGeoJSONLatestInspectionByEachRolesDate(t *testing.T) {
	sch := sampledOnForms(t)
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	push := syncproto.NewPushService(s, syncproto.PushOptions{Schema: sch, Now: clock.Now})
	dev := storetest.NewDevice("li.na")
	hh, older, newer := uuid.NewString(), uuid.NewString(), uuid.NewString()
	waterOlder, waterNewer := uuid.NewString(), uuid.NewString()
	day1, day2 := storetest.T0, storetest.T0.Add(48*time.Hour)
	clock.Advance(48 * time.Hour)
	water := func(id, on string) syncproto.Change {
		return storetest.Upsert("water_inspection", id, 0, day1, map[string]any{"household_id": hh,
			"sampled_on": on, "source": "piped", "quality_ok": true, "liters_per_person_day": 80,
			"fetch_minutes": 5, "reliability_pct": 97})
	}
	// The later visits are pushed first: "latest" is by each form's date,
	// not by the order of arrival.
	checkApplied(t, dev.Push(t, push, storetest.Household(hh, storetest.SouthVillage, day1),
		storetest.HousingInspection(newer, hh, "B", day2),
		storetest.HousingInspection(older, hh, "D", day1),
		water(waterNewer, day2.Format(time.DateOnly)),
		water(waterOlder, day1.Format(time.DateOnly))))
	then := storetest.MustHead(t, s)
	// Something after the point, so that an AsOf snapshot rebuilds.
	checkApplied(t, dev.Push(t, push, storetest.Household(uuid.NewString(), storetest.SouthVillage, day1)))

	q := export.SnapshotRequest{Format: export.FormatGeoJSON, Entity: "household"}.Query(sch)
	for _, tc := range []struct {
		name string
		asOf *syncproto.Cursor
	}{{"at the head", nil}, {"as of an earlier point", &then}} {
		q.AsOf = tc.asOf
		got := storetest.MustSnapshot(t, s, storetest.All, q).ByID()[hh].Latest
		if h := got["housing_inspection"]; h == nil || h.ID != newer {
			t.Errorf("%s: latest housing appraisal %+v, want %s (inspected_on %s)", tc.name, h, newer, day2.Format(time.DateOnly))
		}
		w := got["water_inspection"]
		if w == nil || w.ID != waterNewer {
			t.Fatalf("%s: latest water inspection %+v, want %s (sampled_on %s)", tc.name, w, waterNewer, day2.Format(time.DateOnly))
		}
		var on string
		if err := json.Unmarshal(w.Fields["sampled_on"], &on); err != nil || on != day2.Format(time.DateOnly) {
			t.Errorf("%s: the latest water inspection's sampled_on is %s", tc.name, w.Fields["sampled_on"])
		}
	}
}
