package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"testing"

	"github.com/fieldsync/fieldsync/server/apitest"
)

// areaFollowups is the follow-up picture of an area as the test counts it.
type areaFollowups struct {
	Monitored int            `json:"monitored"`
	Listed    int            `json:"listed"`
	Due       int            `json:"due"`
	ByStatus  map[string]int `json:"by_status"`
}

func (a *areaFollowups) add(b areaFollowups) {
	a.Monitored += b.Monitored
	a.Listed += b.Listed
	a.Due += b.Due
	if a.ByStatus == nil {
		a.ByStatus = map[string]int{}
	}
	for s, n := range b.ByStatus {
		a.ByStatus[s] += n
	}
}

// ndjsonLines decodes an NDJSON body's lines.
func ndjsonLines(t *testing.T, body []byte) []map[string]json.RawMessage {
	t.Helper()
	var out []map[string]json.RawMessage
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, line)
	}
	return out
}

func str(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// followupsByArea counts GET /v1/followups?region= by area: each village
// line's counts as the village's, summed by the test into its township
// (9 digits), county (6 digits) and the totals (key ""); the listed and
// due households counted again from the household lines, to check the
// village lines by another way.
func followupsByArea(t *testing.T, ts *apitest.Server, token, region string) map[string]*areaFollowups {
	t.Helper()
	resp, body := ts.DoAs(t, token, http.MethodGet, "/v1/followups?format=ndjson&region="+region, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("followups: %d %s", resp.StatusCode, body)
	}
	out := map[string]*areaFollowups{}
	listed, due := map[string]int{}, map[string]int{}
	for _, line := range ndjsonLines(t, body) {
		switch str(line["kind"]) {
		case "household":
			listed[str(line["village"])]++
			var d bool
			_ = json.Unmarshal(line["due"], &d)
			if d {
				due[str(line["village"])]++
			}
		case "village":
			var c areaFollowups
			if err := json.Unmarshal(mustJSON(t, line), &c); err != nil {
				t.Fatal(err)
			}
			code := str(line["code"])
			for _, key := range []string{code, code[:9], code[:6], ""} {
				if out[key] == nil {
					out[key] = &areaFollowups{ByStatus: map[string]int{}}
				}
				out[key].add(c)
			}
		}
	}
	for village, a := range out {
		if len(village) == 12 && (a.Listed != listed[village] || a.Due != due[village]) {
			t.Fatalf("followups: village %s counts %d listed, %d due; its household lines %d, %d", village, a.Listed, a.Due, listed[village], due[village])
		}
	}
	return out
}

// TestVerificationRollupsCountFollowups: on the demo, each roll-up of the
// verification report (village, township, county, totals; JSON NDJSON
// lines and the XLSX areas sheet) carries the follow-up picture, and it
// equals GET /v1/followups for the same region, as the test sums that
// list's villages itself: households monitored, in each status (relapsed
// among them), listed and due.
func TestVerificationRollupsCountFollowups(t *testing.T) {
	ts := apitest.MustServe(t)
	apitest.SeedDemo(t, ts)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	whole := followupsByArea(t, ts, admin, "")
	var township string
	for code := range whole {
		if len(code) == 9 && (township == "" || code < township) {
			township = code
		}
	}
	if whole[""].ByStatus["relapsed"] == 0 || whole[""].Due == 0 {
		t.Fatalf("the demo has no relapsed household or none due: %+v", whole[""])
	}
	for _, region := range []string{"", township} {
		want := whole
		if region != "" {
			want = followupsByArea(t, ts, admin, region)
		}
		resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification?format=ndjson&rollup=only&region="+region, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("verification: %d %s", resp.StatusCode, body)
		}
		seen := 0
		for _, line := range ndjsonLines(t, body) {
			area := line
			switch str(line["kind"]) {
			case "area":
			case "end":
				if err := json.Unmarshal(line["totals"], &area); err != nil {
					t.Fatal(err)
				}
			default:
				continue
			}
			code := str(area["code"])
			if str(area["level"]) == "total" {
				code = ""
			}
			var got areaFollowups
			if err := json.Unmarshal(area["followups"], &got); err != nil {
				t.Fatalf("region %q: area %s: followups %s: %v", region, code, area["followups"], err)
			}
			if w := want[code]; w == nil || !reflect.DeepEqual(got, *w) {
				t.Errorf("region %q: area %s (%s): followups %+v, GET /v1/followups counts %+v", region, code, str(area["level"]), got, w)
			}
			seen++
		}
		if seen != len(want) {
			t.Errorf("region %q: %d roll-ups, the follow-ups have %d areas", region, seen, len(want))
		}
	}

	// The XLSX areas sheet: the same counts under their labels.
	resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification?format=xlsx&lang=en", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("verification xlsx: %d %.300s", resp.StatusCode, body)
	}
	names, sheets, _ := xlsxSheets(t, body)
	rows := sheets[names[len(names)-1]]
	header := rows[0]
	code, level := column(t, header, "Division code"), column(t, header, "Level")
	cols := map[string]int{"monitored": column(t, header, "Monitored"), "listed": column(t, header, "On the follow-up list"),
		"due": column(t, header, "Follow-ups due"), "relapsed": column(t, header, "Households Relapsed"),
		"stable": column(t, header, "Households Stable")}
	checked := 0
	for _, r := range rows[1:] {
		key := r[code]
		if r[level] == "Total" {
			key = ""
		}
		w := whole[key]
		if w == nil {
			t.Fatalf("xlsx: area %q not in the follow-ups", key)
		}
		for col, n := range map[string]int{"monitored": w.Monitored, "listed": w.Listed, "due": w.Due,
			"relapsed": w.ByStatus["relapsed"], "stable": w.ByStatus["stable"]} {
			if r[cols[col]] != strconv.Itoa(n) {
				t.Errorf("xlsx: area %q: %s %s, want %d", key, col, r[cols[col]], n)
			}
		}
		checked++
	}
	if checked != len(whole) {
		t.Errorf("xlsx: %d areas, the follow-ups have %d", checked, len(whole))
	}
	t.Logf("demo follow-ups in the roll-ups: totals %+v; township %s %+v", *whole[""], township, *whole[township])
}
