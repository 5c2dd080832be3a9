package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestMergedHouseholdsNewConflictCanBeClosed: a tablet that still edits a
// household merged into another opens a _deleted conflict; a resolution
// that keeps the tombstone deleted ({"value": true}, or "choose" of kept
// or stored, both true) settles it with its note and makes no version,
// while restoring it (false, or the fields the edit sent) stays a 409
// whose message names the survivor.
func TestMergedHouseholdsNewConflictCanBeClosed(t *testing.T) {
	s := mustSupervise(t)
	id, first, second := s.duplicatePair(t)
	s.postJSON(t, s.supSouth, "/v1/duplicates/"+id+"/merge", map[string]any{"survivor": first, "note": "一户两录"}, 200, nil)
	var before historyOf
	s.getJSON(t, s.supSouth, "/v1/records/household/"+second+"/history", 200, &before)

	// A tablet that has not pulled the merge edits the household at its
	// version before the merge.
	editTombstone := func(members int) string {
		t.Helper()
		pr := s.push(t, s.otherTok, s.other, storetest.Upsert("household", second, before.Record.Version-1,
			storetest.T0.Add(time.Duration(members)*time.Hour), map[string]any{"members": members}))
		if len(pr.Results[0].Conflicts) != 1 {
			t.Fatalf("edit of the tombstone: %+v", pr.Results[0])
		}
		return pr.Results[0].Conflicts[0].ConflictID
	}
	for _, resolution := range []map[string]any{
		{"value": true, "note": "已合并,改到存留户"},
		{"choose": "kept", "note": "stays merged"},
		{"choose": "stored", "note": "stays merged too"},
	} {
		cid := editTombstone(7)
		for _, restore := range []map[string]any{{"value": false}, {"choose": "incoming"}, {"value": map[string]any{"members": 7}}} {
			resp, b := s.DoAs(t, s.supSouth, "POST", "/v1/conflicts/"+cid+"/resolve", "application/json", mustJSON(t, restore))
			if resp.StatusCode != 409 || !strings.Contains(string(b), first) {
				t.Fatalf("restoring the tombstone with %v: %d %s (want 409 naming the survivor %s)", restore, resp.StatusCode, b, first)
			}
		}
		var res struct {
			Conflict struct {
				State      string `json:"state"`
				Resolution struct {
					Note string `json:"note"`
				} `json:"resolution"`
			} `json:"conflict"`
			Record syncproto.Record `json:"record"`
		}
		s.postJSON(t, s.supSouth, "/v1/conflicts/"+cid+"/resolve", resolution, 200, &res)
		if res.Conflict.State != syncproto.StateResolved || res.Conflict.Resolution.Note != resolution["note"] ||
			!res.Record.Deleted || res.Record.MergedInto != first {
			t.Fatalf("resolution %v: %+v", resolution, res)
		}
		var hist historyOf
		s.getJSON(t, s.supSouth, "/v1/records/household/"+second+"/history", 200, &hist)
		if hist.Record.Version != before.Record.Version || !hist.Record.Deleted || len(hist.Versions) != len(before.Versions) {
			t.Fatalf("keeping the tombstone deleted made a version: %+v", hist.Record)
		}
		settled := false
		for _, c := range hist.Conflicts {
			if c.ConflictID == cid {
				settled = c.State == syncproto.StateResolved && c.Resolution != nil && c.Resolution.Note == resolution["note"]
			}
		}
		if !settled {
			t.Fatalf("conflict %s not settled with its note: %+v", cid, hist.Conflicts)
		}
	}
}

// TestEditAtTheMergeVersionKeepsTheTombstone: a tablet that pulled the
// merge and then edits the merged-away household (its base is the merge
// version) does not bring it back: the edit opens a _deleted conflict, the
// household stays deleted and merged into the survivor, counted once.
func TestEditAtTheMergeVersionKeepsTheTombstone(t *testing.T) {
	s := mustSupervise(t)
	id, first, second := s.duplicatePair(t)
	s.postJSON(t, s.supSouth, "/v1/duplicates/"+id+"/merge", map[string]any{"survivor": first, "note": "一户两录"}, 200, nil)
	var merged historyOf
	s.getJSON(t, s.supSouth, "/v1/records/household/"+second+"/history", 200, &merged)
	pr := s.push(t, s.otherTok, s.other, storetest.Upsert("household", second, merged.Record.Version,
		storetest.T0.Add(9*time.Hour), map[string]any{"members": 9}))
	if r := pr.Results[0]; r.Status != syncproto.StatusConflict || len(r.Conflicts) != 1 || r.Conflicts[0].Field != syncproto.FieldDeleted {
		t.Fatalf("edit at the merge version: %+v", r)
	}
	var after historyOf
	s.getJSON(t, s.supSouth, "/v1/records/household/"+second+"/history", 200, &after)
	if !after.Record.Deleted || after.Record.MergedInto != first || after.Record.Version != merged.Record.Version {
		t.Fatalf("the merged household after an edit at its merge version: %+v", after.Record)
	}
}

// TestNoteLimitIsCharacters: a resolution's note is bounded like every
// other decision's, at syncproto.MaxNote characters, not bytes: 2000
// Chinese characters (6000 bytes) are taken, 2001 characters are a 422 at
// the path "note" that leaves the conflict open.
func TestNoteLimitIsCharacters(t *testing.T) {
	s := mustSupervise(t)
	_, _, hh := s.duplicatePair(t)
	conflict := func() string {
		t.Helper()
		var rec syncproto.Record
		s.getJSON(t, s.supSouth, "/v1/records/household/"+hh, 200, &rec)
		s.push(t, s.otherTok, s.other, storetest.Upsert("household", hh, rec.Version, storetest.T0.Add(2*time.Hour), map[string]any{"members": 6}))
		pr := s.push(t, s.workerTok, s.worker, storetest.Delete("household", hh, rec.Version, storetest.T0.Add(3*time.Hour)))
		if len(pr.Results[0].Conflicts) != 1 {
			t.Fatalf("stale delete: %+v", pr.Results[0])
		}
		return pr.Results[0].Conflicts[0].ConflictID
	}
	cid := conflict()
	long := strings.Repeat("户", syncproto.MaxNote)
	s.problemAt(t, s.supSouth, "/v1/conflicts/"+cid+"/resolve", map[string]any{"value": false, "note": long + "x"}, 422, "note")
	var open conflictList
	s.getJSON(t, s.supSouth, "/v1/conflicts?state=open", 200, &open)
	if len(open.Conflicts) != 1 || open.Conflicts[0].ConflictID != cid {
		t.Fatalf("an overlong note settled the conflict: %+v", open)
	}
	s.postJSON(t, s.supSouth, "/v1/conflicts/"+cid+"/resolve", map[string]any{"value": false, "note": long}, 200, nil)
}
