package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// BenchmarkHTTPPushRegistryHouseholds is the push path of household
// writes in a village with registry rows: 8 tablets push 50-change sets of
// new households into a village the poverty registry lists 40 households
// of, at once; b.N counts change sets. Each household written marks its
// village for the registry-only counts (where a store keeps them), the
// cost BenchmarkHTTPPush (inspections only) does not see.
func BenchmarkHTTPPushRegistryHouseholds(b *testing.B) {
	ts := apitest.MustServeConfig(b, sqlite.Options{}, func(cfg *api.Config) { cfg.Limits.MaxBodyBytes = 8 << 20 })
	ts.AddUser(b, "w", syncproto.RoleFieldWorker, "500240107")
	admin := ts.Login(b, "admin", apitest.AdminDevice)
	var csv strings.Builder
	csv.WriteString("registration_no,village,head_name,members\n")
	for i := range 40 {
		fmt.Fprintf(&csv, "R-%d,%s,户主%d,3\n", i, storetest.SouthVillage, i)
	}
	if resp, body := ts.DoAs(b, admin, http.MethodPost, "/v1/imports?source=poverty_registry", "text/csv", []byte(csv.String())); resp.StatusCode != 200 {
		b.Fatalf("import: %d %s", resp.StatusCode, body)
	}
	benchPushes(b, ts, func(*storetest.Device) []syncproto.Change {
		var changes []syncproto.Change
		for range benchPerSet {
			changes = append(changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
		}
		return changes
	})
}
