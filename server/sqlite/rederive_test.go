package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestDerivedFieldFollowsItsMergedSource: version 2 of the fixture set
// derives water_inspection.convenience from fetch_minutes (≤ 20 met, else
// not_met). Two tablets edit the same inspections concurrently from
// version 1: tablet a, still on v1, sets fetch_minutes to 10 (convenience,
// derived, stays met), tablet b, on v2, sets fetch_minutes to 30 and
// convenience to not_met, a minute earlier than a. Whichever arrives
// first, lww keeps a's fetch_minutes, and convenience must follow it —
// met — not b's not_met (which, merged on its own, won when a's edit left
// convenience unchanged). The history records convenience, where a's
// change set moved it, as derived by the server from fetch_minutes.
func TestDerivedFieldFollowsItsMergedSource(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	cat := fixtureCatalog(t, 2)
	if _, err := syncproto.OpenCatalog(ctx, s, cat, clock.Now()); err != nil {
		t.Fatal(err)
	}
	push := syncproto.NewPushService(s, syncproto.PushOptions{Catalog: cat, Now: clock.Now})
	a, b := storetest.NewDevice("a"), storetest.NewDevice("b")
	hID, aFirst, bFirst := uuid.NewString(), uuid.NewString(), uuid.NewString()
	t0 := clock.Now()
	checkApplied(t, a.Push(t, push, storetest.Household(hID, "500240107201", t0),
		storetest.Upsert("water_inspection", aFirst, 0, t0, map[string]any{"household_id": hID,
			"inspected_on": t0.Format(time.DateOnly), "source": "well", "fetch_minutes": 5}),
		storetest.Upsert("water_inspection", bFirst, 0, t0, map[string]any{"household_id": hID,
			"inspected_on": t0.Format(time.DateOnly), "source": "well", "fetch_minutes": 5})))
	for _, id := range []string{aFirst, bFirst} {
		if got := string(storetest.MustRecord(t, s, id).Fields["convenience"]); got != `"met"` {
			t.Fatalf("created from v1 with 5 minutes: convenience %s", got)
		}
	}
	clock.Advance(5 * time.Minute)
	aEdit := func(id string) {
		t.Helper()
		checkApplied(t, a.Push(t, push, storetest.Upsert("water_inspection", id, 1, t0.Add(2*time.Minute),
			map[string]any{"fetch_minutes": 10})))
	}
	bEdit := func(id string) {
		t.Helper()
		cs := b.Changeset(storetest.Upsert("water_inspection", id, 1, t0.Add(time.Minute),
			map[string]any{"fetch_minutes": 30, "convenience": "not_met"}))
		cs.SchemaVersion = 2
		resp, err := push.Push(ctx, b.Actor, cs)
		if err != nil {
			t.Fatal(err)
		}
		checkApplied(t, resp)
	}
	aEdit(aFirst)
	bEdit(aFirst)
	bEdit(bFirst)
	aEdit(bFirst)

	for _, id := range []string{aFirst, bFirst} {
		r := storetest.MustRecord(t, s, id)
		if string(r.Fields["fetch_minutes"]) != "10" || string(r.Fields["convenience"]) != `"met"` {
			t.Errorf("%s: fetch_minutes %s, convenience %s; want 10 and met (derived from the merged source)",
				map[string]string{aFirst: "a first", bFirst: "b first"}[id], r.Fields["fetch_minutes"], r.Fields["convenience"])
		}
		if r.Meta["convenience"] != r.Meta["fetch_minutes"] {
			t.Errorf("%s: convenience's metadata %+v is not its source's %+v", id, r.Meta["convenience"], r.Meta["fetch_minutes"])
		}
	}
	// b first: a's change set moved convenience back to met, as the
	// server's derivation from fetch_minutes; the tablet sent no such field.
	log, err := s.History(ctx, bFirst)
	if err != nil {
		t.Fatal(err)
	}
	last := log[len(log)-1]
	c, ok := last.Changes["convenience"]
	if last.DeviceID != a.Actor.DeviceID || !ok || string(c.After) != `"met"` || c.DerivedFrom != "fetch_minutes" {
		t.Errorf("a's version of the b-first inspection: changes %+v by %s; want convenience → met derived_from fetch_minutes", last.Changes, last.DeviceID)
	}
	if _, sent := last.Sent["convenience"]; sent || last.SchemaVersion != 1 {
		t.Errorf("a's version: sent %v in v%d", last.Sent, last.SchemaVersion)
	}
	// The creation from v1 derived it too; b's v2 value is b's own.
	if c := log[0].Changes["convenience"]; c.DerivedFrom != "fetch_minutes" {
		t.Errorf("the v1 creation's convenience %+v is not marked as derived", c)
	}
	if c := log[1].Changes["convenience"]; c.DerivedFrom != "" || string(c.After) != `"not_met"` {
		t.Errorf("b's v2 edit of convenience %+v: want b's own not_met", c)
	}
}
