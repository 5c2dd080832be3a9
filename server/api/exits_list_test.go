package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// exitListed is one exit as GET /v1/reports/exits answers it.
type exitListed struct {
	Household    string `json:"household"`
	Village      string `json:"village"`
	Field        string `json:"field"`
	Value        string `json:"value"`
	Flag         string `json:"flag"`
	By           string `json:"by"`
	At           string `json:"at"`
	Op           string `json:"op"`
	Decision     string `json:"decision"`
	OverrideNote string `json:"override_note"`
	NoteHidden   bool   `json:"override_note_hidden"`
	Verdict      *struct {
		Overall   string   `json:"overall"`
		BlockedBy []string `json:"blocked_by"`
		AsOf      string   `json:"as_of"`
	} `json:"verdict"`
}

// exitsPages follows the list's cursor from the start, pages of limit,
// each answer validated against openapi.json.
func exitsPages(t *testing.T, k *contract, token, query string, limit int) []exitListed {
	t.Helper()
	var all []exitListed
	cursor := ""
	for range 20 {
		path := "/v1/reports/exits?" + query + "&limit=" + string(rune('0'+limit))
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		_, body := k.call(t, apiCall{name: "exits " + query, method: http.MethodGet, path: path, token: token, status: http.StatusOK})
		var page struct {
			Exits   []exitListed `json:"exits"`
			Cursor  string       `json:"cursor"`
			HasMore bool         `json:"has_more"`
		}
		decodeInto(t, body, &page)
		all = append(all, page.Exits...)
		if !page.HasMore {
			return all
		}
		cursor = page.Cursor
	}
	t.Fatal("the exits list never ended")
	return nil
}

const exitsOverrideNote = "县复核认定：危房改造已竣工待鉴定"

// exitsScenario makes, in 500240, a decided exit (pushed on a verified
// verdict), a pushed override and a resolved override (both on a verdict
// blocked by housing), a registered household, and one in 150422, then
// checks the list through k.
func exitsScenario(t *testing.T, k *contract) {
	ts := k.ts
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "viewer", syncproto.RoleViewer, "500240")
	verified, blocked, resolved := uuid.NewString(), uuid.NewString(), uuid.NewString()
	changes := append(exitEvidence(verified, "B"), exitEvidence(blocked, "D")...)
	changes = append(changes, exitEvidence(resolved, "D")...)
	resp, body := pushV3(t, ts, "worker", uuid.NewString(), changes...)
	if resp.StatusCode != 200 || strings.Contains(string(body), `"rejected"`) {
		t.Fatalf("the evidence: %d %s", resp.StatusCode, body)
	}
	if r := onlyResult(t, ts, "sup", setStatus(verified, 1, "lifted_out", "")); r.Status != syncproto.StatusApplied {
		t.Fatalf("the decided exit: %+v", r)
	}
	if r := onlyResult(t, ts, "sup", setStatus(blocked, 1, "lifted_out", exitsOverrideNote)); r.Status != syncproto.StatusApplied {
		t.Fatalf("the pushed override: %+v", r)
	}
	c := statusConflict(t, ts, resolved)
	if resp, body := resolve(t, ts, "sup", c, map[string]any{"choose": "incoming", "override_note": exitsOverrideNote}); resp.StatusCode != 200 {
		t.Fatalf("the resolved override: %d %s", resp.StatusCode, body)
	}
	registered, north := uuid.NewString(), uuid.NewString()
	for _, h := range []struct{ id, village string }{{registered, storetest.SouthVillage}, {north, storetest.NorthVillage}} {
		ch := storetest.Upsert("household", h.id, 0, storetest.T0, map[string]any{"village": h.village, "head_name": "王建国",
			"members": 3, "categories": []string{"registered_poor"}, "status": "lifted_out"})
		if r := onlyResult(t, ts, "admin", ch); r.Status != syncproto.StatusApplied {
			t.Fatalf("a registered household: %+v", r)
		}
	}

	sup := ts.Login(t, "sup", uuid.NewString())
	for _, limit := range []int{1, 2, 9} {
		got := exitsPages(t, k, sup, "region=500240", limit)
		if len(got) != 3 || got[0].Household != verified || got[1].Household != blocked || got[2].Household != resolved {
			t.Fatalf("the exits of 500240 in pages of %d: %+v", limit, got)
		}
		if limit != 9 {
			continue
		}
		d, o, r := got[0], got[1], got[2]
		if d.Flag != "decided" || d.Field != "status" || d.Value != "lifted_out" || d.By != "sup" || d.Op != "update" ||
			d.Village != storetest.SouthVillage || d.At != "2026-11-20T08:00:00.000Z" || d.Verdict == nil ||
			d.Verdict.Overall != "verified" || len(d.Verdict.BlockedBy) != 0 || d.Verdict.AsOf != "2026-11-20" ||
			!strings.Contains(d.Decision, "water_quantity T/CHES 18-2018") || d.OverrideNote != "" || d.NoteHidden {
			t.Errorf("the decided exit: %+v", d)
		}
		for _, x := range []exitListed{o, r} {
			if x.Flag != "override" || x.Verdict == nil || x.Verdict.Overall != "blocked" || strings.Join(x.Verdict.BlockedBy, ",") != "housing" ||
				x.OverrideNote != exitsOverrideNote || x.NoteHidden {
				t.Errorf("an override, as a supervisor sees it: %+v", x)
			}
		}
		if o.Op != "update" || r.Op != "resolve" {
			t.Errorf("the overrides' ops: %q, %q", o.Op, r.Op)
		}
	}
	if got := exitsPages(t, k, sup, "region=500240&flag=override", 9); len(got) != 2 {
		t.Errorf("flag=override: %+v", got)
	}
	if got := exitsPages(t, k, sup, "region=500240&flag=registered", 9); len(got) != 1 || got[0].Household != registered ||
		got[0].Verdict != nil || got[0].Flag != "registered" {
		t.Errorf("flag=registered in 500240: %+v", got)
	}
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	if got := exitsPages(t, k, admin, "flag=registered", 9); len(got) != 2 {
		t.Errorf("flag=registered, every region: %+v", got)
	}

	viewer := ts.Login(t, "viewer", uuid.NewString())
	_, body = k.call(t, apiCall{name: "exits as a viewer", method: http.MethodGet, path: "/v1/reports/exits?region=500240", token: viewer, status: http.StatusOK})
	if strings.Contains(string(body), exitsOverrideNote) || strings.Count(string(body), `"override_note_hidden":true`) != 2 {
		t.Errorf("a viewer's list shows the override notes, or does not say they are hidden: %s", body)
	}
	var vp struct {
		Exits []exitListed `json:"exits"`
	}
	if err := json.Unmarshal(body, &vp); err != nil || len(vp.Exits) != 3 {
		t.Errorf("a viewer's list: %v %s", err, body)
	}

	resp, body = k.call(t, apiCall{name: "exits, bad flag", method: http.MethodGet, path: "/v1/reports/exits?flag=lifted", token: sup, status: 422, invalid: true})
	if p := apitest.MustProblem(t, resp, body, 422); len(p.Errors) != 1 || p.Errors[0].Path != "query.flag" {
		t.Errorf("a bad flag: %s", body)
	}
	k.call(t, apiCall{name: "exits, other county", method: http.MethodGet, path: "/v1/reports/exits?region=150422", token: sup, status: 403})
	k.call(t, apiCall{name: "exits, unknown parameter", method: http.MethodGet, path: "/v1/reports/exits?state=open", token: sup, status: 400, invalid: true})
	k.call(t, apiCall{name: "exits without token", method: http.MethodGet, path: "/v1/reports/exits", status: 401})
	worker := ts.Login(t, "worker", uuid.NewString())
	k.call(t, apiCall{name: "exits as a field worker", method: http.MethodGet, path: "/v1/reports/exits", token: worker, status: 403})
}

// TestExitsList: GET /v1/reports/exits lists the region's decided exits
// and overrides, pushed and resolved, oldest first, page by page, each
// with its verdict of that moment; the override note only for roles that
// may see personal data (a viewer is told it is hidden); registered
// households only when asked; bad input is a problem with its path.
func TestExitsList(t *testing.T) {
	ts := apitest.MustServe(t)
	exitsScenario(t, newContract(t, ts, loadOpenAPI(t)))
}

// exitsContract runs the exits scenario for TestOpenAPIResponses on a
// server of its own and adds what it saw to k's coverage.
func exitsContract(t *testing.T, doc *openapi3.T, k *contract) {
	ek := newContract(t, apitest.MustServe(t), doc)
	exitsScenario(t, ek)
	for op, codes := range ek.seen {
		if k.seen[op] == nil {
			k.seen[op] = map[int]bool{}
		}
		for code := range codes {
			k.seen[op][code] = true
		}
	}
}
