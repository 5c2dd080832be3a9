package client_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// serveTestForms serves the client's test form set (testdata/forms):
// version 1, and version 2, which renames water_inspection.fetch_minutes
// to fetch_time_min and adds operator. Both declare the requirement
// fetch_time_unless_piped and the criterion water_convenience.
func serveTestForms(t *testing.T) *apitest.Server {
	t.Helper()
	cat, err := schema.LoadCatalog(os.DirFS("testdata"), "forms")
	if err != nil {
		t.Fatal(err)
	}
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.Catalog = cat })
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	return ts
}

// history returns the schema_version of every version of a record, as
// GET /v1/records/{entity}/{id}/history names them.
func history(t *testing.T, ts *apitest.Server, entity, id string) []int {
	t.Helper()
	var hist struct {
		Versions []struct {
			SchemaVersion int `json:"schema_version"`
		} `json:"versions"`
	}
	apitest.GetJSON(t, ts.URL, ts.Login(t, "admin", apitest.AdminDevice), "/v1/records/"+entity+"/"+id+"/history", &hist)
	var out []int
	for _, v := range hist.Versions {
		out = append(out, v.SchemaVersion)
	}
	return out
}

// TestClientSendsTheVersionItIsOn: a tablet put on version 1 (the server
// serves 1 and 2) validates, sends and pulls in 1; its edits queued
// before Upgrade go as version 1 (sealed, shown in version 2's fields
// meanwhile), its edits after in version 2, and the history names each.
func TestClientSendsTheVersionItIsOn(t *testing.T) {
	ts := serveTestForms(t)
	ctx := context.Background()
	tab := apitest.NewTablet(t, ts, "worker", client.Options{SchemaVersion: 1})
	if st, err := tab.Status(ctx); err != nil || st.SchemaVersion != 1 {
		t.Fatalf("status after a login on version 1: %+v %v", st, err)
	}
	hh, err := tab.Create(ctx, "household", client.Fields{"village": "500240107201", "head_name": "户主"})
	if err != nil {
		t.Fatal(err)
	}
	w1, err := tab.Create(ctx, "water_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-11-20",
		"source": "well", "fetch_minutes": 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Create(ctx, "water_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-11-20",
		"source": "piped", "fetch_time_min": 3}); err == nil {
		t.Fatal("a field of version 2 accepted on version 1")
	}
	// Version 1's rule, in version 1's field.
	_, err = tab.Create(ctx, "water_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-11-20", "source": "well"})
	var verr *client.ValidationError
	if !errors.As(err, &verr) || verr.Errors[0].Path != "fields.fetch_minutes" || verr.Errors[0].Rule != "fetch_time_unless_piped" {
		t.Fatalf("a rule broken on version 1: %v", err)
	}

	up, err := tab.Upgrade(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if up.From != 1 || up.To != 2 || up.Sealed != 2 {
		t.Fatalf("upgrade: %+v", up)
	}
	if st, _ := tab.Status(ctx); st.SchemaVersion != 2 || st.Pending != 2 {
		t.Fatalf("status after the upgrade: %+v", st)
	}
	// The edit queued in version 1 reads in version 2 until it is pushed.
	r, err := tab.Get(ctx, w1)
	if err != nil || string(r.Fields["fetch_time_min"]) != "10" || r.Fields["fetch_minutes"] != nil {
		t.Fatalf("a version-1 edit after the upgrade: %s %v", r.Fields, err)
	}
	// New edits are version 2's, by version 2's rules.
	_, err = tab.Create(ctx, "water_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-11-21", "source": "well"})
	if !errors.As(err, &verr) || verr.Errors[0].Path != "fields.fetch_time_min" {
		t.Fatalf("a rule broken on version 2: %v", err)
	}
	if _, err := tab.Create(ctx, "water_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-11-21",
		"source": "well", "fetch_minutes": 30}); err == nil {
		t.Fatal("a field version 2 renamed accepted after the upgrade")
	}
	w2, err := tab.Create(ctx, "water_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-11-21",
		"source": "well", "fetch_time_min": 30, "operator": "县水利局"})
	if err != nil {
		t.Fatal(err)
	}
	// And an edit of the record queued in version 1 is version 2's too.
	if err := tab.Update(ctx, "water_inspection", w1, client.Fields{"distance_horizontal_m": 500}); err != nil {
		t.Fatal(err)
	}
	rep := apitest.MustSync(t, tab)
	if rep.Pushed != 2 || rep.Refused != 0 || !rep.Verified {
		t.Fatalf("sync: %+v (refused: %v)", rep, refusals(t, tab))
	}
	if got := history(t, ts, "water_inspection", w1); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("history of the record edited in both versions: %v, want [1 2]", got)
	}
	if got := history(t, ts, "water_inspection", w2); len(got) != 1 || got[0] != 2 {
		t.Fatalf("history of the record made in version 2: %v, want [2]", got)
	}
	r, err = tab.Get(ctx, w1)
	if err != nil || r.Pending || string(r.Fields["fetch_time_min"]) != "10" || string(r.Fields["distance_horizontal_m"]) != "500" ||
		r.Fields["fetch_minutes"] != nil {
		t.Fatalf("the copy after the sync: %+v %v", r, err)
	}
	if again, err := tab.Upgrade(ctx); err != nil || again.From != 2 || again.To != 2 || again.Sealed != 0 {
		t.Fatalf("an upgrade on the latest: %+v %v", again, err)
	}
}

// TestClientPullsInItsVersionAndKeepsFlags: a tablet on version 1 that
// never pushed (the server would answer it in the latest) pulls in
// version 1: a renamed field under its old name, and a record holding a
// field version 1 lacks without it, flagged not_expressible.
func TestClientPullsInItsVersionAndKeepsFlags(t *testing.T) {
	ts := serveTestForms(t)
	ctx := context.Background()
	hh, w := uuid.NewString(), uuid.NewString()
	cs := syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: apitest.AdminDevice, DeviceSeq: 1, SchemaVersion: 2,
		Changes: []syncproto.Change{
			{Entity: "household", ID: hh, Op: syncproto.OpUpsert, At: "2026-11-20T08:00:00.000Z",
				Fields: map[string]json.RawMessage{"village": json.RawMessage(`"500240107201"`), "head_name": json.RawMessage(`"户主"`)}},
			{Entity: "water_inspection", ID: w, Op: syncproto.OpUpsert, At: "2026-11-20T08:00:00.000Z",
				Fields: map[string]json.RawMessage{"household_id": json.RawMessage(`"` + hh + `"`), "inspected_on": json.RawMessage(`"2026-11-20"`),
					"source": json.RawMessage(`"well"`), "fetch_time_min": json.RawMessage(`12`), "operator": json.RawMessage(`"县水利局"`)}}}}
	ts.MustPush(t, cs)

	tab := apitest.NewTablet(t, ts, "worker", client.Options{SchemaVersion: 1})
	if rep := apitest.MustSync(t, tab); rep.Pulled != 2 || !rep.Verified {
		t.Fatalf("sync: %+v", rep)
	}
	r, err := tab.Get(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Fields["fetch_minutes"]) != "12" || r.Fields["fetch_time_min"] != nil || r.Fields["operator"] != nil {
		t.Fatalf("pulled not in version 1: %s", r.Fields)
	}
	if len(r.Flags) != 1 || r.Flags[0] != syncproto.FlagNotExpressible {
		t.Fatalf("flags of a record version 1 cannot hold whole: %v", r.Flags)
	}
	if h, err := tab.Get(ctx, hh); err != nil || len(h.Flags) != 0 {
		t.Fatalf("a record version 1 holds whole: %+v %v", h, err)
	}
	// Upgraded, the tablet pulls the scope again in version 2: whole.
	if up, err := tab.Upgrade(ctx); err != nil || up.Pulled != 2 {
		t.Fatalf("upgrade: %+v %v", up, err)
	}
	r, err = tab.Get(ctx, w)
	if err != nil || string(r.Fields["fetch_time_min"]) != "12" || string(r.Fields["operator"]) != `"县水利局"` || len(r.Flags) != 0 {
		t.Fatalf("after the upgrade: %+v %v", r, err)
	}
}

// TestClientRefusesAnEditBreakingARule: an edit that leaves its record
// failing a requirement rule is refused on the device with the rule's
// name and the field's path — the server's verdict on the same change in
// the same version — and is not queued; a criterion is not enforced, and
// Judge judges it.
func TestClientRefusesAnEditBreakingARule(t *testing.T) {
	ts := serveTestForms(t)
	ctx := context.Background()
	tab := apitest.NewTablet(t, ts, "worker", client.Options{}) // on the latest, version 2
	hh, err := tab.Create(ctx, "household", client.Fields{"village": "500240107201", "head_name": "户主"})
	if err != nil {
		t.Fatal(err)
	}
	bad := client.Fields{"household_id": hh, "inspected_on": "2026-11-20", "source": "well"}
	_, err = tab.Create(ctx, "water_inspection", bad)
	var verr *client.ValidationError
	if !errors.As(err, &verr) || len(verr.Errors) != 1 || verr.Errors[0].Rule != "fetch_time_unless_piped" || verr.Errors[0].Path != "fields.fetch_time_min" {
		t.Fatalf("a well without a fetching time: %v", err)
	}
	if st, _ := tab.Status(ctx); st.Pending != 1 {
		t.Fatalf("the refused edit was queued: %d pending", st.Pending)
	}
	// Piped needs no time; a 45-minute well is inconvenient, not invalid.
	piped, err := tab.Create(ctx, "water_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-11-20", "source": "piped"})
	if err != nil {
		t.Fatal(err)
	}
	far, err := tab.Create(ctx, "water_inspection", client.Fields{"household_id": hh, "inspected_on": "2026-11-20", "source": "well", "fetch_time_min": 45})
	if err != nil {
		t.Fatalf("a criterion not met refused: %v", err)
	}
	if j, err := tab.Judge(ctx, far, "water_convenience"); err != nil || j.Verdict != schema.NotEvaluable || j.Decided != "rules[0].any_of[2]" {
		t.Fatalf("judge a 45-minute well of no recorded distance: %+v %v", j, err)
	}
	if err := tab.Update(ctx, "water_inspection", far, client.Fields{"distance_horizontal_m": 1200}); err != nil {
		t.Fatal(err)
	}
	if j, err := tab.Judge(ctx, far, "water_convenience"); err != nil || j.Verdict != schema.NotMet || j.Decided != "rules[0].any_of" {
		t.Fatalf("judge a 45-minute well: %+v %v", j, err)
	}
	if j, err := tab.Judge(ctx, piped, "water_convenience"); err != nil || j.Verdict != schema.Met || j.Decided != "rules[0].any_of[0]" {
		t.Fatalf("judge piped water: %+v %v", j, err)
	}
	if _, err := tab.Judge(ctx, piped, "fetch_time_unless_piped"); err == nil {
		t.Fatal("a requirement judged as a criterion")
	}
	apitest.MustSync(t, tab)
	// An update naming only source leaves the record failing the rule.
	err = tab.Update(ctx, "water_inspection", piped, client.Fields{"source": "spring"})
	if !errors.As(err, &verr) || len(verr.Errors) != 1 || verr.Errors[0].Rule != "fetch_time_unless_piped" || verr.Errors[0].Path != "fields.fetch_time_min" {
		t.Fatalf("an update leaving the record failing the rule: %v", err)
	}
	if err := tab.Update(ctx, "water_inspection", piped, client.Fields{"source": "spring", "fetch_time_min": 5}); err != nil {
		t.Fatal(err)
	}
	if st, _ := tab.Status(ctx); st.Pending != 1 {
		t.Fatalf("pending: %d", st.Pending)
	}

	// The server's verdict on the refused change, pushed past the client.
	cs := syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: apitest.AdminDevice, DeviceSeq: 1, SchemaVersion: 2,
		Changes: []syncproto.Change{{Entity: "water_inspection", ID: uuid.NewString(), Op: syncproto.OpUpsert, At: "2026-11-20T08:00:00.000Z",
			Fields: map[string]json.RawMessage{"household_id": json.RawMessage(`"` + hh + `"`), "inspected_on": json.RawMessage(`"2026-11-20"`),
				"source": json.RawMessage(`"well"`)}}}}
	resp, body := ts.PushJSON(t, cs)
	var answer syncproto.PushResponse
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &answer) != nil || len(answer.Results) != 1 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	if res := answer.Results[0]; res.Status != syncproto.StatusRejected || len(res.Errors) != 1 ||
		res.Errors[0].Path != verr.Errors[0].Path || res.Errors[0].Rule != verr.Errors[0].Rule || res.Errors[0].Message != verr.Errors[0].Message {
		t.Fatalf("the server's verdict %+v differs from the client's %+v", res.Errors, verr.Errors)
	}
}

func refusals(t *testing.T, c *client.Client) []client.Refusal {
	t.Helper()
	r, err := c.Refused(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestClientOpensADatabaseOfAnOlderClient: a tablet database made before
// records kept their flags and acknowledged changes their version gains
// the columns at Open, and the tablet syncs on.
func TestClientOpensADatabaseOfAnOlderClient(t *testing.T) {
	ts := serveTestForms(t)
	path := filepath.Join(t.TempDir(), "device.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE records (id TEXT PRIMARY KEY, entity TEXT NOT NULL, version INTEGER NOT NULL, fields TEXT NOT NULL,
			deleted INTEGER NOT NULL, merged_into TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
			gen INTEGER NOT NULL DEFAULT 0)`,
		`CREATE TABLE acked (record_id TEXT PRIMARY KEY, entity TEXT NOT NULL, op TEXT NOT NULL, version INTEGER NOT NULL, fields TEXT NOT NULL)`,
		`INSERT INTO records VALUES ('0193a000-0000-7000-8000-000000000001', 'household', 1, '{"village":"500240107201","head_name":"户主"}', 0, '', '2026-11-20T08:00:00.000Z', 'w', 0)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	c, err := client.Open(path, client.Options{HTTP: ts.Client(), Now: ts.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if r, err := c.Get(ctx, "0193a000-0000-7000-8000-000000000001"); err != nil || len(r.Flags) != 0 || string(r.Fields["head_name"]) != `"户主"` {
		t.Fatalf("a record of the older database: %+v %v", r, err)
	}
	if err := c.Login(ctx, ts.URL, "worker", apitest.TestPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, "household", client.Fields{"village": "500240107201", "head_name": "户主"}); err != nil {
		t.Fatal(err)
	}
	if rep := apitest.MustSync(t, c); rep.Pushed != 1 || rep.Refused != 0 {
		t.Fatalf("sync: %+v", rep)
	}
}
