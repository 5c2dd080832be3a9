package api_test

import (
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// FuzzSupervisorQueries sends arbitrary query strings to the snapshot,
// report and list endpoints of a real server: whatever the parameters, the
// answer is a success or a documented 4xx, never a 500.
func FuzzSupervisorQueries(f *testing.F) {
	ts := apitest.MustServe(f)
	ts.AddUser(f, "sup", syncproto.RoleSupervisor, "500240")
	d := storetest.NewDevice("admin")
	hh := uuid.NewString()
	if resp, b := ts.PushJSON(f, d.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0),
		storetest.HousingInspection(uuid.NewString(), hh, "D", storetest.T0))); resp.StatusCode != 200 {
		f.Fatalf("%d %s", resp.StatusCode, b)
	}
	tok := ts.Login(f, "sup", uuid.NewString())
	for _, seed := range []string{"entity=household&format=csv", "format=geojson&region=500240107", "format=xlsx",
		"entity=household&as_of=ZnMxLjE.xxxx", "region=50%27%3B--", "limit=-1&cursor=%00", "state=open&region=1504",
		"format=ndjson&entity=water_inspection&region=500240107201", "region=" + string(make([]byte, 40))} {
		f.Add(0, seed)
		f.Add(1, seed)
		f.Add(2, seed)
	}
	paths := []string{"/v1/snapshot", "/v1/reports/coverage", "/v1/reinspections", "/v1/conflicts", "/v1/quarantine",
		"/v1/duplicates", "/v1/devices", "/v1/sync/pull"}
	f.Fuzz(func(t *testing.T, which int, query string) {
		if which < 0 {
			which = -which
		}
		path := paths[which%len(paths)]
		if _, err := url.ParseQuery(query); err != nil {
			query = url.QueryEscape(query)
		}
		req, err := http.NewRequest("GET", ts.URL+path+"?"+query, nil)
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatalf("%s?%s: %v", path, query, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case 200, 400, 403, 404, 413, 422:
		case 429:
			// A user's snapshots at once are bounded (--snapshot-per-user):
			// the previous snapshot's slot may not be free yet. The
			// answer must say when to retry.
			if resp.Header.Get("Retry-After") == "" {
				t.Fatalf("%s?%s answered 429 without Retry-After", path, query)
			}
		default:
			t.Fatalf("%s?%s answered %d", path, query, resp.StatusCode)
		}
	})
}
