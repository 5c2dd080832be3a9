package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
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

// BenchmarkHTTPPush is the whole push path: HTTP, authentication, decoding,
// validation, merge, the group-committed SQLite transaction, the answer.
// 8 tablets push 50-change sets (new water inspections of 100 households)
// at once; b.N counts change sets. `go test ./server/api -run '^$' -bench
// HTTPPush -cpuprofile push.prof` shows where a push's time goes.
func BenchmarkHTTPPush(b *testing.B) {
	ts := apitest.MustServeConfig(b, sqlite.Options{}, func(cfg *api.Config) { cfg.Limits.MaxBodyBytes = 8 << 20 })
	ts.AddUser(b, "w", syncproto.RoleFieldWorker, "500240107")
	admin := storetest.NewDevice("admin")
	admin.Actor.DeviceID = apitest.AdminDevice
	var households []string
	var changes []syncproto.Change
	for i := 0; i < 100; i++ {
		hh := uuid.NewString()
		households = append(households, hh)
		changes = append(changes, storetest.Household(hh, storetest.SouthVillage, storetest.T0))
	}
	if resp, body := ts.PushJSON(b, admin.Changeset(changes...)); resp.StatusCode != 200 {
		b.Fatalf("seed: %d %s", resp.StatusCode, body)
	}
	benchPushes(b, ts, func(dev *storetest.Device) []syncproto.Change {
		var changes []syncproto.Change
		for j := 0; j < benchPerSet; j++ {
			changes = append(changes, storetest.WaterInspection(uuid.NewString(), households[j*7%len(households)], storetest.T0))
		}
		return changes
	})
}

// The push benchmarks' load: benchTablets tablets of field worker "w"
// (scope 500240107) push change sets of benchPerSet changes at once.
const benchTablets, benchPerSet = 8, 50

// benchPushes has benchTablets tablets, each signed in as "w", push b.N
// change sets between them, each of the changes set makes for the tablet,
// and reports the rate in changes/s. The clock runs from its start.
func benchPushes(b *testing.B, ts *apitest.Server, set func(dev *storetest.Device) []syncproto.Change) {
	type tablet struct {
		dev   *storetest.Device
		token string
	}
	tabs := make([]tablet, benchTablets)
	for i := range tabs {
		d := storetest.NewDevice("w", "500240107")
		tabs[i] = tablet{dev: d, token: ts.Login(b, "w", d.Actor.DeviceID)}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchTablets}}
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
				body, _ := json.Marshal(t.dev.Changeset(set(t.dev)...))
				req, _ := http.NewRequest("POST", ts.URL+"/v1/sync/push", bytes.NewReader(body))
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
	b.ReportMetric(float64(b.N*benchPerSet)/time.Since(start).Seconds(), "changes/s")
}
