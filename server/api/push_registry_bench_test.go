package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

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
	const tablets, perSet = 8, 50
	type tablet struct {
		dev   *storetest.Device
		token string
	}
	tabs := make([]tablet, tablets)
	for i := range tabs {
		d := storetest.NewDevice("w", "500240107")
		tabs[i] = tablet{dev: d, token: ts.Login(b, "w", d.Actor.DeviceID)}
	}
	body := func(t tablet) []byte {
		var changes []syncproto.Change
		for range perSet {
			changes = append(changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
		}
		b, _ := json.Marshal(t.dev.Changeset(changes...))
		return b
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: tablets}}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int, b.N)
	for i := 0; i < b.N; i++ {
		next <- i
	}
	close(next)
	for _, t := range tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				req, _ := http.NewRequest("POST", ts.URL+"/v1/sync/push", bytes.NewReader(body(t)))
				req.Header.Set("Authorization", "Bearer "+t.token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Error(fmt.Sprint("push: ", resp.StatusCode))
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*perSet)/time.Since(start).Seconds(), "changes/s")
}
