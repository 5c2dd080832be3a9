package syncproto

import (
	"testing"
	"time"
)

// A household that moves village takes its inspections along: each is
// moved by a rescope entry of its own (same version, the moving change
// set's id, user, device and times), the inspections of other households
// stay, and a push that does not move the household rescopes nothing.
func TestRescopeInspectionsFollowTheirHousehold(t *testing.T) {
	tx := newMemTx()
	a := Actor{UserID: userWS, DeviceID: devA, AllRegions: true}
	const (
		housing = "0193a000-0000-7000-8000-000000000202"
		water   = "0193a000-0000-7000-8000-000000000203"
		other   = "0193a000-0000-7000-8000-000000000204"
		already = "0193a000-0000-7000-8000-000000000205"
	)
	push(t, tx, a, csID1, 1, t0, household(hhID, south), household(hhID2, south),
		change("housing_inspection", housing, OpUpsert, 0, t0, map[string]any{"household_id": hhID, "grade": "C", "inspected_on": "2026-11-20", "ventilation": "adequate"}),
		change("water_inspection", water, OpUpsert, 0, t0, map[string]any{"household_id": hhID, "inspected_on": "2026-11-20"}),
		change("water_inspection", other, OpUpsert, 0, t0, map[string]any{"household_id": hhID2, "inspected_on": "2026-11-20"}))
	// A new version of the household in the same village moves nothing.
	push(t, tx, a, csID2, 2, t0.Add(time.Minute), change("household", hhID, OpUpsert, 1, t0.Add(time.Minute), map[string]any{"members": 5}))
	if len(tx.rescoped) != 0 {
		t.Fatalf("an edit that keeps the village rescoped %+v", tx.rescoped)
	}
	if tx.records[housing].Version != 1 {
		t.Fatalf("housing inspection at version %d before the move", tx.records[housing].Version)
	}

	// A child already in the new village has nowhere to move.
	tx.records[already] = StoredRecord{Entity: "water_inspection", ID: already, Version: 1, Village: north, Parent: hhID}

	moveAt := t0.Add(2 * time.Minute)
	now := t0.Add(3 * time.Minute)
	resp := push(t, tx, a, csID3, 3, now, change("household", hhID, OpUpsert, 2, moveAt, map[string]any{"village": north}))
	if resp.Results[0].Status != StatusApplied {
		t.Fatalf("move: %+v", resp.Results[0])
	}
	moved := map[string]rescoped{}
	for _, r := range tx.rescoped {
		moved[r.from.ID] = r
	}
	if len(tx.rescoped) != 2 || moved[housing].village != north || moved[water].village != north {
		t.Fatalf("rescoped %+v, want both inspections of the household to %s", tx.rescoped, north)
	}
	for _, id := range []string{housing, water} {
		if from := moved[id].from; from.Village != south || from.Version != 1 {
			t.Errorf("%s moved from %+v, want version 1 in %s", id, from, south)
		}
		if r := tx.records[id]; r.Village != north || r.Version != 1 {
			t.Errorf("%s after the move: village %s version %d, want %s at version 1", id, r.Village, r.Version, north)
		}
	}
	if _, ok := moved[other]; ok || tx.records[other].Village != south {
		t.Errorf("another household's inspection moved: %+v", tx.records[other])
	}
	// The household's version comes first, then one rescope entry per
	// inspection, each a log entry of the moving change set.
	tail := tx.log[len(tx.log)-3:]
	if tail[0].RecordID != hhID || tail[0].Op != "update" {
		t.Fatalf("first entry of the move: %+v", tail[0])
	}
	for _, e := range tail[1:] {
		if e.Op != OpRescope || e.Version != 1 || e.ChangesetID != csID3 || e.UserID != userWS || e.DeviceID != devA ||
			!e.DeviceAt.Equal(moveAt) || !e.ServerAt.Equal(now) || len(e.Changes) != 0 {
			t.Errorf("rescope entry %+v", e)
		}
		if _, ok := moved[e.RecordID]; !ok {
			t.Errorf("rescope entry for %s, which did not move", e.RecordID)
		}
	}
}

// A village change that opens a manual conflict (a stale edit) leaves the
// household where it is, and its inspections with it.
func TestRescopeNotOnAVillageChangeInConflict(t *testing.T) {
	tx := newMemTx()
	a := Actor{UserID: userWS, DeviceID: devA, AllRegions: true}
	b := Actor{UserID: "li.na", DeviceID: devB, AllRegions: true}
	push(t, tx, a, csID1, 1, t0, household(hhID, south),
		change("housing_inspection", insID, OpUpsert, 0, t0, map[string]any{"household_id": hhID, "grade": "C", "inspected_on": "2026-11-20", "ventilation": "adequate"}))
	push(t, tx, a, csID2, 2, t0, change("household", hhID, OpUpsert, 1, t0, map[string]any{"village": "500240107202"}))
	tx.rescoped = nil
	resp := push(t, tx, b, csID3, 1, t0, change("household", hhID, OpUpsert, 1, t0, map[string]any{"village": north}))
	if resp.Results[0].Status != StatusConflict {
		t.Fatalf("stale village change: %+v", resp.Results[0])
	}
	if len(tx.rescoped) != 0 || tx.records[insID].Village != "500240107202" {
		t.Fatalf("a conflicting village change moved %+v; inspection in %s", tx.rescoped, tx.records[insID].Village)
	}
}
