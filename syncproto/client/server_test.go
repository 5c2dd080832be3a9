package client_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
	"github.com/fieldsync/fieldsync/syncproto/client/faulty"
)

func TestClientWeekOfflineSyncsWithoutPassword(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	hh, ins := apitest.SeedHousehold(t, ts)
	tab := apitest.NewTablet(t, ts, "worker", client.Options{})
	if rep := apitest.MustSync(t, tab); rep.Pulled != 2 || !rep.Verified {
		t.Fatalf("first sync: %+v", rep)
	}
	ctx := context.Background()
	// Seven days in the villages, an edit a day; the access token (15
	// minutes) expired long ago.
	for day := 0; day < 7; day++ {
		ts.Clock.Advance(24 * time.Hour)
		if err := tab.Update(ctx, "housing_inspection", ins, client.Fields{"inspected_on": ts.Clock.Now().Format("2006-01-02")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tab.Update(ctx, "household", hh, client.Fields{"head_name": "Ran Min"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := tab.Status(ctx); st.Pending != 2 {
		t.Fatalf("pending after a week of edits to two records: %d", st.Pending)
	}
	rep := apitest.MustSync(t, tab)
	if rep.Pushed != 1 || rep.Changes != 2 || !rep.Verified {
		t.Fatalf("sync after a week: %+v", rep)
	}
	r := storetest.MustRecord(t, ts.Store, ins)
	if got, want := string(r.Fields["inspected_on"]), `"`+ts.Clock.Now().Format("2006-01-02")+`"`; got != want || r.Version != 2 {
		t.Fatalf("server after the week: inspected_on %s v%d, want %s v2 (seven edits coalesced)", got, r.Version, want)
	}
	if st, _ := tab.Status(ctx); st.Pending != 0 || !st.LoggedIn {
		t.Fatalf("status after the sync: %+v", st)
	}
}

func TestClientPullKeepsPendingEdits(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "a", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "b", syncproto.RoleFieldWorker, "500240107")
	hh, _ := apitest.SeedHousehold(t, ts)
	a, b := apitest.NewTablet(t, ts, "a", client.Options{}), apitest.NewTablet(t, ts, "b", client.Options{})
	apitest.MustSync(t, a)
	apitest.MustSync(t, b)
	ctx := context.Background()
	// a edits members offline; b changes members and head_name and syncs.
	if err := a.Update(ctx, "household", hh, client.Fields{"members": 6}); err != nil {
		t.Fatal(err)
	}
	if err := b.Update(ctx, "household", hh, client.Fields{"members": 4, "head_name": "Ma Lan"}); err != nil {
		t.Fatal(err)
	}
	apitest.MustSync(t, b)
	// a pulls only: it sees b's head_name, and still its own members.
	if _, err := a.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := a.Get(ctx, hh)
	if err != nil {
		t.Fatal(err)
	}
	if apitest.FieldOf(t, r, "members") != "6" || apitest.FieldOf(t, r, "head_name") != `"Ma Lan"` || !r.Pending || r.Version != 2 {
		t.Fatalf("a after pulling b's change: %+v", r)
	}
	// a pushes: members is manual, so the server keeps 4 and opens a
	// conflict, which a can list.
	rep := apitest.MustSync(t, a)
	if rep.Conflicts != 1 {
		t.Fatalf("a's sync: %+v", rep)
	}
	cfs, err := a.Conflicts(ctx)
	if err != nil || len(cfs) != 1 || cfs[0].Field != "members" || cfs[0].State != "open" ||
		string(cfs[0].Incoming) != "6" || string(cfs[0].Kept) != "4" {
		t.Fatalf("a's conflicts: %v %+v", err, cfs)
	}
	if r, _ := a.Get(ctx, hh); apitest.FieldOf(t, r, "members") != "4" || r.Pending {
		t.Fatalf("a after the sync shows %+v, want the server's members 5", r)
	}
}

func TestClientRepairsADivergedCopy(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	hh, ins := apitest.SeedHousehold(t, ts)
	dir := t.TempDir()
	path := filepath.Join(dir, "device.db")
	opts := client.Options{HTTP: ts.Client(), Now: ts.Clock.Now}
	tab, err := client.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { tab.Close() }()
	ctx := context.Background()
	if err := tab.Login(ctx, ts.URL, "worker", apitest.TestPassword); err != nil {
		t.Fatal(err)
	}
	apitest.MustSync(t, tab)
	if err := tab.Update(ctx, "household", hh, client.Fields{"head_name": "pending, not pushed"}); err != nil {
		t.Fatal(err)
	}
	// The copy goes wrong behind the client's back: one record lost, one
	// at a wrong version, one that the server never had.
	tab.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM records WHERE id = '` + ins + `'`, `UPDATE records SET version = 9 WHERE id = '` + hh + `'`,
		`INSERT INTO records (id, entity, version, fields, deleted, merged_into, updated_at, updated_by)
		 VALUES ('` + uuid.NewString() + `', 'household', 1, '{}', 0, '', '', '')`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if tab, err = client.Open(path, opts); err != nil {
		t.Fatal(err)
	}
	// The sync pushes the pending edit first, then finds the mismatch and
	// pulls the scope again, keeping the edit.
	rep := apitest.MustSync(t, tab)
	if !rep.Repaired || !rep.Verified || rep.Pushed != 1 {
		t.Fatalf("sync of a diverged copy: %+v", rep)
	}
	sum, err := tab.LocalChecksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := ts.Store.Checksum(ctx, syncproto.Actor{Scope: []string{"500240107"}})
	if err != nil || sum != want || sum.Count != 2 {
		t.Fatalf("after the repair: local %d/%s, server %d/%s", sum.Count, sum, want.Count, want)
	}
	if r, err := tab.Get(ctx, hh); err != nil || apitest.FieldOf(t, r, "head_name") != `"pending, not pushed"` || r.Version != 2 {
		t.Fatalf("the edit after the repair: %v %+v", err, r)
	}
}

func TestClientReportsARevokedDevice(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	hh, _ := apitest.SeedHousehold(t, ts)
	tab := apitest.NewTablet(t, ts, "worker", client.Options{})
	apitest.MustSync(t, tab)
	ctx := context.Background()
	if err := tab.Update(ctx, "household", hh, client.Fields{"members": 2}); err != nil {
		t.Fatal(err)
	}
	if resp, b := ts.Do(t, "POST", "/v1/devices/"+tab.DeviceID()+"/revoke", "", nil); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, b)
	}
	if _, err := tab.Sync(ctx); !errors.Is(err, client.ErrDeviceRevoked) {
		t.Fatalf("sync of a revoked tablet: %v", err)
	}
	// Nothing is lost on the tablet.
	if st, _ := tab.Status(ctx); st.Pending != 1 {
		t.Fatalf("pending after the refusal: %d", st.Pending)
	}
}

func TestClientCreatesAndDeletes(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	tab := apitest.NewTablet(t, ts, "worker", client.Options{BatchSize: 2})
	ctx := context.Background()
	hh, err := tab.Create(ctx, "household", client.Fields{"village": storetest.SouthVillage, "head_name": "Xiang Hua",
		"members": 3, "registration_no": "R-1"})
	if err != nil {
		t.Fatal(err)
	}
	ins, err := tab.Create(ctx, "water_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-11-20",
		"source": "well", "quality_ok": true, "liters_per_person_day": 60, "fetch_minutes": 10, "reliability_pct": 95})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := tab.Create(ctx, "household", client.Fields{"village": storetest.SouthVillage, "head_name": "typo", "members": 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.Update(ctx, "household", hh, client.Fields{"members": 4}); err != nil {
		t.Fatal(err)
	}
	if err := tab.Delete(ctx, "household", gone); err != nil { // never pushed: dropped
		t.Fatal(err)
	}
	rep := apitest.MustSync(t, tab)
	// Two records in change sets of two: the household (with members
	// coalesced) before the inspection that references it.
	if rep.Pushed != 1 || rep.Changes != 2 || rep.Refused != 0 {
		t.Fatalf("sync: %+v", rep)
	}
	if r := storetest.MustRecord(t, ts.Store, hh); string(r.Fields["members"]) != "4" || r.Version != 1 {
		t.Fatalf("household on the server: %+v", r)
	}
	if _, err := ts.Store.Record(ctx, gone); err == nil {
		t.Fatal("a household created and deleted offline reached the server")
	}
	if err := tab.Delete(ctx, "water_inspection", ins); err != nil {
		t.Fatal(err)
	}
	apitest.MustSync(t, tab)
	if r := storetest.MustRecord(t, ts.Store, ins); !r.Deleted {
		t.Fatal("the deleted inspection is not a tombstone on the server")
	}
	if r, err := tab.Get(ctx, ins); err != nil || !r.Deleted {
		t.Fatalf("the tombstone on the tablet: %v %+v", err, r)
	}
}

// PushNext pushes one change set at a time, oldest edits first, and
// leaves the rest of the outbox pending.
func TestClientPushNextPushesOneChangesetAtATime(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	tab := apitest.NewTablet(t, ts, "worker", client.Options{BatchSize: 2})
	ctx := context.Background()
	var ids []string
	for i := 0; i < 5; i++ {
		id, err := tab.Create(ctx, "household", client.Fields{"village": storetest.SouthVillage,
			"head_name": fmt.Sprintf("Head %d", i), "members": 2})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i, want := range []struct{ sets, changes, pending int }{{1, 2, 3}, {1, 2, 1}, {1, 1, 0}, {0, 0, 0}} {
		rep, err := tab.PushNext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := tab.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Pushed != want.sets || rep.Changes != want.changes || st.Pending != want.pending {
			t.Fatalf("PushNext %d: pushed %d sets of %d changes, %d pending; want %d, %d, %d",
				i+1, rep.Pushed, rep.Changes, st.Pending, want.sets, want.changes, want.pending)
		}
		// The oldest edits went first: the server holds exactly the first
		// 2, 4, 5 households.
		for j, id := range ids {
			_, err := ts.Store.Record(ctx, id)
			if held := err == nil; held != (j < 5-want.pending) {
				t.Fatalf("after PushNext %d, household %d on the server: %v", i+1, j, held)
			}
		}
	}
}

// A sync that gives up after the server applied its change set (every
// answer lost) leaves the set in flight; the next sync, after a restart,
// sends it again with the same id and gets the stored answer.
func TestClientResendsTheSameChangesetAfterAnInterruptedSync(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	hh, _ := apitest.SeedHousehold(t, ts)
	net := faulty.New(ts.Client().Transport, faulty.Faults{}, 1)
	path := filepath.Join(t.TempDir(), "device.db")
	opts := client.Options{HTTP: &http.Client{Transport: net}, Now: ts.Clock.Now, MinBackoff: time.Millisecond,
		MaxBackoff: 5 * time.Millisecond}
	tab, err := client.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := tab.Login(ctx, ts.URL, "worker", apitest.TestPassword); err != nil {
		t.Fatal(err)
	}
	apitest.MustSync(t, tab)
	if err := tab.Update(ctx, "household", hh, client.Fields{"head_name": "Long Mei"}); err != nil {
		t.Fatal(err)
	}
	net.Faults.DropResponse = 1 // every answer is lost
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = tab.Sync(short)
	cancel()
	if err == nil {
		t.Fatal("a sync whose every answer was lost succeeded")
	}
	st, _ := tab.Status(ctx)
	if st.InFlight == "" || st.Pending != 1 {
		t.Fatalf("status after the interrupted sync: %+v", st)
	}
	if r := storetest.MustRecord(t, ts.Store, hh); string(r.Fields["head_name"]) != `"Long Mei"` {
		t.Fatal("the server did not apply the change set whose answer was lost (the test tests nothing)")
	}
	tab.Close()
	net.Faults.DropResponse = 0
	if tab, err = client.Open(path, opts); err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	rep := apitest.MustSync(t, tab)
	if rep.Pushed != 1 || rep.Replayed != 1 {
		t.Fatalf("the retried sync: %+v", rep)
	}
	receipts, _, err := ts.Store.Receipts(ctx, tab.DeviceID(), 0, 100)
	if err != nil || len(receipts) != 1 || receipts[0].ChangesetID != st.InFlight {
		t.Fatalf("receipts: %v %+v, want one for %s", err, receipts, st.InFlight)
	}
	if r := storetest.MustRecord(t, ts.Store, hh); r.Version != 2 {
		t.Fatalf("household at v%d after one edit", r.Version)
	}
}

// A supervisor's decision reaches the tablet that opened the conflict:
// after its next sync the conflict is resolved there, with the value
// decided. Another device cannot read it through GET /v1/sync/conflicts.
func TestClientLearnsThatItsConflictWasResolved(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "a", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "b", syncproto.RoleFieldWorker, "500240107")
	hh, _ := apitest.SeedHousehold(t, ts)
	a, b := apitest.NewTablet(t, ts, "a", client.Options{}), apitest.NewTablet(t, ts, "b", client.Options{})
	apitest.MustSync(t, a)
	apitest.MustSync(t, b)
	ctx := context.Background()
	if err := a.Update(ctx, "household", hh, client.Fields{"members": 6}); err != nil {
		t.Fatal(err)
	}
	if err := b.Update(ctx, "household", hh, client.Fields{"members": 7}); err != nil {
		t.Fatal(err)
	}
	apitest.MustSync(t, a)
	apitest.MustSync(t, b)
	cfs, _ := b.Conflicts(ctx)
	if len(cfs) != 1 || cfs[0].State != "open" {
		t.Fatalf("b's conflicts: %+v", cfs)
	}
	id := cfs[0].ConflictID
	// a's device may not read b's conflict.
	tokA := ts.Login(t, "a", a.DeviceID())
	resp, body := ts.DoAs(t, tokA, "GET", "/v1/sync/conflicts?ids="+id, "", nil)
	if resp.StatusCode != 200 || string(body) != `{"conflicts":[]}`+"\n" && string(body) != `{"conflicts":[]}` {
		t.Fatalf("another device's conflict: %d %s", resp.StatusCode, body)
	}
	for _, bad := range []string{"", "?ids=", "?ids=not-a-uuid", "?ids=" + id + "&x=1"} {
		resp, body := ts.DoAs(t, tokA, "GET", "/v1/sync/conflicts"+bad, "", nil)
		if resp.StatusCode/100 != 4 {
			t.Fatalf("GET /v1/sync/conflicts%s: %d %s", bad, resp.StatusCode, body)
		}
	}
	if resp, body := ts.Do(t, "POST", "/v1/conflicts/"+id+"/resolve", "application/json", []byte(`{"value": 7, "note": "counted"}`)); resp.StatusCode != 200 {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	apitest.MustSync(t, b)
	cfs, _ = b.Conflicts(ctx)
	if len(cfs) != 1 || cfs[0].State != "resolved" || string(cfs[0].Kept) != "7" {
		t.Fatalf("b's conflict after the decision: %+v", cfs)
	}
	if r, _ := b.Get(ctx, hh); apitest.FieldOf(t, r, "members") != "7" {
		t.Fatalf("b's household after the decision: %+v", r)
	}
	if st, _ := b.Status(ctx); st.OpenConflicts != 0 {
		t.Fatalf("b still counts %d open conflicts", st.OpenConflicts)
	}
}

// A record the server refused to create (here: a household in a village
// outside the worker's scope) is kept with the reason; an edit that fixes
// it sends it again.
func TestClientRefusedCreateCanBeFixed(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	tab := apitest.NewTablet(t, ts, "worker", client.Options{})
	ctx := context.Background()
	hh, err := tab.Create(ctx, "household", client.Fields{"village": storetest.NorthVillage, "head_name": "Bao Yu", "members": 2})
	if err != nil {
		t.Fatal(err)
	}
	rep := apitest.MustSync(t, tab)
	refused, _ := tab.Refused(ctx)
	if rep.Refused != 1 || len(refused) != 1 || refused[0].RecordID != hh {
		t.Fatalf("sync of an out-of-scope household: %+v, refused %+v", rep, refused)
	}
	if err := tab.Update(ctx, "household", hh, client.Fields{"village": storetest.SouthVillage}); err != nil {
		t.Fatalf("fixing the refused household: %v", err)
	}
	if rep := apitest.MustSync(t, tab); rep.Refused != 0 || rep.Changes != 1 {
		t.Fatalf("sync of the fix: %+v", rep)
	}
	r := storetest.MustRecord(t, ts.Store, hh)
	if string(r.Fields["head_name"]) != `"Bao Yu"` || r.Village != storetest.SouthVillage {
		t.Fatalf("the household on the server: %+v", r)
	}
	if refused, _ := tab.Refused(ctx); len(refused) != 0 {
		t.Fatalf("refusals after the fix: %+v", refused)
	}
}

// Edits that break the form are refused on the tablet, at once.
func TestClientValidatesEditsWithTheSchema(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	_, ins := apitest.SeedHousehold(t, ts)
	tab := apitest.NewTablet(t, ts, "worker", client.Options{})
	apitest.MustSync(t, tab)
	ctx := context.Background()
	var verr *client.ValidationError
	if err := tab.Update(ctx, "housing_inspection", ins, client.Fields{"grade": "Z", "colour": "red"}); !errors.As(err, &verr) || len(verr.Errors) != 2 {
		t.Fatalf("grade Z and an unknown field: %v", err)
	}
	if _, err := tab.Create(ctx, "household", client.Fields{"head_name": "no village"}); !errors.As(err, &verr) ||
		verr.Errors[0].Path != "fields.village" {
		t.Fatalf("a household without village: %v", err)
	}
	if _, err := tab.Create(ctx, "house", client.Fields{"head_name": "x"}); err == nil {
		t.Fatal("an unknown entity was accepted")
	}
	if st, _ := tab.Status(ctx); st.Pending != 0 {
		t.Fatalf("refused edits reached the outbox: %+v", st)
	}
}
