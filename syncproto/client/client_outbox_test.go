package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// TestClientPushesTheChangesetsItExported: exporting seals the outbox; a
// tablet that is not revoked after all keeps showing its edits and later
// pushes exactly the exported change sets, in device_seq order, so the
// file and the tablet can never apply the same edits twice.
func TestClientPushesTheChangesetsItExported(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	hh, _ := apitest.SeedHousehold(t, ts)
	tab := apitest.NewTablet(t, ts, "worker", client.Options{BatchSize: 1})
	apitest.MustSync(t, tab)
	ctx := context.Background()
	if _, err := tab.ExportOutbox(ctx); !errors.Is(err, client.ErrNothingPending) {
		t.Fatalf("export of an empty outbox: %v", err)
	}
	if err := tab.Update(ctx, "household", hh, client.Fields{"members": 2}); err != nil {
		t.Fatal(err)
	}
	created, err := tab.Create(ctx, "household", client.Fields{"village": "500240107201", "head_name": "王芳", "members": 3})
	if err != nil {
		t.Fatal(err)
	}
	f, err := tab.ExportOutbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Changesets) != 2 || f.User != "worker" || f.DeviceID != tab.DeviceID() {
		t.Fatalf("the export: %d change sets, %+v", len(f.Changesets), f)
	}
	// The edits still show as pending on the tablet.
	if r, err := tab.Get(ctx, hh); err != nil || !r.Pending || apitest.FieldOf(t, r, "members") != "2" {
		t.Fatalf("the edited household after the export: %v %+v", err, r)
	}
	if r, err := tab.Get(ctx, created); err != nil || !r.Pending {
		t.Fatalf("the new household after the export: %v %+v", err, r)
	}
	if st, _ := tab.Status(ctx); st.Pending != 2 {
		t.Fatalf("pending after the export: %d", st.Pending)
	}
	rep := apitest.MustSync(t, tab)
	if rep.Pushed != 2 {
		t.Fatalf("the sync after the export: %+v", rep)
	}
	for i, raw := range f.Changesets {
		var cs syncproto.Changeset
		if err := json.Unmarshal(raw, &cs); err != nil {
			t.Fatal(err)
		}
		rc, err := ts.Store.ReceiptOf(ctx, cs.ChangesetID)
		if err != nil || rc.DeviceSeq != cs.DeviceSeq || rc.ContentHash != syncproto.ContentHash(cs) {
			t.Fatalf("changesets[%d] (seq %d) was not pushed as exported: %v %+v", i, cs.DeviceSeq, err, rc)
		}
	}
}
