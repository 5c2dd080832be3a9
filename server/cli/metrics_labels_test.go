package cli

import (
	"bufio"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// scrapeURL reads a server's /metrics and returns the number of series of
// fieldsync_http_requests_total and of fieldsync_http_request_duration_seconds,
// and the size of the exposition in bytes.
func scrapeURL(tb testing.TB, url string) (series int, size int) {
	tb.Helper()
	families, size := scrapeFamilies(tb, url)
	for _, name := range []string{"fieldsync_http_requests_total", "fieldsync_http_request_duration_seconds"} {
		if f := families[name]; f != nil {
			series += len(f.Metric)
		}
	}
	return series, size
}

// rssBytes is the resident set size of process pid, from /proc.
func rssBytes(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				tb.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc status")
	return 0
}

// pipelineRequests sends n requests without a token down conns
// connections, each request written without waiting for the answer before
// it (HTTP/1.1 pipelining, as the review did), with a method and a path
// made up by rnd, and reads every answer. It returns how many answers
// came back.
func pipelineRequests(tb testing.TB, addr string, conns, n int, rnd *rand.Rand) int {
	tb.Helper()
	// Paths under real routes too, so that a registered route answered
	// with an unknown method (405) is covered as well as unmatched paths.
	prefixes := []string{"/", "/z/", "/v1/", "/v1/records/household/", "/v1/attachments/", "/v1/sync/push/", "/metrics/"}
	reqs := make([][]byte, conns)
	for i := 0; i < n; i++ {
		method := fmt.Sprintf("B%07d", rnd.Intn(1e7))
		if i%5 == 0 {
			method = []string{"GET", "POST", "PUT", "DELETE", "PATCH"}[rnd.Intn(5)]
		}
		path := prefixes[rnd.Intn(len(prefixes))] + strconv.FormatInt(rnd.Int63(), 36)
		c := i % conns
		reqs[c] = fmt.Appendf(reqs[c], "%s %s HTTP/1.1\r\nHost: fieldsync\r\n\r\n", method, path)
	}
	var wg sync.WaitGroup
	answers := make([]int, conns)
	for c := 0; c < conns; c++ {
		// The last request of each connection closes it once answered, so
		// that reading to EOF reads every answer.
		reqs[c] = append(reqs[c], "GET /healthz HTTP/1.1\r\nHost: fieldsync\r\nConnection: close\r\n\r\n"...)
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			tb.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
		wg.Add(2)
		go func(c int) {
			defer wg.Done()
			_, _ = conn.Write(reqs[c])
		}(c)
		go func(c int) {
			defer wg.Done()
			defer conn.Close()
			br := bufio.NewReader(conn)
			for {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answers[c]++
			}
		}(c)
	}
	wg.Wait()
	total := 0
	for _, a := range answers {
		total += a
	}
	return total
}

// TestMetricsLabelsStayClosed: 20,000 requests without a token, with
// invented methods (B0000001 …) and random paths, pipelined as the outside
// review sent them, leave the request metrics' series count and the
// server's RSS flat: unknown methods count under "other", unmatched paths
// under "unmatched". (Before the fix each invented method was a new series
// of the counter and of the 16-bucket histogram, for good.)
func TestMetricsLabelsStayClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	p := startBinary(t, t.TempDir())
	addr := strings.TrimPrefix(p.url, "http://")
	rnd := rand.New(rand.NewSource(14))

	// A first round makes the closed set's series exist and warms the
	// process up; the second must then add nothing.
	pipelineRequests(t, addr, 4, 2000, rnd)
	seriesBefore, sizeBefore := scrapeURL(t, p.url)
	rssBefore := rssBytes(t, p.cmd.Process.Pid)

	const n = 20000
	if got := pipelineRequests(t, addr, 4, n, rnd); got != n+4 {
		t.Fatalf("%d answers to %d requests", got, n+4)
	}
	seriesAfter, sizeAfter := scrapeURL(t, p.url)
	rssAfter := rssBytes(t, p.cmd.Process.Pid)
	t.Logf("series %d -> %d, /metrics %d -> %d bytes, RSS %.1f -> %.1f MiB",
		seriesBefore, seriesAfter, sizeBefore, sizeAfter, float64(rssBefore)/(1<<20), float64(rssAfter)/(1<<20))

	// A few combinations of the closed set may first appear in the second
	// round (a method and status not drawn in the first); 20,000 invented
	// methods must not.
	if seriesAfter > seriesBefore+20 {
		t.Errorf("the request metrics grew from %d to %d series", seriesBefore, seriesAfter)
	}
	if sizeAfter > sizeBefore+16<<10 {
		t.Errorf("/metrics grew from %d to %d bytes", sizeBefore, sizeAfter)
	}
	if grown := rssAfter - rssBefore; grown > 25<<20 {
		t.Errorf("RSS grew by %.1f MiB (%.1f -> %.1f)", float64(grown)/(1<<20), float64(rssBefore)/(1<<20), float64(rssAfter)/(1<<20))
	}
}
