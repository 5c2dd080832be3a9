package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// BenchmarkSnapshot streams NDJSON snapshots of households over real HTTP
// from a real SQLite file: one county (about a quarter of the data) and all
// 200,000 households. It reports records/s and the peak heap in use while
// streaming (runtime HeapInuse, sampled every 10 ms), next to the heap in
// use before: a peak that does not grow from the county to the whole data
// set is memory bounded by the snapshot's streaming, not by its size.
//
// The data (fixtures.Generate, households only, pushed through the store
// in change sets of 1,000) is loaded once, before any timing: about a
// minute on two cores. Run it with
//
//	go test -run '^$' -bench BenchmarkSnapshot -benchtime 1x ./server/api
func BenchmarkSnapshot(b *testing.B) {
	const households = 200_000
	ts := apitest.MustServe(b)
	ctx := context.Background()
	loader := &fixtures.Loader{Service: ts.Push, Name: "bench-snapshot", BatchSize: 1000}
	var county string
	err := fixtures.Generate(fixtures.GenConfig{Seed: 1, Households: households}, func(ch syncproto.Change) error {
		if ch.Entity != "household" {
			return nil
		}
		if county == "" {
			var village string
			_ = json.Unmarshal(ch.Fields["village"], &village)
			county = village[:6]
		}
		return loader.Add(ctx, ch)
	})
	if err == nil {
		err = loader.Flush(ctx)
	}
	if err != nil {
		b.Fatal(err)
	}
	token := ts.Login(b, "admin", apitest.AdminDevice)

	for _, bc := range []struct{ name, query string }{
		{"county", "entity=household&region=" + county},
		{"all", "entity=household"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			var peak atomic.Uint64
			peak.Store(before.HeapInuse)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				var m runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						runtime.ReadMemStats(&m)
						if m.HeapInuse > peak.Load() {
							peak.Store(m.HeapInuse)
						}
					}
				}
			}()
			records := 0
			for b.Loop() {
				records += streamSnapshot(b, ts, token, bc.query)
			}
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(records/b.N), "records/op")
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(before.HeapInuse)/(1<<20), "heap-before-MiB")
		})
	}
}

// streamSnapshot reads a snapshot line by line, as a client would, and
// returns how many records it held.
func streamSnapshot(b *testing.B, ts *apitest.Server, token, query string) int {
	req, err := http.NewRequest(http.MethodGet, ts.URL+"/v1/snapshot?"+query, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := ts.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("snapshot: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return n
}
