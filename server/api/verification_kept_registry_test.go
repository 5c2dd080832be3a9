package api_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/schema/verify"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestKeptVerdictsCountTheRegistryOnlyHouseholds: with the demo's lists
// imported, rollup=only as of today still answers from the kept verdicts
// (kept_as_of today) and its villages, townships, counties and totals
// equal, figure for figure, those of the whole report, which judges every
// household it counts — the households only a list names among them —
// for all regions and for a county's supervisor.
func TestKeptVerdictsCountTheRegistryOnlyHouseholds(t *testing.T) {
	ts := apitest.MustServe(t)
	apitest.SeedDemo(t, ts)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	files, plan := fixtures.DemoRegistries()
	for _, f := range files {
		if resp, body := ts.DoAs(t, admin, http.MethodPost, "/v1/imports?source="+f.Source, "text/csv", f.Data); resp.StatusCode != http.StatusOK {
			t.Fatalf("import %s: %d %s", f.Source, resp.StatusCode, body)
		}
	}
	notRecorded := 0
	for _, f := range plan {
		if f.Kind == syncproto.BlindNotInField {
			notRecorded++
		}
	}
	if notRecorded == 0 {
		t.Fatal("the demo's lists name no household no team recorded")
	}
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	type report struct {
		KeptAsOf  *string       `json:"kept_as_of"`
		Villages  []verify.Area `json:"villages"`
		Townships []verify.Area `json:"townships"`
		Counties  []verify.Area `json:"counties"`
		Totals    verify.Area   `json:"totals"`
	}
	today := ts.Clock.Now().UTC().Format(time.DateOnly)
	names := []string{"admin", "a county's supervisor"}
	for i, who := range []string{admin, ts.Login(t, "sup", uuid.NewString())} {
		get := func(query string) report {
			t.Helper()
			resp, body := ts.DoAs(t, who, http.MethodGet, "/v1/reports/verification"+query, "", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", query, resp.StatusCode, body)
			}
			var r report
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			return r
		}
		whole, kept := get(""), get("?rollup=only")
		if kept.KeptAsOf == nil || *kept.KeptAsOf != today {
			t.Fatalf("rollup=only with lists imported: kept_as_of %v, want %s (read from the kept verdicts)", kept.KeptAsOf, today)
		}
		for i := range whole.Villages {
			whole.Villages[i].NeverVerified = nil
		}
		for _, c := range []struct {
			level     string
			got, want []verify.Area
		}{{"villages", kept.Villages, whole.Villages}, {"townships", kept.Townships, whole.Townships}, {"counties", kept.Counties, whole.Counties}} {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s: the kept %s differ from the judged ones:\nkept  %+v\nwhole %+v", names[i], c.level, c.got, c.want)
			}
		}
		if !reflect.DeepEqual(kept.Totals, whole.Totals) {
			t.Errorf("the kept totals %+v, the judged %+v", kept.Totals, whole.Totals)
		}
	}

	// Read from the kept sums, not judged again: the sums alone changed
	// under the server, rollup=only follows them.
	db, err := sql.Open("sqlite", "file:"+ts.Store.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var before struct {
		Totals verify.Area `json:"totals"`
	}
	_, body := ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification?rollup=only", "", nil)
	if err := json.Unmarshal(body, &before); err != nil {
		t.Fatal(err)
	}
	if res, err := db.Exec(`UPDATE village_verdicts SET counts = json_set(counts, '$.households', json_extract(counts, '$.households') + 1000)
		WHERE village = (SELECT MIN(village) FROM village_verdicts)`); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%d rows of village_verdicts changed", n)
	}
	var after struct {
		Totals verify.Area `json:"totals"`
	}
	_, body = ts.DoAs(t, admin, http.MethodGet, "/v1/reports/verification?rollup=only", "", nil)
	if err := json.Unmarshal(body, &after); err != nil {
		t.Fatal(err)
	}
	if after.Totals.Households != before.Totals.Households+1000 {
		t.Errorf("with lists imported rollup=only did not read the kept sums: %d households before the sums changed, %d after",
			before.Totals.Households, after.Totals.Households)
	}
}
