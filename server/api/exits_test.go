package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// exitEvidence is a version 3 household of storetest.SouthVillage with
// everything its verdict needs, in_poverty, and its roster, housing and
// water records: verified as of storetest.T0, or blocked by housing with
// grade "D".
func exitEvidence(hh, grade string) []syncproto.Change {
	return []syncproto.Change{
		storetest.Upsert("household", hh, 0, storetest.T0, map[string]any{"village": storetest.SouthVillage, "head_name": "谭德明",
			"members": 2, "categories": []string{"registered_poor"}, "status": "in_poverty",
			"food_assured": true, "clothing_assured": true, "food_clothing_checked": "home_visit",
			"income_per_person": 9000, "income_year": 2026}),
		storetest.Upsert("person", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": hh, "name": "谭德明",
			"relation": "head", "birth_year": 1975, "medical_insurance": true, "illness": "none"}),
		storetest.Upsert("person", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": hh, "name": "谭小梅",
			"relation": "child", "birth_year": 2014, "schooling": "enrolled", "school": "南溪小学", "medical_insurance": true, "illness": "none"}),
		housingOnDay(uuid.NewString(), hh, "2026-10-01", grade, "none", ""),
		storetest.Upsert("water_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": hh, "inspected_on": "2026-10-01",
			"source": "piped_home", "quality_ok": true, "quality_basis": "lab_report", "liters_per_person_day": 60, "reliability_pct": 98}),
	}
}

// setStatus is a change of the household (at version base) to status, with
// an override note when note is not "".
func setStatus(hh string, base int64, status, note string) syncproto.Change {
	f := map[string]any{"status": status}
	if note != "" {
		f["status_note"] = note
	}
	return storetest.Upsert("household", hh, base, storetest.T0, f)
}

// onlyResult pushes one change in version 3 and returns its result.
func onlyResult(t *testing.T, ts *apitest.Server, user string, ch syncproto.Change) syncproto.ChangeResult {
	t.Helper()
	resp, body := pushV3(t, ts, user, uuid.NewString(), ch)
	var pr syncproto.PushResponse
	if resp.StatusCode != 200 || json.Unmarshal(body, &pr) != nil || len(pr.Results) != 1 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	return pr.Results[0]
}

// exitHistory returns the household's versions: flags and note by version.
func exitHistory(t *testing.T, ts *apitest.Server, hh string) []struct {
	Version int64    `json:"version"`
	Flags   []string `json:"flags"`
	Note    string   `json:"note"`
	UserID  string   `json:"user_id"`
} {
	t.Helper()
	resp, body := ts.DoAs(t, ts.Login(t, "admin", apitest.AdminDevice), http.MethodGet, "/v1/records/household/"+hh+"/history", "", nil)
	var h struct {
		Versions []struct {
			Version int64    `json:"version"`
			Flags   []string `json:"flags"`
			Note    string   `json:"note"`
			UserID  string   `json:"user_id"`
		} `json:"versions"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &h) != nil {
		t.Fatalf("history: %d %s", resp.StatusCode, body)
	}
	return h.Versions
}

func refused(t *testing.T, what string, r syncproto.ChangeResult, want string) {
	t.Helper()
	if r.Status != syncproto.StatusRejected || len(r.Errors) != 1 || r.Errors[0].Path != "fields.status" ||
		r.Errors[0].Rule != "status_decided" || !strings.Contains(r.Errors[0].Message, want) {
		t.Fatalf("%s: %+v, want rejected at fields.status by status_decided (%q)", what, r, want)
	}
}

// TestExitsAreDecided: a field worker cannot set lifted_out (quarantined
// under the rule status_decided at fields.status); a supervisor cannot while
// the household's verdict is blocked or incomplete, can with an override
// note (flagged override in the history, with the verdict it overrode),
// and can on a verified verdict (flagged decided, with the verdict and the
// standards' editions it used). The refusals are in the quarantine.
func TestExitsAreDecided(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	verified, blocked, incomplete := uuid.NewString(), uuid.NewString(), uuid.NewString()
	changes := append(exitEvidence(verified, "B"), exitEvidence(blocked, "D")...)
	changes = append(changes, exitEvidence(incomplete, "B")[:1]...) // no roster, housing or water yet
	resp, body := pushV3(t, ts, "worker", uuid.NewString(), changes...)
	if resp.StatusCode != 200 || strings.Contains(string(body), `"rejected"`) {
		t.Fatalf("the evidence: %d %s", resp.StatusCode, body)
	}

	refused(t, "the field worker", onlyResult(t, ts, "worker", setStatus(verified, 1, "lifted_out", "")), "decided by supervisor, admin")
	refused(t, "the field worker with a note", onlyResult(t, ts, "worker", setStatus(verified, 1, "lifted_out", "looks fine")), "not by a field_worker")
	refused(t, "the supervisor, blocked", onlyResult(t, ts, "sup", setStatus(blocked, 1, "lifted_out", "")), "blocked by housing")
	refused(t, "the supervisor, incomplete", onlyResult(t, ts, "sup", setStatus(incomplete, 1, "lifted_out", "")), "incomplete")
	if r := onlyResult(t, ts, "worker", setStatus(incomplete, 1, "relapse_risk", "")); r.Status != syncproto.StatusApplied {
		t.Fatalf("a field worker's relapse_risk (not decided): %+v", r)
	}

	if r := onlyResult(t, ts, "sup", setStatus(verified, 1, "lifted_out", "")); r.Status != syncproto.StatusApplied {
		t.Fatalf("the supervisor, verified: %+v", r)
	}
	if r := onlyResult(t, ts, "sup", setStatus(blocked, 1, "lifted_out", "县复核认定：危房改造已竣工待鉴定")); r.Status != syncproto.StatusApplied {
		t.Fatalf("the supervisor's override: %+v", r)
	}

	h := exitHistory(t, ts, verified)
	if last := h[len(h)-1]; len(h) != 2 || strings.Join(last.Flags, ",") != "decided" ||
		!strings.Contains(last.Note, "verdict verified as of 2026-11-20") || !strings.Contains(last.Note, "water_quantity T/CHES 18-2018") {
		t.Errorf("the decided exit's history: %+v", h)
	}
	h = exitHistory(t, ts, blocked)
	if last := h[len(h)-1]; len(h) != 2 || strings.Join(last.Flags, ",") != "override" ||
		!strings.Contains(last.Note, "override") || !strings.Contains(last.Note, "verdict blocked by housing") ||
		strings.Contains(last.Note, "危房") {
		t.Errorf("the override's history: %+v", h)
	}

	// Every refusal is kept where the supervisors look.
	_, body = ts.DoAs(t, ts.Login(t, "sup", uuid.NewString()), http.MethodGet, "/v1/quarantine?region=500240", "", nil)
	if n := strings.Count(string(body), `"rule":"status_decided"`); n != 4 {
		t.Errorf("%d refusals in the quarantine, want 4: %.600s", n, body)
	}
}

// pushIn pushes changes in schema version as user on a new device and
// returns the results.
func pushIn(t *testing.T, ts *apitest.Server, version int, user string, changes ...syncproto.Change) []syncproto.ChangeResult {
	t.Helper()
	device := uuid.NewString()
	cs := syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: device, DeviceSeq: 1, SchemaVersion: version, Changes: changes}
	b, _ := json.Marshal(cs)
	resp, body := ts.DoAs(t, ts.Login(t, user, device), http.MethodPost, "/v1/sync/push", "application/json", b)
	var pr syncproto.PushResponse
	if resp.StatusCode != 200 || json.Unmarshal(body, &pr) != nil || len(pr.Results) != len(changes) {
		t.Fatalf("push in version %d: %d %s", version, resp.StatusCode, body)
	}
	return pr.Results
}

// TestExitsFromOlderTablets: a version 1 or 2 tablet's status, migrated on
// arrival, is judged the same way: a field worker's lifted_out is refused,
// a supervisor's on a blocked household too (those versions have no
// override note), on a verified one it is decided. A household created with
// lifted_out is refused for a field worker in every version; a deciding
// role registers it (the poverty register's status, flagged registered).
func TestExitsFromOlderTablets(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	verified, blocked := uuid.NewString(), uuid.NewString()
	changes := append(exitEvidence(verified, "B"), exitEvidence(blocked, "D")...)
	resp, body := pushV3(t, ts, "worker", uuid.NewString(), changes...)
	if resp.StatusCode != 200 || strings.Contains(string(body), `"rejected"`) {
		t.Fatalf("the evidence: %d %s", resp.StatusCode, body)
	}
	for _, version := range []int{1, 2} {
		refused(t, "a field worker's old tablet", pushIn(t, ts, version, "worker", setStatus(verified, 1, "lifted_out", ""))[0], "not by a field_worker")
		refused(t, "a supervisor's old tablet, blocked", pushIn(t, ts, version, "sup", setStatus(blocked, 1, "lifted_out", ""))[0], "blocked by housing")
		created := storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{"village": storetest.SouthVillage,
			"head_name": "谭明", "status": "lifted_out"})
		refused(t, "a field worker's new household", pushIn(t, ts, version, "worker", created)[0], "not by a field_worker")
	}
	if r := pushIn(t, ts, 1, "sup", setStatus(verified, 1, "lifted_out", ""))[0]; r.Status != syncproto.StatusApplied {
		t.Fatalf("a supervisor's version 1 tablet, verified: %+v", r)
	}
	if h := exitHistory(t, ts, verified); strings.Join(h[len(h)-1].Flags, ",") != "decided" || !strings.Contains(h[len(h)-1].Note, "verdict verified") {
		t.Errorf("the decided exit's history: %+v", h)
	}
	registered := uuid.NewString()
	created := storetest.Upsert("household", registered, 0, storetest.T0, map[string]any{"village": storetest.SouthVillage,
		"head_name": "谭明", "status": "lifted_out"})
	if r := pushIn(t, ts, 3, "sup", created)[0]; r.Status != syncproto.StatusApplied {
		t.Fatalf("a supervisor's new household: %+v", r)
	}
	if h := exitHistory(t, ts, registered); strings.Join(h[0].Flags, ",") != "registered" || !strings.Contains(h[0].Note, "not judged") {
		t.Errorf("the registered household's history: %+v", h)
	}
}
