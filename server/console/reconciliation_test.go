package console_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// importRegistry posts a registry file to POST /v1/imports as token.
func importRegistry(t *testing.T, ts *apitest.Server, token, source string, data []byte) {
	t.Helper()
	resp, body := ts.DoAs(t, token, http.MethodPost, "/v1/imports?source="+source, "text/csv", data)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("import %s: %d %s", source, resp.StatusCode, body)
	}
}

// TestReconciliationPage: on the demo with its registry files imported,
// a supervisor reaches the reconciliation of their county from the
// overview and from a village's page; it names every planned finding of
// the county and none of the other: the blind spots by name (a row no
// team recorded with its source's key; a listed household never
// inspected linking to it), the households visited but on no list, and
// each disagreement with both values and sources, linking to the
// household and to its open conflict in the queue (a registry against
// the field record: the conflict it raised; two lists: the one either
// raised on the field). Its CSV link downloads with the session.
func TestReconciliationPage(t *testing.T) {
	ts := apitest.MustServe(t)
	apitest.SeedDemo(t, ts)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	files, plan := fixtures.DemoRegistries()
	for _, f := range files {
		importRegistry(t, ts, admin, f.Source, f.Data)
	}
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	const county = "500240"
	var mine []fixtures.RegistryFinding
	for _, f := range plan {
		if strings.HasPrefix(f.Village, county) {
			mine = append(mine, f)
		}
	}
	if len(mine) == 0 || len(mine) == len(plan) {
		t.Fatalf("the plan has %d findings in %s of %d", len(mine), county, len(plan))
	}
	_, overview := v.do("GET", "/console/region/"+county, nil, nil)
	village := mine[0].Village
	_, villagePage := v.do("GET", "/console/region/"+village, nil, nil)
	for page, body := range map[string]string{county: overview, village: villagePage} {
		if !strings.Contains(body, `href="/console/reconciliation/`+page+`"`) {
			t.Errorf("the page of %s does not link to its reconciliation", page)
		}
	}
	resp, body := v.do("GET", "/console/reconciliation/"+county, nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "名单比对") {
		t.Fatalf("reconciliation: %d\n%.2000s", resp.StatusCode, body)
	}
	conflicts, _, err := ts.Store.ListConflicts(t.Context(), syncproto.Actor{Role: syncproto.RoleAdmin, AllRegions: true}, syncproto.StateOpen, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	conflictOf := map[string]string{}
	for _, c := range conflicts {
		conflictOf[c.RecordID+" "+c.Field+" "+c.DeviceID] = c.ID
	}
	kinds := map[string]int{}
	for _, f := range mine {
		kinds[f.Kind]++
		switch f.Kind {
		case syncproto.BlindNotInField:
			if !strings.Contains(body, "<td>"+f.Key+"</td>") {
				t.Errorf("blind spot %s of %s not listed", f.Key, f.Source)
			}
		case syncproto.BlindNeverInspected, "unregistered":
			if !strings.Contains(body, `href="/console/households/`+f.HouseholdID+`"`) {
				t.Errorf("%s household %s not linked", f.Kind, f.HouseholdID)
			}
		case syncproto.DisagreeField:
			id := f.HouseholdID
			if f.PersonID != "" {
				id = f.PersonID
			}
			c := conflictOf[id+" "+f.Field+" "+syncproto.RegistryDevice(f.Source)]
			if c == "" || !strings.Contains(body, `href="/console/conflicts#c-`+c+`"`) {
				t.Errorf("the disagreement on %s %s (%s) does not link to its conflict %q", id, f.Field, f.Source, c)
			}
		}
	}
	for _, f := range plan {
		if !strings.HasPrefix(f.Village, county) && f.Kind == syncproto.BlindNotInField && strings.Contains(body, f.Key) {
			t.Errorf("the other county's blind spot %s is on the page", f.Key)
		}
	}
	if got, want := shown(body, "rec-blind"), fmt.Sprint(kinds[syncproto.BlindNotInField]+kinds[syncproto.BlindNeverInspected]); got != want {
		t.Errorf("blind spots shown %s, planned %s", got, want)
	}
	if got, want := shown(body, "rec-disagreements"), fmt.Sprint(kinds[syncproto.DisagreeField]+kinds[syncproto.DisagreeDepartments]); got != want {
		t.Errorf("disagreements shown %s, planned %s", got, want)
	}
	// Both values of each disagreement, each with its source.
	if got, want := strings.Count(body, `<td class="value">`), 2*(kinds[syncproto.DisagreeField]+kinds[syncproto.DisagreeDepartments]); got != want {
		t.Errorf("%d values on the page, want both of every planned disagreement (%d)", got, want)
	}
	// A disagreement between two lists links to the conflict one of them
	// raised against the field record on the same field, if any.
	raised := map[string]bool{}
	for _, f := range mine {
		if f.Kind == syncproto.DisagreeField {
			raised[f.HouseholdID+f.PersonID+f.Field+f.Source] = true
		}
	}
	linked := kinds[syncproto.DisagreeField]
	for _, f := range mine {
		if f.Kind == syncproto.DisagreeDepartments && (raised[f.HouseholdID+f.PersonID+f.Field+f.Source] || raised[f.HouseholdID+f.PersonID+f.Field+f.Other]) {
			linked++
		}
	}
	if got := strings.Count(body, `href="/console/conflicts#c-`); got != linked {
		t.Errorf("%d links to conflicts, want one per planned disagreement with the field and per one between lists of which one raised a conflict (%d)", got, linked)
	}
	if !strings.Contains(body, "全国防返贫监测信息系统（建档立卡）") || !strings.Contains(body, "外业记录") {
		t.Error("the sources are not named")
	}
	const csv = "/v1/reports/reconciliation?format=csv&amp;lang=zh&amp;region=" + county
	if !strings.Contains(body, csv) {
		t.Fatalf("no CSV link %s", csv)
	}
	if resp, table := v.do("GET", strings.ReplaceAll(csv, "&amp;", "&"), nil, nil); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || !strings.Contains(table, mine[0].HouseholdID+mine[0].Key) {
		t.Errorf("the CSV with the session: %d %s %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), table)
	}
	if resp, _ := v.do("GET", "/console/reconciliation/150422", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the other county: %d", resp.StatusCode)
	}
}

// TestReconciliationPageMasksForAViewer: a person on the disability list
// that no team recorded is a blind spot named with the list's key, the
// identity number: whole for a supervisor, masked for a viewer, as in GET
// /v1/reports/reconciliation.
func TestReconciliationPageMasksForAViewer(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "dept", syncproto.RoleViewer, "500240")
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	importRegistry(t, ts, admin, "disability", []byte("身份证号,村,姓名,残疾等级\n"+consoleIDCard+",500240107201,谭小梅,2\n"))
	sup := newVisitor(t, ts)
	sup.signIn("sup", nil)
	_, body := sup.do("GET", "/console/reconciliation/500240", nil, nil)
	if !strings.Contains(body, "<td>"+consoleIDCard+"</td>") || !strings.Contains(body, "谭小梅") || !strings.Contains(body, "残疾人证信息") {
		t.Errorf("the supervisor's page lacks the blind spot:\n%s", body)
	}
	viewer := newVisitor(t, ts)
	viewer.signIn("dept", nil)
	resp, body := viewer.do("GET", "/console/reconciliation/500240", nil, nil)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, consoleIDCard) || !strings.Contains(body, "<td>"+consoleMasked+"</td>") {
		t.Errorf("the viewer's page: %d\n%s", resp.StatusCode, body)
	}
}
