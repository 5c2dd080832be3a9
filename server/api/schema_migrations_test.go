package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
)

// TestSchemaServesItsMigrationSteps: GET /v1/schema?version=N carries the
// steps from version N-1 as its version.json declares them (what a client
// on an older version reads its pending edits through), as openapi.json
// describes them.
func TestSchemaServesItsMigrationSteps(t *testing.T) {
	cat, err := schema.LoadCatalog(os.DirFS("../../schema/testdata"), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.Catalog = cat })
	k := newContract(t, ts, loadOpenAPI(t))
	tok := ts.Login(t, "admin", apitest.AdminDevice)
	for _, n := range []int{1, 2, 3} {
		_, body := k.call(t, apiCall{name: "schema version", method: http.MethodGet, path: "/v1/schema?version=" + string(rune('0'+n)),
			token: tok, status: http.StatusOK})
		var got struct {
			Version    int             `json:"schema_version"`
			Migrations json.RawMessage `json:"migrations"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		var want, served any
		if err := json.Unmarshal(cat.Info(n).Migrations, &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got.Migrations, &served); err != nil {
			t.Fatalf("version %d: migrations %s", n, got.Migrations)
		}
		if got.Version != n || !equalJSON(want, served) {
			t.Fatalf("version %d served the steps %s, want %s", n, got.Migrations, cat.Info(n).Migrations)
		}
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
