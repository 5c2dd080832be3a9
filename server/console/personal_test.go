package console_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

const (
	consoleIDCard = "500240201401011239"
	consoleMasked = "5002**********1239"
)

// TestConsoleMasksIdentityForAViewer: a viewer signs in to the console and
// reads the household page (the person's fields and the history of the
// identity number: both versions), and downloads the person CSV from the
// exports page's link with the console's session: every identity number
// is masked (first four and last four kept). A supervisor sees the whole
// number on the same page and in the same CSV. The viewer may read but
// not decide (a resolve is a 403 page). The number is never in the
// server's log.
func TestConsoleMasksIdentityForAViewer(t *testing.T) {
	logs := &apitest.LogBuffer{}
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "dept", syncproto.RoleViewer, "500240")
	hh, person := uuid.NewString(), uuid.NewString()
	first := "500240201401010009"
	changes := []syncproto.Change{
		storetest.Upsert("household", hh, 0, storetest.T0, map[string]any{"village": storetest.SouthVillage, "head_name": "谭德明",
			"members": 2, "categories": []string{"registered_poor"}, "status": "in_poverty"}),
		storetest.Upsert("person", person, 0, storetest.T0, map[string]any{"household_id": hh, "name": "谭小梅",
			"relation": "child", "birth_year": 2014, "id_card": first, "schooling": "enrolled", "medical_insurance": true}),
	}
	push := func(changes ...syncproto.Change) {
		t.Helper()
		device := uuid.NewString()
		cs := syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: device, DeviceSeq: 1, SchemaVersion: 3, Changes: changes}
		b, _ := json.Marshal(cs)
		resp, body := ts.DoAs(t, ts.Login(t, "worker", device), http.MethodPost, "/v1/sync/push", "application/json", b)
		if resp.StatusCode != 200 || strings.Contains(string(body), `"rejected"`) {
			t.Fatalf("push: %d %s", resp.StatusCode, body)
		}
	}
	push(changes...)
	push(storetest.Upsert("person", person, 1, storetest.T0, map[string]any{"id_card": consoleIDCard}))

	for _, c := range []struct {
		user, want string
		others     []string
	}{
		{"dept", consoleMasked, []string{consoleIDCard, first}},
		{"sup", consoleIDCard, []string{consoleMasked}},
	} {
		v := newVisitor(t, ts)
		v.signIn(c.user, nil)
		resp, page := v.do("GET", "/console/households/"+hh, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: the household page: %d", c.user, resp.StatusCode)
		}
		if n := strings.Count(page, c.want); n < 2 { // the field, and the history's after
			t.Errorf("%s: the household page shows %s %d times, want the field and its history", c.user, c.want, n)
		}
		for _, o := range c.others {
			if strings.Contains(page, o) {
				t.Errorf("%s: the household page shows %s", c.user, o)
			}
		}
		if c.user == "dept" && !strings.Contains(page, "5002**********0009") {
			t.Errorf("the viewer's history does not show the first number masked")
		}
		_, exports := v.do("GET", "/console/exports?region=500240", nil, nil)
		link := ""
		for _, part := range strings.Split(exports, `href="`) {
			if u, _, ok := strings.Cut(part, `"`); ok && strings.Contains(u, "entity=person") && strings.Contains(u, "format=csv") {
				link = strings.ReplaceAll(u, "&amp;", "&")
				break
			}
		}
		if link == "" {
			t.Fatalf("%s: no person CSV on the exports page", c.user)
		}
		resp, csv := v.do("GET", link, nil, nil)
		if resp.StatusCode != 200 || !strings.Contains(csv, c.want) {
			t.Errorf("%s: the person CSV (%s): %d, want %s: %.300s", c.user, link, resp.StatusCode, c.want, csv)
		}
		for _, o := range c.others {
			if strings.Contains(csv, o) {
				t.Errorf("%s: the person CSV shows %s", c.user, o)
			}
		}
		if c.user == "dept" {
			if resp, _ := v.do("GET", "/console/conflicts", nil, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("a viewer's conflicts page: %d, want 403", resp.StatusCode)
			}
			v.do("GET", "/console/households/"+hh, nil, nil)
			if resp, _ := v.do("POST", "/console/conflicts/"+uuid.NewString()+"/resolve", url.Values{"csrf": {v.csrf}, "choose": {"stored"}}, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("a viewer's resolve: %d, want 403", resp.StatusCode)
			}
		}
	}
	for _, secret := range []string{consoleIDCard, first, "201401011239"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds an identity number: %s", secret)
		}
	}
	if !strings.Contains(logs.String(), "/console/households/") {
		t.Error("the log has no line of the household page: the check above saw nothing")
	}
}
