package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/storetest"
)

// TestResolveAcceptsTheConflictsOwnNames: a resolution may choose any of
// the three values the conflict JSON names (kept, stored, incoming), and a
// request that cannot be run names the member at fault: choose for an
// unknown choice or for choose sent with value, value when both are
// missing.
func TestResolveAcceptsTheConflictsOwnNames(t *testing.T) {
	s := mustSupervise(t)
	hh := uuid.NewString()
	s.push(t, s.workerTok, s.worker, storetest.Household(hh, storetest.SouthVillage, storetest.T0))
	s.push(t, s.workerTok, s.worker, storetest.Upsert("household", hh, 1, storetest.T0.Add(time.Minute), map[string]any{"head_name": "王甲"}))
	// A later edit from another tablet on the same base: lww keeps it, and
	// the conflict's stored value is the one it replaced.
	pr := s.push(t, s.otherTok, s.other, storetest.Upsert("household", hh, 1, storetest.T0.Add(2*time.Minute), map[string]any{"head_name": "王乙"}))
	if len(pr.Results[0].Conflicts) != 1 || pr.Results[0].Conflicts[0].State != "auto_resolved" {
		t.Fatalf("want an auto-resolved conflict: %+v", pr.Results[0])
	}
	id := pr.Results[0].Conflicts[0].ConflictID
	resolve := "/v1/conflicts/" + id + "/resolve"

	for _, tc := range []struct {
		name, body, path string
	}{
		{"an unknown choice", `{"choose": "theirs"}`, "choose"},
		{"value and choose together", `{"choose": "kept", "value": "王丙"}`, "choose"},
		{"neither", `{"note": "?"}`, "value"},
	} {
		resp, body := s.DoAs(t, s.supSouth, http.MethodPost, resolve, "application/json", []byte(tc.body))
		var p api.Problem
		_ = json.Unmarshal(body, &p)
		if resp.StatusCode != http.StatusUnprocessableEntity || len(p.Errors) != 1 || p.Errors[0].Path != tc.path {
			t.Errorf("%s: want 422 at %q, got %d %s", tc.name, tc.path, resp.StatusCode, body)
		}
	}

	var res struct {
		Record struct {
			Fields map[string]json.RawMessage `json:"fields"`
		} `json:"record"`
	}
	s.postJSON(t, s.supSouth, resolve, map[string]any{"choose": "stored", "note": "the first visit was right"}, 200, &res)
	if got := string(res.Record.Fields["head_name"]); got != `"王甲"` {
		t.Fatalf(`choose "stored" decided %s, want the value the record held before the change, "王甲"`, got)
	}
}
