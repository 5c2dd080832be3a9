package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestSlowReportReaderCannotStarveOthers: the CSV and XLSX tables of the
// reports are bounded as snapshots are. One supervisor downloads the
// coverage table of never-inspected households at about 3 KB/s: while it
// streams, every other table (coverage XLSX, re-inspections, conflicts,
// duplicates) and every snapshot of the same user is refused with 429 and
// Retry-After (they share the user's --snapshot-per-user slot), another
// supervisor's table is served whole, and the slow download is cut once it
// falls behind --snapshot-min-rate (here 64 KiB/s after a 1 s grace),
// giving its slot back, well before it could finish.
func TestSlowReportReaderCannotStarveOthers(t *testing.T) {
	ts, slowToken, slowURL := slowReaderServer(t)
	const path = "/v1/reports/coverage?format=csv&table=never_inspected"

	resp, whole := ts.DoAs(t, slowToken, http.MethodGet, path, "", nil)
	if resp.StatusCode != 200 || len(whole) < 150<<10 {
		t.Fatalf("the table: %d, %d bytes (want 200 and more than 150 KiB)", resp.StatusCode, len(whole))
	}

	slow := slowRead(slowURL+path, slowToken)

	for _, other := range []string{path, "/v1/reports/coverage?format=xlsx", "/v1/reinspections?format=csv",
		"/v1/conflicts?format=csv", "/v1/duplicates?format=xlsx", "/v1/snapshot?entity=household&format=csv"} {
		resp, body := ts.DoAs(t, slowToken, http.MethodGet, other, "", nil)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("the slow supervisor's %s while the table streams: %d %.200s", other, resp.StatusCode, body)
		}
	}
	resp, body := ts.DoAs(t, ts.Login(t, "zhao.sup", uuid.NewString()), http.MethodGet, path, "", nil)
	if resp.StatusCode != 200 || len(body) != len(whole) {
		t.Fatalf("another supervisor's table while the slow one streams: %d %.200s", resp.StatusCode, body)
	}

	got := <-slow
	t.Logf("slow reader: %d of %d bytes in %s, then %v", got.read, len(whole), got.elapsed.Round(time.Millisecond), got.err)
	if got.err == nil || got.read >= len(whole) {
		t.Fatalf("the slow download was not cut: %d of %d bytes in %s", got.read, len(whole), got.elapsed)
	}
	if resp, body := ts.DoAs(t, slowToken, http.MethodGet, path, "", nil); resp.StatusCode != 200 || len(body) != len(whole) {
		t.Fatalf("a table once the slow one was cut: %d %.200s", resp.StatusCode, body)
	}
}
