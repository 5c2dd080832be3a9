package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestV2TabletKeepsSyncingWithV3: on a server whose latest forms are
// version 3, a tablet on version 2 creates a household with its one key
// group (category) and pulls it back in version 2 as it sent it, while a
// version 3 pull shows categories; a v3 edit to two groups is, for the v2
// tablet, a record its version cannot express (flagged, category left
// out), and the v2 tablet's next edit of another field still applies.
func TestV2TabletKeepsSyncingWithV3(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	old, current := uuid.NewString(), uuid.NewString()
	hh := uuid.NewString()
	push := func(device string, version int, seq int64, ch syncproto.Change) syncproto.ChangeResult {
		t.Helper()
		cs := syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: device, DeviceSeq: seq, SchemaVersion: version, Changes: []syncproto.Change{ch}}
		b, _ := json.Marshal(cs)
		resp, body := ts.DoAs(t, ts.Login(t, "worker", device), http.MethodPost, "/v1/sync/push", "application/json", b)
		var pr syncproto.PushResponse
		if resp.StatusCode != 200 || json.Unmarshal(body, &pr) != nil || len(pr.Results) != 1 {
			t.Fatalf("push v%d: %d %s", version, resp.StatusCode, body)
		}
		return pr.Results[0]
	}
	pull := func(device string, version string) syncproto.Record {
		t.Helper()
		resp, body := ts.DoAs(t, ts.Login(t, "worker", device), http.MethodGet, "/v1/sync/pull?schema_version="+version, "", nil)
		var pr syncproto.PullResponse
		if resp.StatusCode != 200 || json.Unmarshal(body, &pr) != nil || len(pr.Records) != 1 {
			t.Fatalf("pull v%s: %d %s", version, resp.StatusCode, body)
		}
		return pr.Records[0]
	}
	r := push(old, 2, 1, storetest.Upsert("household", hh, 0, storetest.T0, map[string]any{"village": storetest.SouthVillage,
		"head_name": "冉桂芳", "members": 4, "category": "disabled_poor", "status": "in_poverty"}))
	if r.Status != syncproto.StatusApplied {
		t.Fatalf("v2 create: %+v", r)
	}
	if got := pull(old, "2"); string(got.Fields["category"]) != `"disabled_poor"` || got.Fields["categories"] != nil {
		t.Fatalf("v2 pull: %s", got.Fields)
	}
	if got := pull(current, "3"); string(got.Fields["categories"]) != `["disabled_poor"]` || got.Fields["category"] != nil {
		t.Fatalf("v3 pull: %s", got.Fields)
	}
	r = push(current, 3, 1, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"categories": []string{"disabled_poor", "subsistence_allowance"}}))
	if r.Status != syncproto.StatusApplied {
		t.Fatalf("v3 edit: %+v", r)
	}
	got := pull(old, "2")
	if got.Fields["category"] != nil || len(got.Flags) == 0 {
		t.Fatalf("v2 pull of two groups: %s flags %v", got.Fields, got.Flags)
	}
	r = push(old, 2, 2, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 5}))
	if r.Status == syncproto.StatusRejected {
		t.Fatalf("v2 edit after the v3 one: %+v", r)
	}
	if got := pull(current, "3"); string(got.Fields["members"]) != "5" || string(got.Fields["categories"]) != `["disabled_poor","subsistence_allowance"]` {
		t.Fatalf("after both: %s", got.Fields)
	}
}
