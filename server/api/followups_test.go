package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// followupList is GET /v1/followups as its JSON reads.
type followupList struct {
	Region     string `json:"region"`
	AsOf       string `json:"as_of"`
	Households []struct {
		Household     string `json:"household"`
		Village       string `json:"village"`
		VillageName   string `json:"village_name"`
		PovertyStatus string `json:"poverty_status"`
		Status        string `json:"status"`
		Reasons       []struct {
			Trigger, Guarantee, Criterion, Rule, Form, Record, Field, Date string
			LeadsTo                                                        string `json:"leads_to"`
			Value                                                          json.RawMessage
		} `json:"reasons"`
		LastVisit *struct {
			Record, Date, Judged string
		} `json:"last_visit"`
		DueDate string `json:"due_date"`
		DueFrom string `json:"due_from"`
		Due     bool   `json:"due"`
	} `json:"households"`
	Villages []struct {
		Code     string         `json:"code"`
		ByStatus map[string]int `json:"by_status"`
	} `json:"villages"`
	Totals struct {
		Households, Monitored, Listed, Due int
		ByStatus                           map[string]int `json:"by_status"`
	} `json:"totals"`
}

func getFollowups(t *testing.T, ts *apitest.Server, token, query string) followupList {
	t.Helper()
	resp, body := ts.DoAs(t, token, http.MethodGet, "/v1/followups"+query, "", nil)
	var l followupList
	if resp.StatusCode != 200 || json.Unmarshal(body, &l) != nil {
		t.Fatalf("followups: %d %s", resp.StatusCode, body)
	}
	return l
}

// registeredLiftedOut is exitEvidence registered as lifted out by a
// deciding role (the admin's loader): everything met, a house graded B.
func registeredLiftedOut(hh string) []syncproto.Change {
	changes := exitEvidence(hh, "B")
	changes[0].Fields["status"] = json.RawMessage(`"lifted_out"`)
	return changes
}

// TestHousingGradedDRelapsesAfterOnePush is the must-hold: a
// household registered lifted out whose housing inspection arrives graded
// D in one push is on the next follow-up list as relapsed, with that
// inspection as its reason, and the relapse count went up by one; a visit
// recorded moves its due date; a lifted-out household with nothing wrong
// is not listed.
func TestHousingGradedDRelapsesAfterOnePush(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	slipping, fine := uuid.NewString(), uuid.NewString()
	resp, body := pushV3(t, ts, "admin", apitest.AdminDevice, append(registeredLiftedOut(slipping), registeredLiftedOut(fine)...)...)
	if resp.StatusCode != 200 || strings.Contains(string(body), `"rejected"`) || strings.Contains(string(body), `"quarantined"`) {
		t.Fatalf("the register: %d %s", resp.StatusCode, body)
	}
	sup := ts.Login(t, "sup", uuid.NewString())
	before := getFollowups(t, ts, sup, "?region=500240")
	if len(before.Households) != 0 || before.Totals.Monitored != 2 || before.Totals.ByStatus["stable"] != 2 {
		t.Fatalf("before the inspection: %+v", before)
	}

	// One push: the housing inspection graded D.
	inspection := uuid.NewString()
	if r := onlyResult(t, ts, "worker", housingOnDay(inspection, slipping, "2026-11-19", "D", "none", "")); r.Status != syncproto.StatusApplied {
		t.Fatalf("the inspection: %+v", r)
	}
	after := getFollowups(t, ts, sup, "?region=500240")
	if len(after.Households) != 1 {
		t.Fatalf("after the inspection: %+v", after)
	}
	h := after.Households[0]
	if h.Household != slipping || h.Status != "relapsed" || h.PovertyStatus != "lifted_out" || h.Village != storetest.SouthVillage || len(h.Reasons) != 1 {
		t.Fatalf("listed %+v, want %s relapsed", h, slipping)
	}
	r := h.Reasons[0]
	if r.Trigger != "guarantee_fails_after_exit" || r.Guarantee != "housing" || r.Form != "housing_inspection" || r.Record != inspection ||
		r.Field != "grade" || string(r.Value) != `"D"` || r.Date != "2026-11-19" || r.LeadsTo != "relapsed" {
		t.Fatalf("reason %+v, want the inspection graded D", r)
	}
	if h.DueDate != "2026-11-26" || h.DueFrom != "evidence" || h.Due {
		t.Fatalf("due %s from %s (due %v), want 2026-11-26 from the evidence", h.DueDate, h.DueFrom, h.Due)
	}
	if after.Totals.ByStatus["relapsed"] != before.Totals.ByStatus["relapsed"]+1 || after.Totals.ByStatus["stable"] != 1 || after.Totals.Listed != 1 {
		t.Fatalf("relapse counts %v (before %v)", after.Totals.ByStatus, before.Totals.ByStatus)
	}
	if len(after.Villages) != 1 || after.Villages[0].Code != storetest.SouthVillage || after.Villages[0].ByStatus["relapsed"] != 1 {
		t.Fatalf("villages %+v", after.Villages)
	}

	// The follow-up visit, recorded as a form the next day: due a week
	// after it, still relapsed (the house is still graded D).
	ts.Clock.Advance(24 * time.Hour)
	visit := storetest.Upsert("followup_visit", uuid.NewString(), 0, storetest.T0.Add(24*time.Hour), map[string]any{
		"household_id": slipping, "visited_on": "2026-11-21", "finding": "房屋整体危险，已安排临时住所", "measures": []string{"housing_renovation", "temporary_assistance"}})
	if r := onlyResult(t, ts, "worker", visit); r.Status != syncproto.StatusApplied {
		t.Fatalf("the visit: %+v", r)
	}
	sup = ts.Login(t, "sup", uuid.NewString()) // the clock moved past the token
	visited := getFollowups(t, ts, sup, "")
	if len(visited.Households) != 1 || visited.Households[0].DueDate != "2026-11-28" || visited.Households[0].DueFrom != "visit" ||
		visited.Households[0].LastVisit == nil || visited.Households[0].LastVisit.Date != "2026-11-21" || visited.Households[0].Status != "relapsed" {
		t.Fatalf("after the visit: %+v", visited.Households)
	}
	// As of a week later the visit is due again.
	ts.Clock.Advance(7 * 24 * time.Hour)
	sup = ts.Login(t, "sup", uuid.NewString())
	if l := getFollowups(t, ts, sup, ""); len(l.Households) != 1 || !l.Households[0].Due || l.Totals.Due != 1 {
		t.Fatalf("a week after the visit: %+v", l.Households)
	}
	// As of the day of the visit (the records as they are, judged as of
	// that day), it is not due yet.
	if l := getFollowups(t, ts, sup, "?as_of=2026-11-21"); len(l.Households) != 1 || l.Households[0].Due || l.AsOf != "2026-11-21" {
		t.Fatalf("as of 2026-11-21: %+v", l)
	}
}

// TestFollowupsRequests: NDJSON lines end with the totals; the CSV is
// labelled (statuses, triggers, the poverty status); a bad as_of, format or
// lang is a problem with its path; a region outside the caller's scope
// is forbidden; a field worker may not read the list.
func TestFollowupsRequests(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	hh := uuid.NewString()
	changes := registeredLiftedOut(hh)
	changes[3] = housingOnDay(uuid.NewString(), hh, "2026-10-01", "D", "none", "")
	pushV3(t, ts, "admin", apitest.AdminDevice, changes...)
	sup := ts.Login(t, "sup", uuid.NewString())
	resp, body := ts.DoAs(t, sup, http.MethodGet, "/v1/followups?format=ndjson", "", nil)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) != 3 ||
		!strings.HasPrefix(lines[0], `{"kind":"household","household":"`+hh+`"`) || !strings.HasPrefix(lines[1], `{"kind":"village"`) ||
		!strings.Contains(lines[2], `"relapsed":1`) || !strings.HasPrefix(lines[2], `{"kind":"end"`) {
		t.Fatalf("ndjson: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.DoAs(t, sup, http.MethodGet, "/v1/followups?format=csv&lang=zh", "", nil)
	csv := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `filename="fieldsync-followups-`) ||
		!strings.Contains(csv, "监测状态") || !strings.Contains(csv, ",返贫,") || !strings.Contains(csv, ",已脱贫,") ||
		!strings.Contains(csv, "脱贫户“两不愁三保障”及饮水安全出现问题: housing_inspection") || !strings.Contains(csv, "grade=\"\"D\"\" 2026-10-01") || !strings.Contains(csv, ",2026-10-08,新证据,true,2026-11-20") ||
		strings.Count(strings.TrimSpace(csv), "\n") != 1 {
		t.Fatalf("csv: %d %s %s", resp.StatusCode, resp.Header, csv)
	}
	for _, c := range []struct {
		query, path string
		status      int
	}{{"?as_of=yesterday", "query.as_of", 422}, {"?as_of=2027-01-01", "query.as_of", 422}, {"?format=xml", "query.format", 422},
		{"?format=csv&lang=fr", "query.lang", 422}, {"?due=1", "query.due", 400}} {
		resp, body := ts.DoAs(t, sup, http.MethodGet, "/v1/followups"+c.query, "", nil)
		p := apitest.MustProblem(t, resp, body, c.status)
		if len(p.Errors) == 0 || p.Errors[0].Path != c.path {
			t.Errorf("%s: %+v, want the path %s", c.query, p, c.path)
		}
	}
	resp, body = ts.DoAs(t, sup, http.MethodGet, "/v1/followups?region=150422", "", nil)
	apitest.MustProblem(t, resp, body, http.StatusForbidden)
	resp, body = ts.DoAs(t, ts.Login(t, "worker", uuid.NewString()), http.MethodGet, "/v1/followups", "", nil)
	apitest.MustProblem(t, resp, body, http.StatusForbidden)
}

// followupsContract exercises GET /v1/followups for TestOpenAPIResponses
// on a server with a relapsed household and a visit, and on one whose
// forms declare no monitoring (404), and adds what it saw to k's.
func followupsContract(t *testing.T, doc *openapi3.T, k *contract) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup.bairin", syncproto.RoleSupervisor, "150422")
	hh := uuid.NewString()
	changes := registeredLiftedOut(hh)
	changes[3] = housingOnDay(uuid.NewString(), hh, "2026-10-01", "D", "none", "")
	changes = append(changes, storetest.Upsert("followup_visit", uuid.NewString(), 0, storetest.T0, map[string]any{
		"household_id": hh, "visited_on": "2026-11-15", "next_status": "sudden_hardship", "measures": []string{"medical_aid"}}))
	if resp, body := pushV3(t, ts, "admin", apitest.AdminDevice, changes...); resp.StatusCode != 200 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	fk := newContract(t, ts, doc)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	far := ts.Login(t, "sup.bairin", uuid.NewString())
	const path = "/v1/followups"
	fk.call(t, apiCall{name: "followups", method: "GET", path: path, token: admin, status: 200})
	fk.call(t, apiCall{name: "followups, a county as of a day", method: "GET", path: path + "?region=500240&as_of=2026-11-01", token: admin, status: 200})
	fk.call(t, apiCall{name: "followups, ndjson", method: "GET", path: path + "?format=ndjson", token: admin, status: 200})
	fk.call(t, apiCall{name: "followups, csv", method: "GET", path: path + "?format=csv&lang=en", token: admin, status: 200})
	fk.call(t, apiCall{name: "followups, xlsx", method: "GET", path: path + "?format=xlsx&lang=zh", token: admin, status: 200})
	fk.call(t, apiCall{name: "followups, other county", method: "GET", path: path + "?region=500240", token: far, status: 403})
	fk.call(t, apiCall{name: "followups, bad as_of", method: "GET", path: path + "?as_of=yesterday", token: admin, status: 422, invalid: true})
	fk.call(t, apiCall{name: "followups, unknown parameter", method: "GET", path: path + "?due=1", token: admin, status: 400, invalid: true})
	fk.call(t, apiCall{name: "followups without token", method: "GET", path: path, status: 401})
	plain := newContract(t, mustServeV1(t, nil), doc)
	plain.call(t, apiCall{name: "followups, no monitoring declared", method: "GET", path: path, token: plain.ts.Login(t, "admin", apitest.AdminDevice), status: 404})
	for _, other := range []*contract{fk, plain} {
		for op, codes := range other.seen {
			if k.seen[op] == nil {
				k.seen[op] = map[int]bool{}
			}
			for code := range codes {
				k.seen[op][code] = true
			}
		}
	}
}

// checkFollowupsNDJSON validates each line of an NDJSON follow-up list by
// its kind: a Followup, a village's FollowupCounts, and the end's totals.
func (k *contract) checkFollowupsNDJSON(t *testing.T, name string, body []byte) {
	t.Helper()
	ends := 0
	for n, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("%s: NDJSON line %d: %v", name, n+1, err)
		}
		kind := v["kind"]
		delete(v, "kind")
		schemaName := "FollowupCounts"
		switch kind {
		case "household":
			schemaName = "Followup"
		case "village":
		case "end":
			ends++
			v = v["totals"].(map[string]any)
		default:
			t.Fatalf("%s: line %d of kind %v", name, n+1, kind)
		}
		if err := k.doc.Components.Schemas[schemaName].Value.VisitJSON(v, openapi3.VisitAsResponse()); err != nil {
			t.Errorf("%s: NDJSON line %d is not a %s: %v", name, n+1, schemaName, err)
		}
	}
	if ends != 1 {
		t.Errorf("%s: %d end lines", name, ends)
	}
}
