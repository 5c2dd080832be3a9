package sqlite

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestBuiltInV3MigratesStoredHouseholds: households stored under the
// built-in version 2 are, once version 3 is published, in v3's shape —
// category become the one-element set categories — at the versions they
// had; a v2 tablet's later edit of category arrives as categories; and
// what a v2 tablet pulls down-converts back to category.
func TestBuiltInV3MigratesStoredHouseholds(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	v2, v3 := schema.BuiltInThrough(2), schema.BuiltIn()
	if _, err := syncproto.OpenCatalog(ctx, s, v2, clock.Now()); err != nil {
		t.Fatal(err)
	}
	p2 := syncproto.NewPushService(s, syncproto.PushOptions{Catalog: v2, Now: clock.Now})
	d := storetest.NewDevice("a")
	hID := uuid.NewString()
	household := storetest.Upsert("household", hID, 0, clock.Now(), map[string]any{"village": "500240107201", "head_name": "谭德明",
		"members": 3, "category": "extreme_poverty", "status": "lifted_out"})
	cs := d.Changeset(household)
	cs.SchemaVersion = 2
	if resp, err := p2.Push(ctx, d.Actor, cs); err != nil || resp.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("v2 household: %+v %v", resp, err)
	}
	before := storetest.MustRecord(t, s, hID)

	clock.Advance(time.Hour)
	if _, err := syncproto.OpenCatalog(ctx, s, v3, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RecordsSchemaVersion(ctx); n != 3 || err != nil {
		t.Fatalf("records in version %d (%v)", n, err)
	}
	rec := storetest.MustRecord(t, s, hID)
	if string(rec.Fields["categories"]) != `["extreme_poverty"]` || rec.Fields["category"] != nil || rec.Version != before.Version {
		t.Fatalf("stored household in v3: %s (version %d, was %d)", rec.Fields, rec.Version, before.Version)
	}
	if _, ok := rec.Meta["categories"]; !ok {
		t.Errorf("categories has no per-field metadata: %v", rec.Meta)
	}

	// The v2 tablet, still on version 2, changes the key group.
	clock.Advance(time.Minute)
	p3 := syncproto.NewPushService(s, syncproto.PushOptions{Catalog: v3, Now: clock.Now})
	cs = d.Changeset(storetest.Upsert("household", hID, rec.Version, clock.Now(), map[string]any{"category": "subsistence_allowance"}))
	cs.SchemaVersion = 2
	resp, err := p3.Push(ctx, d.Actor, cs)
	if err != nil || resp.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("v2 edit on a v3 server: %+v %v", resp, err)
	}
	rec = storetest.MustRecord(t, s, hID)
	if string(rec.Fields["categories"]) != `["subsistence_allowance"]` {
		t.Fatalf("after the v2 edit: %s", rec.Fields)
	}
	// What its pull shows it, in version 2.
	down, lost := v3.Down(2, "household", rec.Fields)
	if string(down["category"]) != `"subsistence_allowance"` || len(lost) != 0 {
		t.Fatalf("down to v2: %s lost %v", down, lost)
	}
	if _, lost := v3.Down(2, "household", map[string]json.RawMessage{"categories": json.RawMessage(`["disabled_poor","registered_poor"]`)}); len(lost) != 1 {
		t.Fatalf("two groups down to v2: lost %v, want categories not expressible", lost)
	}
}
