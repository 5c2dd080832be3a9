package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestVerificationReportScale is the verification report's benchmark, not
// part of the suite (BENCHMARKS.md, "The verification report"). With
// FIELDSYNC_VERIFY_BENCH=generate it writes N generated households
// (FIELDSYNC_VERIFY_N, the test's generator: persons, a housing and most a
// water inspection each, ~5 records a household) into the database of
// FIELDSYNC_VERIFY_DIR through the push service; with =report, in a fresh
// process, it serves that database over real HTTP and reads the report as
// NDJSON (every household) and as JSON for one county, printing rows/s,
// the latency and the process's peak RSS (VmHWM), which the report alone
// makes since the process did nothing else.
func TestVerificationReportScale(t *testing.T) {
	mode, dir := os.Getenv("FIELDSYNC_VERIFY_BENCH"), os.Getenv("FIELDSYNC_VERIFY_DIR")
	if mode == "" || dir == "" {
		t.Skip("FIELDSYNC_VERIFY_BENCH=generate|report and FIELDSYNC_VERIFY_DIR run the verification report's benchmark")
	}
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	store, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName), sqlite.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cat := verificationCatalog(t)
	switch mode {
	case "generate":
		n, err := strconv.Atoi(os.Getenv("FIELDSYNC_VERIFY_N"))
		if err != nil {
			t.Fatal("FIELDSYNC_VERIFY_N: ", err)
		}
		push := syncproto.NewPushService(store, syncproto.PushOptions{Catalog: cat, Now: clock.Now})
		_, sets := generateVerification(n, storetest.T0)
		dev := storetest.NewDevice("generator")
		start := time.Now()
		for _, changes := range sets {
			dev.Push(t, push, changes...)
		}
		fmt.Printf("generated %d households in %s\n", n, time.Since(start).Round(time.Second))
	case "report":
		keys, err := auth.OpenKeyring(dir, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		hash, err := auth.HashPassword("bench-password")
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutUser(ctx, auth.User{Name: "admin", PasswordHash: hash, Role: syncproto.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(api.New(api.Config{Store: store, Accounts: store, Keys: keys, Catalog: cat, Now: clock.Now,
			Limits: api.DefaultLimits, Rates: &api.RateLimits{}}))
		defer srv.Close()
		login, _ := json.Marshal(map[string]string{"username": "admin", "password": "bench-password", "device_id": apitestAdminDevice})
		resp, err := http.Post(srv.URL+"/v1/auth/token", "application/json", bytes.NewReader(login))
		if err != nil {
			t.Fatal(err)
		}
		var tok api.TokenResponse
		json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		get := func(query string) (lines int, bytes int64, took time.Duration) {
			cpu0 := cpuTime(t)
			defer func() {
				cpu := cpuTime(t) - cpu0
				fmt.Printf("%s: process CPU %s, %.0f households per CPU second\n", query, cpu.Round(time.Millisecond), float64(lines)/cpu.Seconds())
			}()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/reports/verification"+query, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d", query, resp.StatusCode)
			}
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(nil, 64<<20)
			for sc.Scan() {
				lines++
				bytes += int64(len(sc.Bytes()) + 1)
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			return lines, bytes, time.Since(start)
		}
		lines, size, took := get("?format=ndjson")
		fmt.Printf("ndjson: %d lines, %.1f MB in %s: %.0f households/s\n", lines, float64(size)/1e6, took.Round(time.Millisecond),
			float64(lines)/took.Seconds())
		fmt.Printf("peak RSS after the NDJSON report: %s\n", vmHWM(t))
		_, size, took = get("?region=500240")
		fmt.Printf("json, county 500240: %.1f MB in %s\n", float64(size)/1e6, took.Round(time.Millisecond))
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("peak RSS after both: %s (Go heap in use now %.0f MB)\n", vmHWM(t), float64(ms.HeapInuse)/1e6)
	}
}

// cpuTime is the CPU time (user and system) the process used so far: the
// machine is shared, so the report's cost is told apart from its wait.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// apitestAdminDevice is a device id for the benchmark's login.
const apitestAdminDevice = "0193a000-0000-7000-8000-0000000000be"

// vmHWM is the process's peak resident set size, from /proc/self/status.
func vmHWM(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "unknown"
}
