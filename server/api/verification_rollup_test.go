package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema/verify"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestVerificationRollupOnly: ?rollup=only answers the same roll-ups as
// the whole report — villages, townships, counties and totals, equal
// figure for figure — without a household entry or a village's list of
// households not verified, in JSON and NDJSON; with csv it is a 422 at
// query.rollup, and an unknown value too.
func TestVerificationRollupOnly(t *testing.T) {
	ts, _ := serveVerification(t, 24)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	type report struct {
		Households []json.RawMessage `json:"households"`
		Villages   []verify.Area     `json:"villages"`
		Townships  []verify.Area     `json:"townships"`
		Counties   []verify.Area     `json:"counties"`
		Totals     verify.Area       `json:"totals"`
	}
	get := func(query string) (report, []byte) {
		t.Helper()
		resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification"+query, "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", query, resp.StatusCode, body)
		}
		var r report
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return r, body
	}
	whole, _ := get("")
	only, body := get("?rollup=only")
	if len(whole.Households) != 24 || len(only.Households) != 0 || bytes.Contains(body, []byte(`"never_verified"`)) {
		t.Fatalf("rollup=only: %d households (whole %d), never_verified listed: %v", len(only.Households), len(whole.Households),
			bytes.Contains(body, []byte(`"never_verified"`)))
	}
	for i := range whole.Villages {
		whole.Villages[i].NeverVerified = nil
	}
	if !reflect.DeepEqual(whole.Villages, only.Villages) || !reflect.DeepEqual(whole.Townships, only.Townships) ||
		!reflect.DeepEqual(whole.Counties, only.Counties) || !reflect.DeepEqual(whole.Totals, only.Totals) || only.Totals.Households != 24 {
		t.Errorf("the roll-ups differ:\nwhole %+v\nonly  %+v", whole, only)
	}

	resp, nd := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification?format=ndjson&rollup=only", "", nil)
	if resp.StatusCode != 200 || strings.Contains(string(nd), `"kind":"household"`) || strings.Contains(string(nd), "never_verified") ||
		strings.Count(string(nd), `"kind":"area"`) != len(whole.Villages)+len(whole.Townships)+len(whole.Counties) ||
		!strings.Contains(string(nd), `"kind":"end"`) {
		t.Errorf("ndjson rollup=only: %d %.800s", resp.StatusCode, nd)
	}
	for _, q := range []string{"?format=csv&rollup=only", "?rollup=yes"} {
		resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification"+q, "", nil)
		if p := apitest.MustProblem(t, resp, body, 422); len(p.Errors) != 1 || p.Errors[0].Path != "query.rollup" {
			t.Errorf("%s: %s", q, body)
		}
	}
}

// TestVerificationShowsNoIdentityNumber: the verification report lists
// households, not persons: a member's identity number is in none of its
// formats (JSON, NDJSON, CSV), for a supervisor or a viewer, whole or
// masked — nothing there to mask.
func TestVerificationShowsNoIdentityNumber(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "dept", syncproto.RoleViewer, "500240")
	hh := uuid.NewString()
	resp, body := pushV3(t, ts, "worker", uuid.NewString(), v3Household(hh), v3Person(uuid.NewString(), hh, testIDCard))
	if resp.StatusCode != 200 || strings.Contains(string(body), `"rejected"`) {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	for _, user := range []string{"sup", "dept"} {
		tok := ts.Login(t, user, uuid.NewString())
		for _, q := range []string{"", "&format=ndjson", "&format=csv&lang=en"} {
			resp, body := ts.DoAs(t, tok, http.MethodGet, "/v1/reports/verification?region=500240"+q, "", nil)
			if resp.StatusCode != 200 || !strings.Contains(string(body), hh) {
				t.Fatalf("%s %s: %d %.300s", user, q, resp.StatusCode, body)
			}
			if strings.Contains(string(body), testIDCard) || strings.Contains(string(body), maskedCard) || strings.Contains(string(body), "**********") {
				t.Errorf("%s %s: the report shows an identity number", user, q)
			}
		}
	}
}
