package api_test

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/syncproto"
)

// statusConflict opens a manual conflict on the household's status: a
// field worker's relapse_risk lands first (version 2), then the
// supervisor's lifted_out from the same base, which the merge keeps as the
// incoming side of a conflict (the stored value stays, so no exit is
// judged yet). It returns the conflict's id.
func statusConflict(t *testing.T, ts *apitest.Server, hh string) string {
	t.Helper()
	if r := onlyResult(t, ts, "worker", setStatus(hh, 1, "relapse_risk", "")); r.Status != syncproto.StatusApplied {
		t.Fatalf("the field worker's relapse_risk: %+v", r)
	}
	if r := onlyResult(t, ts, "sup", setStatus(hh, 1, "lifted_out", "")); r.Status != syncproto.StatusConflict || len(r.Conflicts) != 1 {
		t.Fatalf("the supervisor's concurrent lifted_out: %+v, want a conflict", r)
	}
	_, body := ts.DoAs(t, ts.Login(t, "sup", uuid.NewString()), http.MethodGet, "/v1/conflicts?region=500240&state=open", "", nil)
	var page struct {
		Conflicts []struct {
			ID       string `json:"conflict_id"`
			RecordID string `json:"record_id"`
			Field    string `json:"field"`
		} `json:"conflicts"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	for _, c := range page.Conflicts {
		if c.RecordID == hh && c.Field == "status" {
			return c.ID
		}
	}
	t.Fatalf("no open status conflict of %s: %s", hh, body)
	return ""
}

// resolve posts a resolution as user and returns the answer.
func resolve(t *testing.T, ts *apitest.Server, user, conflict string, body map[string]any) (*http.Response, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	return ts.DoAs(t, ts.Login(t, user, uuid.NewString()), http.MethodPost, "/v1/conflicts/"+conflict+"/resolve", "application/json", b)
}

// refusedAt checks a problem with one error at path under the rule
// status_decided whose message says want.
func refusedAt(t *testing.T, what string, resp *http.Response, body []byte, status int, path, want string) {
	t.Helper()
	p := apitest.MustProblem(t, resp, body, status)
	if len(p.Errors) != 1 || p.Errors[0].Path != path || p.Errors[0].Rule != "status_decided" || !strings.Contains(p.Errors[0].Message, want) {
		t.Fatalf("%s: %s, want %d at %s by status_decided (%q)", what, body, status, path, want)
	}
}

// TestResolvedExitsAreDecided: a conflict on a household's status settled
// with lifted_out is judged as a pushed exit is. On a blocked household the
// resolution is refused at override_note (the conflict stays open); with an
// override note it is applied, the note lands in status_note by the same
// version, and the history flags it override with the verdict it
// overrode; on a verified household "choose incoming" is applied and
// flagged decided with the verdict and its standards. An override note on
// a resolution that sets no decided value is refused at override_note.
func TestResolvedExitsAreDecided(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	verified, blocked, other := uuid.NewString(), uuid.NewString(), uuid.NewString()
	changes := append(exitEvidence(verified, "B"), exitEvidence(blocked, "D")...)
	changes = append(changes, exitEvidence(other, "D")...)
	resp, body := pushV3(t, ts, "worker", uuid.NewString(), changes...)
	if resp.StatusCode != 200 || strings.Contains(string(body), `"rejected"`) {
		t.Fatalf("the evidence: %d %s", resp.StatusCode, body)
	}

	cb := statusConflict(t, ts, blocked)
	resp, body = resolve(t, ts, "sup", cb, map[string]any{"choose": "incoming"})
	refusedAt(t, "lifted_out on a blocked verdict", resp, body, http.StatusUnprocessableEntity, "override_note", "blocked by housing")
	resp, body = resolve(t, ts, "sup", cb, map[string]any{"value": "lifted_out", "override_note": "   "})
	refusedAt(t, "a blank override note", resp, body, http.StatusUnprocessableEntity, "override_note", "a supervisor or admin may override")
	if h := exitHistory(t, ts, blocked); len(h) != 2 {
		t.Fatalf("a refused resolution made a version: %+v", h)
	}
	const note = "县复核认定：危房改造已竣工待鉴定"
	resp, body = resolve(t, ts, "sup", cb, map[string]any{"choose": "incoming", "note": "asked the township", "override_note": note})
	if resp.StatusCode != 200 {
		t.Fatalf("the override: %d %s", resp.StatusCode, body)
	}
	var res struct {
		Record syncproto.Record `json:"record"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if got := string(res.Record.Fields["status"]) + " " + string(res.Record.Fields["status_note"]); got != `"lifted_out" "`+note+`"` {
		t.Errorf("the overridden record: %s", got)
	}
	h := exitHistory(t, ts, blocked)
	if last := h[len(h)-1]; len(h) != 3 || strings.Join(last.Flags, ",") != "override" ||
		!strings.Contains(last.Note, "as an override") || !strings.Contains(last.Note, "verdict blocked by housing") ||
		strings.Contains(last.Note, "危房") {
		t.Errorf("the resolved override's history: %+v", h)
	}

	cv := statusConflict(t, ts, verified)
	resp, body = resolve(t, ts, "sup", cv, map[string]any{"choose": "incoming"})
	if resp.StatusCode != 200 {
		t.Fatalf("lifted_out on a verified verdict: %d %s", resp.StatusCode, body)
	}
	h = exitHistory(t, ts, verified)
	if last := h[len(h)-1]; len(h) != 3 || strings.Join(last.Flags, ",") != "decided" ||
		!strings.Contains(last.Note, "verdict verified as of 2026-11-20") || !strings.Contains(last.Note, "water_quantity T/CHES 18-2018") {
		t.Errorf("the resolved decided exit's history: %+v", h)
	}

	co := statusConflict(t, ts, other)
	resp, body = resolve(t, ts, "sup", co, map[string]any{"choose": "stored", "override_note": "not needed"})
	if p := apitest.MustProblem(t, resp, body, http.StatusUnprocessableEntity); len(p.Errors) != 1 || p.Errors[0].Path != "override_note" {
		t.Errorf("an override note without a decided value: %s", body)
	}
	resp, body = resolve(t, ts, "sup", co, map[string]any{"choose": "stored"})
	if resp.StatusCode != 200 {
		t.Fatalf("keeping relapse_risk: %d %s", resp.StatusCode, body)
	}
	if h := exitHistory(t, ts, other); len(h[len(h)-1].Flags) != 0 {
		t.Errorf("a resolution to relapse_risk is flagged: %+v", h)
	}
}

// adminDecidesCatalog is the built-in catalog with version 3's status
// decided by admins alone (supervisors propose).
func adminDecidesCatalog(t *testing.T) *schema.Catalog {
	t.Helper()
	mfs := fstest.MapFS{}
	root := os.DirFS("../../schema/forms")
	err := fs.WalkDir(root, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, path)
		if path == "3/household.json" {
			s := strings.Replace(string(b), `"propose": ["field_worker"], "decide": ["supervisor", "admin"]`, `"propose": ["field_worker", "supervisor"], "decide": ["admin"]`, 1)
			if s == string(b) {
				t.Fatal("3/household.json: the status's write permission moved")
			}
			b = []byte(s)
		}
		mfs["forms/"+path] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := schema.LoadCatalog(mfs, "forms")
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// TestResolvedExitNeedsADecidingRole: where the forms let only admins
// decide lifted_out, a supervisor's resolution to it is refused (403 at
// "value", rule status_decided), even on a verified household; an admin's
// is decided.
func TestResolvedExitNeedsADecidingRole(t *testing.T) {
	cat := adminDecidesCatalog(t)
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(c *api.Config) { c.Catalog = cat })
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	hh := uuid.NewString()
	resp, body := pushV3(t, ts, "worker", uuid.NewString(), exitEvidence(hh, "B")...)
	if resp.StatusCode != 200 || strings.Contains(string(body), `"rejected"`) {
		t.Fatalf("the evidence: %d %s", resp.StatusCode, body)
	}
	// A supervisor may propose here: the concurrent lifted_out is kept as
	// the incoming side of a conflict.
	c := statusConflict(t, ts, hh)
	resp, body = resolve(t, ts, "sup", c, map[string]any{"choose": "incoming", "override_note": "x"})
	refusedAt(t, "a supervisor who may not decide", resp, body, http.StatusForbidden, "value", "decided by admin, not by a supervisor")
	resp, body = resolve(t, ts, "admin", c, map[string]any{"choose": "incoming"})
	if resp.StatusCode != 200 {
		t.Fatalf("the admin's resolution: %d %s", resp.StatusCode, body)
	}
	if h := exitHistory(t, ts, hh); strings.Join(h[len(h)-1].Flags, ",") != "decided" || !strings.Contains(h[len(h)-1].Note, "decided by an admin") {
		t.Errorf("the admin's decided exit: %+v", h)
	}
}
