package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// supervised is a server with a worker and a supervisor in the south, a
// supervisor in the north, and helpers to act as them.
type supervised struct {
	*apitest.Server
	worker, other       *storetest.Device
	workerTok, otherTok string
	supSouth, supNorth  string
}

func mustSupervise(t *testing.T) *supervised {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker.a", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "worker.b", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup.south", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "sup.north", syncproto.RoleSupervisor, "150422")
	s := &supervised{Server: ts, worker: storetest.NewDevice("worker.a"), other: storetest.NewDevice("worker.b")}
	s.workerTok = ts.Login(t, "worker.a", s.worker.Actor.DeviceID)
	s.otherTok = ts.Login(t, "worker.b", s.other.Actor.DeviceID)
	s.supSouth = ts.Login(t, "sup.south", uuid.NewString())
	s.supNorth = ts.Login(t, "sup.north", uuid.NewString())
	return s
}

func (s *supervised) push(t *testing.T, tok string, d *storetest.Device, changes ...syncproto.Change) syncproto.PushResponse {
	t.Helper()
	body, _ := json.Marshal(d.Changeset(changes...))
	resp, b := s.DoAs(t, tok, "POST", "/v1/sync/push", "application/json", body)
	if resp.StatusCode != 200 {
		t.Fatalf("push: %d %s", resp.StatusCode, b)
	}
	var pr syncproto.PushResponse
	_ = json.Unmarshal(b, &pr)
	return pr
}

func (s *supervised) getJSON(t *testing.T, tok, path string, status int, v any) {
	t.Helper()
	resp, b := s.DoAs(t, tok, "GET", path, "", nil)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v %s", path, err, b)
		}
	}
}

func (s *supervised) postJSON(t *testing.T, tok, path string, body any, status int, v any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, out := s.DoAs(t, tok, "POST", path, "application/json", b)
	if resp.StatusCode != status {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			t.Fatalf("POST %s: %v %s", path, err, out)
		}
	}
}

type conflictList struct {
	Conflicts []struct {
		ConflictID string          `json:"conflict_id"`
		RecordID   string          `json:"record_id"`
		Field      string          `json:"field"`
		State      string          `json:"state"`
		Kept       json.RawMessage `json:"kept"`
		Incoming   json.RawMessage `json:"incoming"`
	} `json:"conflicts"`
	Cursor  string `json:"cursor"`
	HasMore bool   `json:"has_more"`
}

func TestConflictQueueAndResolution(t *testing.T) {
	s := mustSupervise(t)
	hh := uuid.NewString()
	s.push(t, s.workerTok, s.worker, storetest.Household(hh, storetest.SouthVillage, storetest.T0))
	s.push(t, s.workerTok, s.worker, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 6}))
	pr := s.push(t, s.otherTok, s.other, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 7}))
	if pr.Results[0].Status != "conflict" {
		t.Fatalf("%+v", pr.Results[0])
	}
	var list conflictList
	s.getJSON(t, s.supSouth, "/v1/conflicts?state=open&region=500240107", 200, &list)
	if len(list.Conflicts) != 1 || list.Conflicts[0].Field != "members" || string(list.Conflicts[0].Incoming) != "7" {
		t.Fatalf("open conflicts %+v", list)
	}
	id := list.Conflicts[0].ConflictID
	var north conflictList
	s.getJSON(t, s.supNorth, "/v1/conflicts", 200, &north)
	if len(north.Conflicts) != 0 {
		t.Fatalf("the north sees the south's conflicts: %+v", north)
	}
	s.getJSON(t, s.supNorth, "/v1/conflicts?region=500240", 403, nil)
	s.getJSON(t, s.workerTok, "/v1/conflicts", 403, nil)
	s.postJSON(t, s.supNorth, "/v1/conflicts/"+id+"/resolve", map[string]any{"choose": "incoming"}, 403, nil)
	s.postJSON(t, s.supSouth, "/v1/conflicts/"+id+"/resolve", map[string]any{"value": 99}, 422, nil)
	s.postJSON(t, s.supSouth, "/v1/conflicts/"+id+"/resolve", map[string]any{}, 422, nil)

	// A tablet's cursor before the resolution.
	var page syncproto.PullResponse
	s.getJSON(t, s.workerTok, "/v1/sync/pull", 200, &page)

	var res struct {
		Conflict map[string]any   `json:"conflict"`
		Record   syncproto.Record `json:"record"`
	}
	s.postJSON(t, s.supSouth, "/v1/conflicts/"+id+"/resolve", map[string]any{"choose": "incoming", "note": "counted on site"}, 200, &res)
	if res.Conflict["state"] != "resolved" || string(res.Record.Fields["members"]) != "7" || res.Record.Version != 3 {
		t.Fatalf("resolution %+v", res)
	}
	s.postJSON(t, s.supSouth, "/v1/conflicts/"+id+"/resolve", map[string]any{"value": 5}, 409, nil)

	// The resolution is in the history, made by the supervisor.
	var hist struct {
		Versions []struct {
			Version int64  `json:"version"`
			Op      string `json:"op"`
			User    string `json:"user"`
		} `json:"versions"`
	}
	s.getJSON(t, s.supSouth, "/v1/records/household/"+hh+"/history", 200, &hist)
	last := hist.Versions[len(hist.Versions)-1]
	if last.Op != "resolve" || last.User != "sup.south" || last.Version != 3 {
		t.Fatalf("history %+v", hist)
	}
	// And reaches the tablet through pull.
	var next syncproto.PullResponse
	s.getJSON(t, s.workerTok, "/v1/sync/pull?cursor="+page.Cursor, 200, &next)
	if len(next.Records) != 1 || next.Records[0].ID != hh || next.Records[0].Version != 3 {
		t.Fatalf("pull after the resolution %+v", next)
	}
	s.getJSON(t, s.supSouth, "/v1/conflicts?state=resolved", 200, &list)
	if len(list.Conflicts) != 1 {
		t.Fatalf("resolved list %+v", list)
	}
}

func TestResolveContestedDeletion(t *testing.T) {
	s := mustSupervise(t)
	hh := uuid.NewString()
	s.push(t, s.workerTok, s.worker, storetest.Household(hh, storetest.SouthVillage, storetest.T0))
	s.push(t, s.workerTok, s.worker, storetest.Delete("household", hh, 1, storetest.T0))
	pr := s.push(t, s.otherTok, s.other, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 3}))
	if pr.Results[0].Status != "conflict" || pr.Results[0].Conflicts[0].Field != "_deleted" {
		t.Fatalf("%+v", pr.Results[0])
	}
	var res struct {
		Record syncproto.Record `json:"record"`
	}
	s.postJSON(t, s.supSouth, "/v1/conflicts/"+pr.Results[0].Conflicts[0].ConflictID+"/resolve",
		map[string]any{"choose": "incoming", "note": "the household exists"}, 200, &res)
	if res.Record.Deleted || string(res.Record.Fields["members"]) != "3" {
		t.Fatalf("restored record %+v", res.Record)
	}
}

func TestQuarantineDevicesAndReceipts(t *testing.T) {
	s := mustSupervise(t)
	hh := uuid.NewString()
	pr := s.push(t, s.workerTok, s.worker, storetest.Household(hh, storetest.SouthVillage, storetest.T0),
		storetest.Upsert("water_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{
			"household_id": uuid.NewString(), "inspected_on": "2026-11-20"}))
	if pr.Results[1].Status != "rejected" {
		t.Fatalf("%+v", pr.Results)
	}
	var q struct {
		Quarantine []struct {
			User   string                 `json:"user"`
			Device string                 `json:"device"`
			Errors []syncproto.FieldError `json:"errors"`
		} `json:"quarantine"`
	}
	s.getJSON(t, s.supSouth, "/v1/quarantine", 200, &q)
	if len(q.Quarantine) != 1 || q.Quarantine[0].User != "worker.a" || q.Quarantine[0].Errors[0].Path != "fields.household_id" {
		t.Fatalf("quarantine %+v", q)
	}
	s.getJSON(t, s.supNorth, "/v1/quarantine", 200, &q)
	if len(q.Quarantine) != 0 {
		t.Fatalf("the north sees the south's quarantine %+v", q)
	}
	var page syncproto.PullResponse
	s.getJSON(t, s.workerTok, "/v1/sync/pull", 200, &page)
	s.push(t, s.otherTok, s.other, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))

	var devs struct {
		Devices []struct {
			DeviceID      string `json:"device_id"`
			User          string `json:"user"`
			LastPushAt    any    `json:"last_push_at"`
			LastPullAt    any    `json:"last_pull_at"`
			LastDeviceSeq int64  `json:"last_device_seq"`
			Behind        int64  `json:"behind"`
			Applied       int    `json:"applied"`
			Rejected      int    `json:"rejected"`
		} `json:"devices"`
	}
	flushPulls(t, s.Server) // pull positions are written in batches
	s.getJSON(t, s.supSouth, "/v1/devices", 200, &devs)
	found := false
	for _, d := range devs.Devices {
		if d.DeviceID == s.worker.Actor.DeviceID {
			found = true
			if d.User != "worker.a" || d.LastPushAt == nil || d.LastPullAt == nil || d.LastDeviceSeq != 1 ||
				d.Behind != 1 || d.Applied != 1 || d.Rejected != 1 {
				t.Fatalf("device %+v", d)
			}
		}
	}
	if !found || len(devs.Devices) != 2 {
		t.Fatalf("devices %+v", devs)
	}
	s.getJSON(t, s.supNorth, "/v1/devices", 200, &devs)
	if len(devs.Devices) != 0 {
		t.Fatalf("the north sees the south's tablets %+v", devs)
	}
	var receipts struct {
		Receipts []struct {
			ChangesetID string `json:"changeset_id"`
			Applied     int    `json:"applied"`
			Rejected    int    `json:"rejected"`
		} `json:"receipts"`
	}
	s.getJSON(t, s.supSouth, "/v1/devices/"+s.worker.Actor.DeviceID+"/receipts", 200, &receipts)
	if len(receipts.Receipts) != 1 || receipts.Receipts[0].ChangesetID != pr.ChangesetID || receipts.Receipts[0].Rejected != 1 {
		t.Fatalf("receipts %+v", receipts)
	}
	s.getJSON(t, s.supSouth, "/v1/receipts/"+pr.ChangesetID, 200, nil)
	s.getJSON(t, s.supNorth, "/v1/receipts/"+pr.ChangesetID, 403, nil)
	s.getJSON(t, s.supNorth, "/v1/devices/"+s.worker.Actor.DeviceID+"/receipts", 403, nil)
}

func TestDuplicateHouseholdsAreFoundAndMerged(t *testing.T) {
	s := mustSupervise(t)
	first, second := uuid.NewString(), uuid.NewString()
	ins1, ins2 := uuid.NewString(), uuid.NewString()
	// Two tablets register the same household offline (same registration
	// number), each with an inspection.
	registered := func(id string, at time.Time) syncproto.Change {
		return storetest.RegisteredHousehold(id, storetest.SouthVillage, "5002401072010042", at)
	}
	s.push(t, s.workerTok, s.worker, registered(first, storetest.T0),
		storetest.HousingInspection(ins1, first, "C", storetest.T0))
	var cursor syncproto.PullResponse
	s.getJSON(t, s.workerTok, "/v1/sync/pull", 200, &cursor)
	s.push(t, s.otherTok, s.other, registered(second, storetest.T0.Add(time.Hour)),
		storetest.HousingInspection(ins2, second, "D", storetest.T0.Add(time.Hour)))
	var list struct {
		Duplicates []struct {
			ID         string `json:"id"`
			HouseholdA string `json:"household_a"`
			HouseholdB string `json:"household_b"`
			Reason     string `json:"reason"`
			State      string `json:"state"`
		} `json:"duplicates"`
	}
	s.getJSON(t, s.supSouth, "/v1/duplicates?state=open", 200, &list)
	if len(list.Duplicates) != 1 || list.Duplicates[0].HouseholdA != first || list.Duplicates[0].HouseholdB != second {
		t.Fatalf("duplicates %+v", list)
	}
	id := list.Duplicates[0].ID
	s.getJSON(t, s.supNorth, "/v1/duplicates?region=500240", 403, nil)
	s.postJSON(t, s.supNorth, "/v1/duplicates/"+id+"/merge", map[string]any{}, 403, nil)
	s.postJSON(t, s.supSouth, "/v1/duplicates/"+id+"/merge", map[string]any{"survivor": uuid.NewString()}, 422, nil)
	var merged struct {
		Survivor  string   `json:"survivor"`
		Tombstone string   `json:"tombstone"`
		Repointed []string `json:"repointed"`
	}
	s.postJSON(t, s.supSouth, "/v1/duplicates/"+id+"/merge", map[string]any{"survivor": first, "note": "same family"}, 200, &merged)
	if merged.Survivor != first || merged.Tombstone != second || len(merged.Repointed) != 1 || merged.Repointed[0] != ins2 {
		t.Fatalf("merge %+v", merged)
	}
	s.postJSON(t, s.supSouth, "/v1/duplicates/"+id+"/merge", map[string]any{"survivor": first}, 409, nil)

	// Tablets learn of it through pull: the tombstone names the survivor,
	// the inspection points to the survivor.
	var page syncproto.PullResponse
	s.getJSON(t, s.workerTok, "/v1/sync/pull?cursor="+cursor.Cursor, 200, &page)
	got := map[string]syncproto.Record{}
	for _, r := range page.Records {
		got[r.ID] = r
	}
	if !got[second].Deleted || got[second].MergedInto != first {
		t.Fatalf("tombstone %+v", got[second])
	}
	if string(got[ins2].Fields["household_id"]) != `"`+first+`"` {
		t.Fatalf("inspection %+v", got[ins2])
	}
	for _, rec := range []string{first, second} {
		var hist struct {
			Versions []struct {
				Op string `json:"op"`
			} `json:"versions"`
		}
		s.getJSON(t, s.supSouth, "/v1/records/household/"+rec+"/history", 200, &hist)
		if op := hist.Versions[len(hist.Versions)-1].Op; op != "merge" {
			t.Fatalf("history of %s ends with %s", rec, op)
		}
	}
	// An inspection of the merged household is now refused with the
	// survivor named.
	pr := s.push(t, s.otherTok, s.other, storetest.HousingInspection(uuid.NewString(), second, "B", storetest.T0))
	if pr.Results[0].Status != "rejected" {
		t.Fatalf("%+v", pr.Results[0])
	}
	_ = http.StatusOK
}

// TestCursorsDoNotCrossEndpoints: a list's cursor is refused by another
// list and by change-log endpoints, and the other way round.
func TestCursorsDoNotCrossEndpoints(t *testing.T) {
	s := mustSupervise(t)
	s.push(t, s.workerTok, s.worker, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	var list conflictList
	s.getJSON(t, s.supSouth, "/v1/conflicts", 200, &list)
	var page syncproto.PullResponse
	s.getJSON(t, s.supSouth, "/v1/sync/pull", 200, &page)
	s.getJSON(t, s.supSouth, "/v1/snapshot?entity=household&as_of="+list.Cursor, 422, nil)
	s.getJSON(t, s.supSouth, "/v1/sync/pull?cursor="+list.Cursor, 422, nil)
	s.getJSON(t, s.supSouth, "/v1/quarantine?cursor="+list.Cursor, 422, nil)
	s.getJSON(t, s.supSouth, "/v1/conflicts?cursor="+page.Cursor, 422, nil)
	s.getJSON(t, s.supSouth, "/v1/conflicts?cursor="+list.Cursor, 200, nil)
}

func TestHistoryShowsResolutionAndRefusesUnknownParams(t *testing.T) {
	s := mustSupervise(t)
	hh := uuid.NewString()
	s.push(t, s.workerTok, s.worker, storetest.Household(hh, storetest.SouthVillage, storetest.T0))
	s.push(t, s.workerTok, s.worker, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 6}))
	pr := s.push(t, s.otherTok, s.other, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 7}))
	s.postJSON(t, s.supSouth, "/v1/conflicts/"+pr.Results[0].Conflicts[0].ConflictID+"/resolve",
		map[string]any{"choose": "kept", "note": "checked the register"}, 200, nil)
	var hist struct {
		Conflicts []struct {
			State      string `json:"state"`
			Resolution struct {
				Note string `json:"note"`
				By   string `json:"by"`
			} `json:"resolution"`
		} `json:"conflicts"`
	}
	s.getJSON(t, s.supSouth, "/v1/records/household/"+hh+"/history", 200, &hist)
	if len(hist.Conflicts) != 1 || hist.Conflicts[0].State != "resolved" || hist.Conflicts[0].Resolution.Note != "checked the register" ||
		hist.Conflicts[0].Resolution.By != "sup.south" {
		t.Fatalf("history conflicts %+v", hist.Conflicts)
	}
	s.getJSON(t, s.supSouth, "/v1/records/household/"+hh+"/history?foo=1", 400, nil)
	s.getJSON(t, s.supSouth, "/v1/records/household/"+hh+"?region=500240", 400, nil)
}
