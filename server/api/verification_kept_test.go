package api_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema/verify"
	"github.com/fieldsync/fieldsync/server/apitest"
)

// TestVerificationRollupReadsTheKeptVerdicts: rollup=only as of today
// answers from the verdicts the store keeps, summed per village, not from
// a judgement of the records: after the sums alone are changed under the
// server (the records untouched), the villages, townships, counties and
// totals follow them, with kept_as_of today and nothing pending; the
// whole report, which judges every household, does not; and as of an
// earlier day rollup=only judges every household too.
func TestVerificationRollupReadsTheKeptVerdicts(t *testing.T) {
	ts, _ := serveVerification(t, 24)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	type report struct {
		KeptAsOf  *string       `json:"kept_as_of"`
		Pending   *int          `json:"pending"`
		Villages  []verify.Area `json:"villages"`
		Townships []verify.Area `json:"townships"`
		Counties  []verify.Area `json:"counties"`
		Totals    verify.Area   `json:"totals"`
	}
	get := func(query string) report {
		t.Helper()
		resp, body := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification"+query, "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", query, resp.StatusCode, body)
		}
		var r report
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return r
	}
	today := ts.Clock.Now().UTC().Format(time.DateOnly)
	before := get("?rollup=only")
	if before.KeptAsOf == nil || *before.KeptAsOf != today || before.Pending == nil || *before.Pending != 0 || len(before.Villages) == 0 {
		t.Fatalf("rollup=only: kept_as_of %v, pending %v, %d villages; want today, 0", before.KeptAsOf, before.Pending, len(before.Villages))
	}
	village := before.Villages[0].Code

	db, err := sql.Open("sqlite", "file:"+ts.Store.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if res, err := db.Exec(`UPDATE village_verdicts SET counts = json_set(counts,
		'$.households', json_extract(counts, '$.households') + 1000,
		'$."overall/verified"', COALESCE(json_extract(counts, '$."overall/verified"'), 0) + 1000) WHERE village = ?`, village); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%d rows of village_verdicts changed", n)
	}
	after := get("?rollup=only")
	if got, want := after.Villages[0].Verified, before.Villages[0].Verified+1000; got != want || after.Villages[0].Code != village {
		t.Errorf("village %s: verified %d after the sums changed, want %d", village, got, want)
	}
	if after.Townships[0].Households != before.Townships[0].Households+1000 || after.Counties[0].Households != before.Counties[0].Households+1000 ||
		after.Totals.Households != before.Totals.Households+1000 || after.Totals.Verified != before.Totals.Verified+1000 {
		t.Errorf("the roll-ups above the village do not follow the kept sums: before %+v, after %+v", before.Totals, after.Totals)
	}
	for _, q := range []string{"", "?rollup=only&as_of=" + ts.Clock.Now().AddDate(0, 0, -1).UTC().Format(time.DateOnly)} {
		if live := get(q); live.Totals.Households != before.Totals.Households || live.KeptAsOf != nil {
			t.Errorf("%q: %d households, kept_as_of %v; want the records' %d, judged live", q, live.Totals.Households, live.KeptAsOf,
				before.Totals.Households)
		}
	}
	resp, nd := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification?format=ndjson&rollup=only", "", nil)
	end := nd[strings.LastIndex(string(nd[:len(nd)-1]), "\n")+1:]
	var line struct {
		Kind     string      `json:"kind"`
		KeptAsOf string      `json:"kept_as_of"`
		Pending  *int        `json:"pending"`
		Totals   verify.Area `json:"totals"`
	}
	if err := json.Unmarshal(end, &line); resp.StatusCode != 200 || err != nil || line.Kind != "end" || line.KeptAsOf != today ||
		line.Pending == nil || line.Totals.Households != after.Totals.Households {
		t.Errorf("ndjson rollup=only's end: %d %s (%v)", resp.StatusCode, end, err)
	}
}
