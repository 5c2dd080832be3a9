package postgres

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestNULCharactersAreKept: a text value holding U+0000, which jsonb
// cannot hold, is stored and read back as on SQLite, and no read that
// looks inside the fields fails on it (the queries cast to jsonb only
// JSON without \u0000): the push, the record, a pull, the household
// stream, a snapshot with the latest inspections, the quarantine list and
// the duplicate lookup.
func TestNULCharactersAreKept(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	p := storetest.NewPushService(s, clock)
	dev := storetest.NewDevice("li.na")
	hh, ins := uuid.NewString(), uuid.NewString()
	name := "谭\x00明华"
	household := storetest.Upsert("household", hh, 0, storetest.T0, map[string]any{"village": storetest.SouthVillage,
		"head_name": name, "registration_no": "CQ-\x00-1", "members": 4, "category": "registered_poor", "status": "in_poverty"})
	bad := storetest.Upsert("housing_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": hh,
		"inspected_on": "2026-11-20", "grade": "Z\x00"}) // quarantined: no such grade
	resp := dev.Push(t, p, household, storetest.HousingInspection(ins, hh, "C", storetest.T0), bad)
	if resp.Results[0].Status != syncproto.StatusApplied || resp.Results[2].Status != syncproto.StatusRejected {
		t.Fatalf("push: %+v", resp.Results)
	}
	// The same registration number again: the duplicate lookup reads it.
	dev.Push(t, p, storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{"village": storetest.SouthVillage,
		"head_name": name, "registration_no": "CQ-\x00-1", "members": 4, "category": "registered_poor", "status": "in_poverty"}))

	rec := storetest.MustRecord(t, s, hh)
	var got string
	if err := json.Unmarshal(rec.Fields["head_name"], &got); err != nil || got != name {
		t.Fatalf("head_name read back as %q (%v), want %q", got, err, name)
	}
	if recs, _ := storetest.PullAll(t, s, storetest.All, syncproto.Cursor{}, 10); len(recs) != 3 {
		t.Fatalf("pull: %d records, want 3", len(recs))
	}
	n := 0
	if _, err := s.HouseholdInspections(ctx, storetest.All, syncproto.HouseholdQuery{}, func(*survey.HouseholdInspections) error {
		n++
		return nil
	}); err != nil || n != 2 {
		t.Fatalf("household stream: %d households, %v", n, err)
	}
	c := storetest.MustSnapshot(t, s, storetest.All, storetest.WithLatest)
	if len(c.Rows) != 2 || c.ByID()[hh].Latest["housing_inspection"] == nil {
		t.Fatalf("snapshot: %d rows, latest of the household %+v", len(c.Rows), c.ByID()[hh].Latest)
	}
	if q, _, err := s.ListQuarantine(ctx, storetest.All, "", 0, 10); err != nil || len(q) != 1 {
		t.Fatalf("quarantine list: %v, %v", q, err)
	}
	if _, err := s.ListDuplicates(ctx, storetest.All, ""); err != nil {
		t.Fatalf("duplicates: %v", err)
	}
	if _, err := s.Conflicts(ctx, ""); err != nil {
		t.Fatalf("conflicts: %v", err)
	}
}
