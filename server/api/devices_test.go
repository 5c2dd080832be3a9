package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

type deviceEntry struct {
	DeviceID string `json:"device_id"`
	Name     string `json:"name"`
	User     string `json:"user"`
	Behind   int64  `json:"behind"`
}

type deviceListing struct {
	Devices     []deviceEntry `json:"devices"`
	APISessions []deviceEntry `json:"api_sessions"`
}

func (l deviceListing) find(t *testing.T, device string) (deviceEntry, bool) {
	t.Helper()
	for _, d := range l.Devices {
		if d.DeviceID == device {
			return d, false
		}
	}
	for _, d := range l.APISessions {
		if d.DeviceID == device {
			return d, true
		}
	}
	t.Fatalf("device %s not listed in %+v", device, l)
	return deviceEntry{}, false
}

// loginNamed logs in on a device with a device_name.
func (s *supervised) loginNamed(t *testing.T, user, device, name string, status int) string {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": apitest.TestPassword, "device_id": device, "device_name": name})
	resp, body := s.DoAs(t, "", "POST", "/v1/auth/token", "application/json", b)
	if resp.StatusCode != status {
		t.Fatalf("login %s: %d %s", user, resp.StatusCode, body)
	}
	var tr api.TokenResponse
	_ = json.Unmarshal(body, &tr)
	return tr.AccessToken
}

// TestDevicesBehindWithinScope (issue 15 item 9): behind counts the
// records of the tablet's own scope changed after its cursor, which is
// what its next pull returns; a tablet that never pulled is behind by its
// scope's records, not by the whole change log.
func TestDevicesBehindWithinScope(t *testing.T) {
	s := mustSupervise(t)
	s.AddUser(t, "worker.north", syncproto.RoleFieldWorker, "150422")
	north := storetest.NewDevice("worker.north")
	northTok := s.Login(t, "worker.north", north.Actor.DeviceID)
	tok := s.loginNamed(t, "worker.a", s.worker.Actor.DeviceID, "西沱镇 平板 1", 200)

	s.push(t, tok, s.worker, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	var page syncproto.PullResponse
	s.getJSON(t, tok, "/v1/sync/pull", 200, &page)
	// Edits in another county: nothing for the south tablet to pull.
	s.push(t, northTok, north, storetest.Household(uuid.NewString(), storetest.NorthVillage, storetest.T0),
		storetest.Household(uuid.NewString(), storetest.NorthVillage, storetest.T0))
	flushPulls(t, s.Server) // pull positions are written in batches
	var list deviceListing
	s.getJSON(t, s.supSouth, "/v1/devices", 200, &list)
	if d, _ := list.find(t, s.worker.Actor.DeviceID); d.Behind != 0 || d.Name != "西沱镇 平板 1" {
		t.Fatalf("south tablet after edits in the north: %+v, want behind 0 and its name", d)
	}
	// A second south tablet pushes without ever pulling: behind by the
	// two records of its scope, not the four changes of the log.
	s.push(t, s.otherTok, s.other, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	s.getJSON(t, s.supSouth, "/v1/devices", 200, &list)
	if d, _ := list.find(t, s.other.Actor.DeviceID); d.Behind != 2 {
		t.Fatalf("never-pulled tablet: %+v, want behind 2", d)
	}
	first, _ := list.find(t, s.worker.Actor.DeviceID)
	if first.Behind != 1 {
		t.Fatalf("south tablet after a south edit: %+v, want behind 1", first)
	}
	var next syncproto.PullResponse
	s.getJSON(t, tok, "/v1/sync/pull?cursor="+page.Cursor, 200, &next)
	if int64(len(next.Records)) != first.Behind {
		t.Fatalf("behind %d, but the pull returned %d records", first.Behind, len(next.Records))
	}
	var admin deviceListing
	s.getJSON(t, s.Login(t, "admin", apitest.AdminDevice), "/v1/devices", 200, &admin)
	if d, _ := admin.find(t, north.Actor.DeviceID); d.Behind != 2 {
		t.Fatalf("north tablet that never pulled: %+v, want behind 2 (its two, nothing of the south)", d)
	}
}

// TestDevicesListAPISessionsApart: a supervisor's login without a device
// name (curl, a script) is listed under api_sessions, a named one and a
// field worker's under devices; a device_name that is too long is a 422.
func TestDevicesListAPISessionsApart(t *testing.T) {
	s := mustSupervise(t)
	var page syncproto.PullResponse
	s.getJSON(t, s.supSouth, "/v1/sync/pull", 200, &page)
	s.getJSON(t, s.workerTok, "/v1/sync/pull", 200, &page)
	named := uuid.NewString()
	tok := s.loginNamed(t, "sup.south", named, "督导 平板", 200)
	s.getJSON(t, tok, "/v1/sync/pull", 200, &page)
	flushPulls(t, s.Server) // pull positions are written in batches

	var list deviceListing
	s.getJSON(t, s.supSouth, "/v1/devices", 200, &list)
	if len(list.APISessions) != 1 || list.APISessions[0].User != "sup.south" {
		t.Fatalf("api sessions %+v", list.APISessions)
	}
	if _, apart := list.find(t, s.worker.Actor.DeviceID); apart {
		t.Fatalf("a field worker's tablet is listed as an API session")
	}
	if d, apart := list.find(t, named); apart || d.Name != "督导 平板" {
		t.Fatalf("a named supervisor's tablet: %+v (apart: %v)", d, apart)
	}
	resp, b := s.DoAs(t, "", "POST", "/v1/auth/token", "application/json",
		[]byte(`{"username": "worker.a", "password": "`+apitest.TestPassword+`", "device_id": "`+s.worker.Actor.DeviceID+`", "device_name": "`+strings.Repeat("板", 65)+`"}`))
	if resp.StatusCode != 422 || !strings.Contains(string(b), `"path":"device_name"`) {
		t.Fatalf("long device name: %d %s", resp.StatusCode, b)
	}
}
