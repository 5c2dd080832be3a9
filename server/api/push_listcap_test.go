package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestPushQuarantinesASetOverItsSchemaBound: a change whose photos hold
// 101 different digests (max_items 100) is rejected and quarantined with
// the field's path, while the other changes of its change set apply: the
// tablet's outbox goes on. Hazards that name one of the enum's 5 values
// twice (6 items) are a set of 5, applied as v1 always read them. Only a
// list over the hard cap (syncproto.SetItemsCap times the bound, here
// 1,001 photos) refuses the whole change set (413), writing nothing.
func TestPushQuarantinesASetOverItsSchemaBound(t *testing.T) {
	ts := apitest.MustServe(t)
	token := ts.Login(t, "admin", apitest.AdminDevice)
	photos := func(n int) json.RawMessage {
		list := make([]string, n)
		for i := range list {
			list[i] = fmt.Sprintf("%064x", i+1)
		}
		b, _ := json.Marshal(list)
		return b
	}
	hh := uuid.NewString()
	manyPhotos := storetest.HousingInspection(uuid.NewString(), hh, "C", storetest.T0)
	manyPhotos.Fields["photos"] = photos(101)
	sixHazards := storetest.HousingInspection(uuid.NewString(), hh, "D", storetest.T0)
	sixHazards.Fields["hazards"] = json.RawMessage(`["roof","walls","foundation","ventilation","heating_insulation","roof"]`)
	fine := storetest.HousingInspection(uuid.NewString(), hh, "B", storetest.T0)
	cs := syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: apitest.AdminDevice, DeviceSeq: 1, SchemaVersion: 1,
		Changes: []syncproto.Change{storetest.Household(hh, storetest.SouthVillage, storetest.T0), manyPhotos, sixHazards, fine}}
	before := ts.Counts(t)
	b, _ := json.Marshal(cs)
	resp, body := ts.DoAs(t, token, http.MethodPost, "/v1/sync/push", "application/json", b)
	var pr syncproto.PushResponse
	if err := json.Unmarshal(body, &pr); err != nil || resp.StatusCode != http.StatusOK || len(pr.Results) != 4 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	for i, want := range []struct{ status, path string }{{"applied", ""}, {"rejected", "fields.photos"}, {"applied", ""}, {"applied", ""}} {
		r := pr.Results[i]
		if r.Status != want.status || want.path != "" && (len(r.Errors) != 1 || r.Errors[0].Path != want.path) {
			t.Errorf("result %d: %+v, want %s %s", i, r, want.status, want.path)
		}
	}
	after := ts.Counts(t)
	if after["records"] != before["records"]+3 || after["quarantine"] != before["quarantine"]+1 {
		t.Fatalf("counts %v -> %v: want the household and two inspections applied, one change quarantined", before, after)
	}

	// Over the hard cap: the whole change set is refused, nothing written.
	overCap := storetest.HousingInspection(uuid.NewString(), hh, "C", storetest.T0)
	overCap.Fields["photos"] = photos(syncproto.SetItemsCap*100 + 1)
	cs = syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: apitest.AdminDevice, DeviceSeq: 2, SchemaVersion: 1,
		Changes: []syncproto.Change{storetest.HousingInspection(uuid.NewString(), hh, "A", storetest.T0), overCap}}
	b, _ = json.Marshal(cs)
	if !strings.Contains(string(b), `"photos":[`) {
		t.Fatal("no photos list in the body")
	}
	resp, body = ts.DoAs(t, token, http.MethodPost, "/v1/sync/push", "application/json", b)
	problemAt(t, "1,001 photos", resp, body, http.StatusRequestEntityTooLarge, "changes[1].fields.photos")
	if final := ts.Counts(t); !equalCounts(after, final) {
		t.Fatalf("a refused push wrote: %v -> %v", after, final)
	}
}
