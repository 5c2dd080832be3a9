package console_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestConflictsPageNamesBothDepartments: a conflict between two field
// workers of different departments shows, on the conflicts page, the
// department of each side beside its value and the incoming user's beside
// their name.
func TestConflictsPageNamesBothDepartments(t *testing.T) {
	ts := apitest.MustServe(t)
	push := func(name, department string) func(syncproto.Change) {
		ts.AddUser(t, name, syncproto.RoleFieldWorker, "500240107")
		u, err := ts.Store.User(t.Context(), name)
		if err != nil || u == nil {
			t.Fatal(u, err)
		}
		u.Department = department
		if err := ts.Store.PutUser(t.Context(), *u); err != nil {
			t.Fatal(err)
		}
		d := storetest.NewDevice(name)
		token := ts.Login(t, name, d.Actor.DeviceID)
		return func(ch syncproto.Change) {
			b, _ := json.Marshal(d.Changeset(ch))
			if resp, body := ts.DoAs(t, token, http.MethodPost, "/v1/sync/push", "application/json", b); resp.StatusCode != 200 {
				t.Fatalf("push: %d %s", resp.StatusCode, body)
			}
		}
	}
	edu, civ := push("edu.worker", "education"), push("civil.worker", "civil_affairs")
	h := uuid.NewString()
	edu(storetest.Household(h, storetest.SouthVillage, storetest.T0))
	edu(storetest.Upsert("household", h, 1, storetest.T0.Add(time.Minute), map[string]any{"members": 6}))
	civ(storetest.Upsert("household", h, 1, storetest.T0.Add(2*time.Minute), map[string]any{"members": 7}))

	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	resp, page := v.do("GET", "/console/conflicts", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("conflicts page: %d", resp.StatusCode)
	}
	stored := strings.Index(page, `<span class="dept">部门: 教育局</span>`)
	incoming := strings.Index(page, `<span class="dept">部门: 民政局</span>`)
	if stored < 0 || incoming < 0 || !strings.Contains(page, "civil.worker (民政局)") {
		t.Fatalf("the conflicts page names not both departments:\n%s", page)
	}
	if choose := strings.Index(page, `value="incoming"`); !(stored < choose && choose < incoming) {
		t.Errorf("the departments are not beside their sides: stored at %d, incoming at %d, the incoming choice at %d", stored, incoming, choose)
	}
}
