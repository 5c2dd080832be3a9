package sqlite

import (
	"context"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestStoredV1WaterRecordsMigrateToTheCriterion: water records stored
// under version 1 (a piped supply, a well with bad water) are rewritten
// when the built-in version 2 is published: piped becomes piped_point,
// nothing else moves; the coverage then judges them by T/CHES 18-2018 —
// the piped one's quality not evaluable (no basis recorded), the well's
// not met — and the v1 tablet's pull still reads piped.
func TestStoredV1WaterRecordsMigrateToTheCriterion(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	v1 := schema.BuiltInThrough(1)
	if _, err := syncproto.OpenCatalog(ctx, s, v1, clock.Now()); err != nil {
		t.Fatal(err)
	}
	p1 := syncproto.NewPushService(s, syncproto.PushOptions{Catalog: v1, Now: clock.Now})
	hh, hh2, piped, well := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	tablet := storetest.NewDevice("li.na")
	checkApplied(t, tablet.Push(t, p1, storetest.Household(hh, storetest.SouthVillage, clock.Now()),
		storetest.Household(hh2, storetest.SouthVillage, clock.Now()),
		storetest.Upsert("water_inspection", piped, 0, clock.Now(), map[string]any{"household_id": hh, "inspected_on": "2026-11-20",
			"source": "piped", "quality_ok": true, "liters_per_person_day": 60, "fetch_minutes": 0, "reliability_pct": 97}),
		storetest.Upsert("water_inspection", well, 0, clock.Now(), map[string]any{"household_id": hh2, "inspected_on": "2026-11-20",
			"source": "well", "quality_ok": false, "liters_per_person_day": 40, "fetch_minutes": 8, "reliability_pct": 95})))
	before := storetest.MustRecord(t, s, piped)

	served, err := syncproto.OpenCatalog(ctx, s, schema.BuiltInThrough(2), clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.RecordsSchemaVersion(ctx); err != nil || v != 2 || served.Latest().Version != 2 {
		t.Fatalf("records in version %d (%v), served %v", v, err, served.Versions())
	}
	after := storetest.MustRecord(t, s, piped)
	if string(after.Fields["source"]) != `"piped_point"` || after.Fields["quality_basis"] != nil || after.Version != before.Version {
		t.Fatalf("migrated record %+v (version %d, was %d)", after.Fields, after.Version, before.Version)
	}
	for name, v := range before.Fields {
		if name != "source" && string(after.Fields[name]) != string(v) {
			t.Errorf("field %s: %s, was %s", name, after.Fields[name], v)
		}
	}

	reports := syncproto.NewReportService(s, syncproto.ReportOptions{Schema: served.Latest(), Now: clock.Now})
	var villages []*survey.VillageCoverage
	sum, err := reports.Coverage(ctx, storetest.All, func(v *survey.VillageCoverage) error { villages = append(villages, v); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"convenience": 0, "quality": 1, "quantity": 0, "reliability": 0}; !reflect.DeepEqual(sum.Totals.WaterFailing, want) {
		t.Errorf("failing %v, want %v", sum.Totals.WaterFailing, want)
	}
	if want := map[string]int{"convenience": 0, "quality": 1, "quantity": 0, "reliability": 0}; !reflect.DeepEqual(sum.Totals.WaterUnrecorded, want) {
		t.Errorf("not evaluable %v, want %v", sum.Totals.WaterUnrecorded, want)
	}
	if len(villages) != 1 || len(villages[0].Standards) == 0 {
		t.Errorf("the village names no standard: %+v", villages)
	}

	// Down to version 1 for the v1 tablet: piped again.
	down, lost := served.Down(1, "water_inspection", after.Fields)
	if string(down["source"]) != `"piped"` || len(lost) != 0 {
		t.Errorf("down to v1: %v, lost %v", down, lost)
	}
}
