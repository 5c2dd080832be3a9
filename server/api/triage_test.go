package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

type problemBody struct {
	Errors []syncproto.FieldError `json:"errors"`
}

// problemAt posts body and checks the status and that the problem names path.
func (s *supervised) problemAt(t *testing.T, tok, path string, body any, status int, errPath string) {
	t.Helper()
	var p problemBody
	s.postJSON(t, tok, path, body, status, &p)
	for _, e := range p.Errors {
		if e.Path == errPath {
			return
		}
	}
	t.Fatalf("POST %s: problem %+v does not name %s", path, p, errPath)
}

// duplicatePair registers one household twice (same registration number)
// from two tablets and returns the duplicate's id and the two households.
func (s *supervised) duplicatePair(t *testing.T) (id, first, second string) {
	t.Helper()
	first, second = uuid.NewString(), uuid.NewString()
	reg := "50024010720" + first[:5]
	s.push(t, s.workerTok, s.worker, storetest.RegisteredHousehold(first, storetest.SouthVillage, reg, storetest.T0))
	s.push(t, s.otherTok, s.other, storetest.RegisteredHousehold(second, storetest.SouthVillage, reg, storetest.T0.Add(time.Hour)))
	var list struct {
		Duplicates []struct {
			ID         string `json:"id"`
			HouseholdB string `json:"household_b"`
		} `json:"duplicates"`
	}
	s.getJSON(t, s.supSouth, "/v1/duplicates?state=open", 200, &list)
	for _, d := range list.Duplicates {
		if d.HouseholdB == second {
			return d.ID, first, second
		}
	}
	t.Fatalf("no duplicate for %s in %+v", second, list)
	return
}

type historyOf struct {
	Record    syncproto.Record   `json:"record"`
	Versions  []api.HistoryEntry `json:"versions"`
	Conflicts []struct {
		ConflictID string `json:"conflict_id"`
		State      string `json:"state"`
		Resolution *struct {
			Note string `json:"note"`
		} `json:"resolution"`
	} `json:"conflicts"`
}

// TestMergeSettlesTheMergedHouseholdsConflicts (issue 14 item 9): an open
// _deleted conflict of a household merged into another is settled by the
// merge, and no resolution brings the tombstone back to life; the merge's
// note is in both histories.
func TestMergeSettlesTheMergedHouseholdsConflicts(t *testing.T) {
	s := mustSupervise(t)
	id, first, second := s.duplicatePair(t)
	// The second household: edited by one tablet, deleted at the stale
	// base by the other, which opens a _deleted conflict.
	s.push(t, s.otherTok, s.other, storetest.Upsert("household", second, 1, storetest.T0.Add(2*time.Hour), map[string]any{"members": 6}))
	pr := s.push(t, s.workerTok, s.worker, storetest.Delete("household", second, 1, storetest.T0.Add(3*time.Hour)))
	if pr.Results[0].Status != "conflict" || len(pr.Results[0].Conflicts) != 1 {
		t.Fatalf("stale delete: %+v", pr.Results[0])
	}
	deleted := pr.Results[0].Conflicts[0].ConflictID

	var merged struct {
		Tombstone string `json:"tombstone"`
	}
	s.postJSON(t, s.supSouth, "/v1/duplicates/"+id+"/merge", map[string]any{"survivor": first, "note": "一户两录"}, 200, &merged)
	if merged.Tombstone != second {
		t.Fatalf("merge %+v", merged)
	}
	// Restoring the merged-away household is refused.
	s.postJSON(t, s.supSouth, "/v1/conflicts/"+deleted+"/resolve", map[string]any{"value": false, "note": "keep it"}, 409, nil)
	var hist historyOf
	s.getJSON(t, s.supSouth, "/v1/records/household/"+second+"/history", 200, &hist)
	if !hist.Record.Deleted || hist.Record.MergedInto != first {
		t.Fatalf("the merged household came back: %+v", hist.Record)
	}
	last := hist.Versions[len(hist.Versions)-1]
	if last.Op != "merge" || last.Note != "一户两录" {
		t.Fatalf("the merge version %+v lacks its note", last)
	}
	settled := false
	for _, c := range hist.Conflicts {
		if c.ConflictID == deleted {
			settled = c.State == syncproto.StateResolved && c.Resolution != nil &&
				strings.Contains(c.Resolution.Note, "merge into "+first) && strings.Contains(c.Resolution.Note, "一户两录")
		}
	}
	if !settled || len(last.Conflicts) != 1 {
		t.Fatalf("the merge did not settle the open conflict: %+v, merge version %+v", hist.Conflicts, last)
	}
	var survivor historyOf
	s.getJSON(t, s.supSouth, "/v1/records/household/"+first+"/history", 200, &survivor)
	if l := survivor.Versions[len(survivor.Versions)-1]; l.Op != "merge" || l.Note != "一户两录" {
		t.Fatalf("the survivor's merge version %+v lacks its note", l)
	}

	// A tablet that still edits the tombstone opens a new _deleted
	// conflict; resolving it by restoring is a 409 too.
	pr = s.push(t, s.otherTok, s.other, storetest.Upsert("household", second, 2, storetest.T0.Add(4*time.Hour), map[string]any{"members": 7}))
	if len(pr.Results[0].Conflicts) != 1 {
		t.Fatalf("edit of the tombstone: %+v", pr.Results[0])
	}
	s.postJSON(t, s.supSouth, "/v1/conflicts/"+pr.Results[0].Conflicts[0].ConflictID+"/resolve",
		map[string]any{"value": false}, 409, nil)
	var cov struct {
		Totals struct {
			Households int `json:"households"`
		} `json:"totals"`
	}
	s.getJSON(t, s.supSouth, "/v1/reports/coverage?region="+storetest.SouthVillage, 200, &cov)
	if cov.Totals.Households != 1 {
		t.Fatalf("coverage counts the merged household: %+v", cov)
	}
}

// TestMergeNeedsTheSurvivor: a merge without a survivor is a 422 naming
// the path, and merges nothing.
func TestMergeNeedsTheSurvivor(t *testing.T) {
	s := mustSupervise(t)
	id, first, _ := s.duplicatePair(t)
	resp, b := s.DoAs(t, s.supSouth, "POST", "/v1/duplicates/"+id+"/merge", "application/json", nil)
	if resp.StatusCode != 422 || !strings.Contains(string(b), `"path":"survivor"`) {
		t.Fatalf("merge without a body: %d %s", resp.StatusCode, b)
	}
	s.problemAt(t, s.supSouth, "/v1/duplicates/"+id+"/merge", map[string]any{"note": "same"}, 422, "survivor")
	s.problemAt(t, s.supSouth, "/v1/duplicates/"+id+"/merge", map[string]any{"survivor": first, "note": strings.Repeat("x", 2001)}, 422, "note")
	var open struct {
		Duplicates []struct {
			ID string `json:"id"`
		} `json:"duplicates"`
	}
	s.getJSON(t, s.supSouth, "/v1/duplicates?state=open", 200, &open)
	if len(open.Duplicates) != 1 || open.Duplicates[0].ID != id {
		t.Fatalf("a refused merge changed the duplicate: %+v", open)
	}
}

// TestDuplicateDismissed: a false duplicate is dismissed with a note
// (required), recorded with who and when, and can then not be merged.
func TestDuplicateDismissed(t *testing.T) {
	s := mustSupervise(t)
	id, first, second := s.duplicatePair(t)
	s.problemAt(t, s.supSouth, "/v1/duplicates/"+id+"/dismiss", map[string]any{}, 422, "note")
	s.problemAt(t, s.supSouth, "/v1/duplicates/"+id+"/dismiss", map[string]any{"note": "  "}, 422, "note")
	s.postJSON(t, s.supNorth, "/v1/duplicates/"+id+"/dismiss", map[string]any{"note": "different"}, 403, nil)
	type dup struct {
		ID        string `json:"id"`
		State     string `json:"state"`
		Note      string `json:"note"`
		DecidedBy string `json:"decided_by"`
		DecidedAt string `json:"decided_at"`
		NameA     string `json:"household_a_name"`
		NameB     string `json:"household_b_name"`
	}
	var res struct {
		Duplicate dup `json:"duplicate"`
	}
	s.postJSON(t, s.supSouth, "/v1/duplicates/"+id+"/dismiss", map[string]any{"note": "两户同名,户号录错"}, 200, &res)
	if d := res.Duplicate; d.State != syncproto.StateDismissed || d.Note != "两户同名,户号录错" || d.DecidedBy != "sup.south" || d.DecidedAt == "" {
		t.Fatalf("dismissal %+v", d)
	}
	s.postJSON(t, s.supSouth, "/v1/duplicates/"+id+"/dismiss", map[string]any{"note": "again"}, 409, nil)
	s.postJSON(t, s.supSouth, "/v1/duplicates/"+id+"/merge", map[string]any{"survivor": first}, 409, nil)
	var list struct {
		Duplicates []dup `json:"duplicates"`
	}
	s.getJSON(t, s.supSouth, "/v1/duplicates?state=dismissed", 200, &list)
	if len(list.Duplicates) != 1 || list.Duplicates[0].ID != id || list.Duplicates[0].Note == "" ||
		list.Duplicates[0].NameA != "陈秀英" || list.Duplicates[0].NameB != "陈秀英" {
		t.Fatalf("dismissed list %+v", list)
	}
	s.getJSON(t, s.supSouth, "/v1/duplicates?state=open", 200, &list)
	if len(list.Duplicates) != 0 {
		t.Fatalf("a dismissed duplicate is still open: %+v", list)
	}
	// Both households stay live.
	for _, hh := range []string{first, second} {
		var rec syncproto.Record
		s.getJSON(t, s.supSouth, "/v1/records/household/"+hh, 200, &rec)
		if rec.Deleted {
			t.Fatalf("dismissal deleted %s", hh)
		}
	}
}

// TestQuarantineClosed: a supervisor closes a quarantine entry with a
// note; the list says who, when and why, and filters by state; the entry
// names the household.
func TestQuarantineClosed(t *testing.T) {
	s := mustSupervise(t)
	hh := uuid.NewString()
	s.push(t, s.workerTok, s.worker, storetest.Household(hh, storetest.SouthVillage, storetest.T0))
	pr := s.push(t, s.workerTok, s.worker, storetest.HousingInspection(uuid.NewString(), hh, "E", storetest.T0))
	if pr.Results[0].Status != "rejected" {
		t.Fatalf("%+v", pr.Results[0])
	}
	type entry struct {
		ID            string `json:"id"`
		State         string `json:"state"`
		HouseholdName string `json:"household_name"`
		Closed        *struct {
			By   string `json:"by"`
			At   string `json:"at"`
			Note string `json:"note"`
		} `json:"closed"`
	}
	var list struct {
		Quarantine []entry `json:"quarantine"`
	}
	s.getJSON(t, s.supSouth, "/v1/quarantine?state=open", 200, &list)
	if len(list.Quarantine) != 1 || list.Quarantine[0].State != syncproto.StateOpen || list.Quarantine[0].HouseholdName != "陈秀英" {
		t.Fatalf("open quarantine %+v", list)
	}
	id := list.Quarantine[0].ID
	s.getJSON(t, s.supSouth, "/v1/quarantine?state=gone", 422, nil)
	s.problemAt(t, s.supSouth, "/v1/quarantine/"+id+"/close", map[string]any{}, 422, "note")
	s.postJSON(t, s.supNorth, "/v1/quarantine/"+id+"/close", map[string]any{"note": "x"}, 403, nil)
	s.postJSON(t, s.workerTok, "/v1/quarantine/"+id+"/close", map[string]any{"note": "x"}, 403, nil)
	s.postJSON(t, s.supSouth, "/v1/quarantine/"+uuid.NewString()+"/close", map[string]any{"note": "x"}, 404, nil)
	var closed entry
	s.postJSON(t, s.supSouth, "/v1/quarantine/"+id+"/close", map[string]any{"note": "tablet sent grade C again"}, 200, &closed)
	if closed.State != syncproto.StateClosed || closed.Closed == nil || closed.Closed.By != "sup.south" || closed.Closed.Note != "tablet sent grade C again" {
		t.Fatalf("closed %+v", closed)
	}
	s.postJSON(t, s.supSouth, "/v1/quarantine/"+id+"/close", map[string]any{"note": "again"}, 409, nil)
	s.getJSON(t, s.supSouth, "/v1/quarantine?state=open", 200, &list)
	if len(list.Quarantine) != 0 {
		t.Fatalf("a closed entry is still open: %+v", list)
	}
	s.getJSON(t, s.supSouth, "/v1/quarantine", 200, &list)
	if len(list.Quarantine) != 1 || list.Quarantine[0].Closed == nil || list.Quarantine[0].Closed.Note != "tablet sent grade C again" ||
		list.Quarantine[0].Closed.At == "" {
		t.Fatalf("the closing is not recorded: %+v", list)
	}
}

// TestConflictsNameTheHousehold: a conflict of a household and one of its
// inspection carry the head of household's name.
func TestConflictsNameTheHousehold(t *testing.T) {
	s := mustSupervise(t)
	hh, ins := uuid.NewString(), uuid.NewString()
	s.push(t, s.workerTok, s.worker, storetest.Household(hh, storetest.SouthVillage, storetest.T0),
		storetest.HousingInspection(ins, hh, "C", storetest.T0))
	s.push(t, s.workerTok, s.worker, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 6}),
		storetest.Upsert("housing_inspection", ins, 1, storetest.T0, map[string]any{"previous_id": nil, "renovation": "planned"}))
	s.push(t, s.otherTok, s.other, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 7}),
		storetest.Upsert("housing_inspection", ins, 1, storetest.T0.Add(time.Minute), map[string]any{"renovation": "in_progress"}))
	var list struct {
		Conflicts []map[string]json.RawMessage `json:"conflicts"`
	}
	s.getJSON(t, s.supSouth, "/v1/conflicts", 200, &list)
	seen := map[string]bool{}
	for _, c := range list.Conflicts {
		var rec, name string
		_ = json.Unmarshal(c["record_id"], &rec)
		_ = json.Unmarshal(c["household_name"], &name)
		if name != "陈秀英" {
			t.Fatalf("conflict %s without the household's name", c["conflict_id"])
		}
		seen[rec] = true
	}
	if !seen[hh] || !seen[ins] {
		t.Fatalf("conflicts %v: want one of the household and one of the inspection", list.Conflicts)
	}
}
