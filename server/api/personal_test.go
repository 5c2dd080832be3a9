package api_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// An identity number of the demo's shape (county 500240), with its check
// digit, and how a viewer sees it.
const (
	testIDCard = "500240201001010018"
	maskedCard = "5002**********0018"
)

// pushV3 pushes changes in version 3 as user on device and returns the
// answer.
func pushV3(t *testing.T, ts *apitest.Server, user, device string, changes ...syncproto.Change) (*http.Response, []byte) {
	t.Helper()
	cs := syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: device, DeviceSeq: 1, SchemaVersion: 3, Changes: changes}
	b, _ := json.Marshal(cs)
	return ts.DoAs(t, ts.Login(t, user, device), http.MethodPost, "/v1/sync/push", "application/json", b)
}

func v3Household(id string) syncproto.Change {
	return storetest.Upsert("household", id, 0, storetest.T0, map[string]any{"village": storetest.SouthVillage, "head_name": "谭德明",
		"members": 2, "categories": []string{"registered_poor"}, "status": "relapse_risk"})
}

func v3Person(id, household, card string) syncproto.Change {
	return storetest.Upsert("person", id, 0, storetest.T0, map[string]any{"household_id": household, "name": "谭小梅",
		"relation": "child", "birth_year": 2014, "id_card": card, "schooling": "enrolled", "medical_insurance": true})
}

// TestIdentityMaskedByRole: the identity number a field worker recorded
// is whole in the field worker's pull, in the supervisor's and admin's
// snapshots (NDJSON, CSV), record and history; a viewer of the same scope
// gets it masked (first four and last four kept) in every one of them,
// and may neither pull nor push.
func TestIdentityMaskedByRole(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "dept", syncproto.RoleViewer, "500240")
	worker := uuid.NewString()
	hh, person := uuid.NewString(), uuid.NewString()
	resp, body := pushV3(t, ts, "worker", worker, v3Household(hh), v3Person(person, hh, testIDCard))
	if resp.StatusCode != 200 || strings.Contains(string(body), `"rejected"`) {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.DoAs(t, ts.Login(t, "worker", worker), http.MethodGet, "/v1/sync/pull", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), testIDCard) {
		t.Fatalf("the field worker's pull: %d %s", resp.StatusCode, body)
	}

	for _, c := range []struct {
		user string
		want string // what the reader sees of the number
	}{{"admin", testIDCard}, {"sup", testIDCard}, {"dept", maskedCard}} {
		tok := ts.Login(t, c.user, uuid.NewString())
		other := testIDCard
		if c.want == testIDCard {
			other = maskedCard
		}
		for _, q := range []string{"region=500240&entity=person&format=ndjson", "region=500240&entity=person&format=csv"} {
			_, body := ts.Snapshot(t, tok, q)
			if !strings.Contains(string(body), c.want) || strings.Contains(string(body), other) {
				t.Errorf("%s: snapshot ?%s: want %s: %.400s", c.user, q, c.want, body)
			}
		}
		for _, path := range []string{"/v1/records/person/" + person, "/v1/records/person/" + person + "/history"} {
			resp, body := ts.DoAs(t, tok, http.MethodGet, path, "", nil)
			if resp.StatusCode != 200 || !strings.Contains(string(body), c.want) || strings.Contains(string(body), other) {
				t.Errorf("%s: %s: %d, want %s: %.400s", c.user, path, resp.StatusCode, c.want, body)
			}
		}
	}

	dept := ts.Login(t, "dept", uuid.NewString())
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/sync/pull"}, {http.MethodPost, "/v1/sync/push"}, {http.MethodGet, "/v1/sync/checksum"},
	} {
		resp, body := ts.DoAs(t, dept, c.method, c.path, "application/json", []byte(`{}`))
		apitest.MustProblem(t, resp, body, http.StatusForbidden)
	}
	resp, body = ts.DoAs(t, dept, http.MethodGet, "/v1/reports/coverage?region=500240", "", nil)
	if resp.StatusCode != 200 {
		t.Errorf("a viewer's coverage report: %d %s", resp.StatusCode, body)
	}
}

// TestIdentityNotInLogsOrErrors pushes a person whose identity number has
// a wrong check digit, and one too long for the field, with the server
// logging at debug level: the changes are rejected naming the rule and
// the field (the quarantine lists them, for supervisors), and neither
// number appears in any log line, in the push's answer, in the problem
// answering a malformed push that carries one, or in the metrics.
func TestIdentityNotInLogsOrErrors(t *testing.T) {
	logs := &apitest.LogBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.Logger = logger })
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	const badDigit = "500240201001010017" // the check digit is 8
	const tooLong = "5002402010010100189" // 19 characters
	hh := uuid.NewString()
	resp, body := pushV3(t, ts, "worker", uuid.NewString(), v3Household(hh),
		v3Person(uuid.NewString(), hh, badDigit), v3Person(uuid.NewString(), hh, tooLong))
	if resp.StatusCode != 200 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	var pr syncproto.PushResponse
	if err := json.Unmarshal(body, &pr); err != nil || len(pr.Results) != 3 {
		t.Fatalf("push answer %s: %v", body, err)
	}
	if r := pr.Results[1]; r.Status != syncproto.StatusRejected || len(r.Errors) != 1 || r.Errors[0].Rule != "id_card_check_digit" || r.Errors[0].Path != "fields.id_card" {
		t.Errorf("the wrong check digit: %+v", r)
	}
	if r := pr.Results[2]; r.Status != syncproto.StatusRejected || len(r.Errors) == 0 || r.Errors[0].Path != "fields.id_card" {
		t.Errorf("the number too long: %+v", r)
	}
	// A malformed push (a problem document) that carries a number.
	resp, problem := ts.DoAs(t, ts.Login(t, "worker", uuid.NewString()), http.MethodPost, "/v1/sync/push", "application/json",
		[]byte(`{"changeset_id": "x", "changes": [{"entity": "person", "fields": {"id_card": "`+badDigit+`"}}]}`))
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Errorf("a malformed push: %d %s", resp.StatusCode, problem)
	}
	_, quarantine := ts.Do(t, http.MethodGet, "/v1/quarantine", "", nil)
	_, metrics := ts.DoAs(t, "", http.MethodGet, "/metrics", "", nil)
	for what, text := range map[string]string{"the log": logs.String(), "the push's answer": string(body), "the problem": string(problem), "the metrics": string(metrics)} {
		for _, number := range []string{badDigit, tooLong, badDigit[:14]} {
			if strings.Contains(text, number) {
				t.Errorf("%s holds the identity number %s", what, number)
			}
		}
	}
	if !strings.Contains(string(quarantine), "id_card_check_digit") {
		t.Errorf("the quarantine does not list the rejected change: %.300s", quarantine)
	}
	if !strings.Contains(logs.String(), "/v1/sync/push") {
		t.Fatal("the log holds no push: nothing was checked")
	}
}
