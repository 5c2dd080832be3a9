package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// scrape reads /metrics of a test server, without a token, and parses it.
func scrape(tb testing.TB, ts *apitest.Server) map[string]*dto.MetricFamily {
	tb.Helper()
	resp, body := ts.DoAs(tb, "", http.MethodGet, "/metrics", "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		tb.Fatalf("/metrics: %d %s %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("parsing /metrics: %v", err)
	}
	return families
}

// metricValue is the value of the series of a family whose labels include
// labels (a counter's or gauge's value, a histogram's count); -1 when there
// is no such series.
func metricValue(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	return -1
}

// TestMetricsMoveWithTraffic pushes change sets that apply, merge by
// policy, open a manual conflict and quarantine a change, pulls, takes a
// snapshot and resolves the conflict; /metrics (no token needed) then shows
// each of those counters at exactly the values the traffic implies, the
// write-queue wait observed per push, the database size and Go's runtime
// metrics.
func TestMetricsMoveWithTraffic(t *testing.T) {
	m := api.NewMetrics(apitest.Version)
	ts := apitest.MustServeConfig(t, sqlite.Options{Observer: m}, func(cfg *api.Config) { cfg.Metrics = m })
	if err := m.WatchDatabase(ts.Store.Path()); err != nil {
		t.Fatal(err)
	}
	before := scrape(t, ts)
	if v := metricValue(before, "fieldsync_changes_total", map[string]string{"entity": "household", "status": "applied"}); v != 0 {
		t.Fatalf("changes before any push: %v", v)
	}

	a, b := storetest.NewDevice("li.na"), storetest.NewDevice("zhao.lei")
	hh, insp := uuid.NewString(), uuid.NewString()
	push := func(d *storetest.Device, changes ...syncproto.Change) syncproto.PushResponse {
		t.Helper()
		resp, body := ts.PushJSON(t, d.Changeset(changes...))
		if resp.StatusCode != 200 {
			t.Fatalf("push: %d %s", resp.StatusCode, body)
		}
		var pr syncproto.PushResponse
		if err := json.Unmarshal(body, &pr); err != nil {
			t.Fatal(err)
		}
		return pr
	}
	// 1: a household, its inspection, and an invalid inspection (grade E).
	first := a.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0),
		storetest.HousingInspection(insp, hh, "C", storetest.T0),
		storetest.Upsert("housing_inspection", uuid.NewString(), 0, storetest.T0,
			map[string]any{"household_id": hh, "grade": "E", "inspected_on": "2026-11-20", "ventilation": "adequate"}))
	for i := 0; i < 2; i++ { // the second time a replay
		resp, body := ts.PushJSON(t, first)
		if resp.StatusCode != 200 {
			t.Fatalf("push: %d %s", resp.StatusCode, body)
		}
	}
	// 2 and 3: concurrent edits from base 1: members (manual) and grade
	// (safety_first: D stays over B).
	push(a, storetest.Upsert("household", hh, 1, storetest.T0, map[string]any{"members": 6}),
		storetest.Upsert("housing_inspection", insp, 1, storetest.T0, map[string]any{"grade": "D"}))
	pr := push(b, storetest.Upsert("household", hh, 1, storetest.T0.Add(time.Minute), map[string]any{"members": 7}),
		storetest.Upsert("housing_inspection", insp, 1, storetest.T0.Add(time.Minute), map[string]any{"grade": "B"}))
	if pr.Results[0].Status != "conflict" || pr.Results[1].Status != "merged" {
		t.Fatalf("unexpected results %+v", pr.Results)
	}
	if resp, body := ts.Do(t, http.MethodGet, "/v1/sync/pull", "", nil); resp.StatusCode != 200 {
		t.Fatalf("pull: %d %s", resp.StatusCode, body)
	}
	if resp, body := ts.Do(t, http.MethodGet, "/v1/snapshot?entity=household&format=csv", "", nil); resp.StatusCode != 200 {
		t.Fatalf("snapshot: %d %s", resp.StatusCode, body)
	}
	resolve, _ := json.Marshal(map[string]any{"choose": "incoming", "note": "counted on site"})
	if resp, body := ts.Do(t, http.MethodPost, "/v1/conflicts/"+pr.Results[0].Conflicts[0].ConflictID+"/resolve",
		"application/json", resolve); resp.StatusCode != 200 {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	ts.Do(t, http.MethodGet, "/v1/no-such-thing/"+uuid.NewString(), "", nil)

	flushPulls(t, ts) // pull positions are written in batches
	after := scrape(t, ts)
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"fieldsync_changesets_total", map[string]string{"outcome": "applied"}, 3},
		{"fieldsync_changesets_total", map[string]string{"outcome": "replayed"}, 1},
		{"fieldsync_changes_total", map[string]string{"entity": "household", "status": "applied"}, 2},
		{"fieldsync_changes_total", map[string]string{"entity": "household", "status": "conflict"}, 1},
		{"fieldsync_changes_total", map[string]string{"entity": "housing_inspection", "status": "applied"}, 2},
		{"fieldsync_changes_total", map[string]string{"entity": "housing_inspection", "status": "merged"}, 1},
		{"fieldsync_changes_total", map[string]string{"entity": "housing_inspection", "status": "rejected"}, 1},
		{"fieldsync_quarantined_changes_total", map[string]string{"entity": "housing_inspection"}, 1},
		{"fieldsync_merges_total", map[string]string{"policy": "safety_first"}, 1},
		{"fieldsync_merges_total", map[string]string{"policy": "lww"}, 0},
		{"fieldsync_conflicts_opened_total", map[string]string{"policy": "manual"}, 1},
		{"fieldsync_conflicts_resolved_total", nil, 1},
		{"fieldsync_pull_records_total", map[string]string{"kind": "record"}, 2},
		{"fieldsync_snapshot_rows_total", map[string]string{"format": "csv"}, 1},
		{"fieldsync_http_requests_total", map[string]string{"method": "POST", "route": "/v1/sync/push", "status": "200"}, 4},
		{"fieldsync_http_request_duration_seconds", map[string]string{"method": "POST", "route": "/v1/sync/push", "status": "200"}, 4},
		{"fieldsync_http_requests_total", map[string]string{"method": "GET", "route": "unmatched", "status": "404"}, 1},
		{"fieldsync_http_requests_total", map[string]string{"method": "GET", "route": "/v1/snapshot", "status": "200"}, 1},
		{"fieldsync_http_requests_in_flight", nil, 1}, // the scrape itself
		{"fieldsync_snapshots_in_flight", nil, 0},
		{"fieldsync_build_info", map[string]string{"version": apitest.Version}, 1},
	}
	for _, w := range want {
		if got := metricValue(after, w.name, w.labels); got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
	// Four pushes (one a replay, which writes no data but still takes the
	// writer to look up its receipt), a resolution, a pull's bookkeeping.
	for op, least := range map[string]float64{"push": 4, "resolve": 1, "record_pull": 1} {
		if got := metricValue(after, "fieldsync_sqlite_write_wait_seconds", map[string]string{"op": op}); got < least {
			t.Errorf("write wait of %s observed %v times, want at least %v", op, got, least)
		}
	}
	if got := metricValue(after, "fieldsync_database_size_bytes", map[string]string{"file": "db"}); got <= 0 {
		t.Errorf("database size %v", got)
	}
	if got := metricValue(after, "fieldsync_database_size_bytes", map[string]string{"file": "wal"}); got <= 0 {
		t.Errorf("WAL size %v (the WAL holds the pushes until a checkpoint)", got)
	}
	// The background checkpointer runs a moment after the writes, and with
	// no reader in the way it copies the whole WAL.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		m := scrape(t, ts)
		n := metricValue(m, "fieldsync_sqlite_checkpoint_seconds", nil)
		left := metricValue(m, "fieldsync_sqlite_wal_uncopied_pages", nil)
		if n >= 1 && left == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("background checkpoints observed: %v, WAL pages left uncopied %v; want at least 1, and 0", n, left)
		}
	}
	if n := metricValue(after, "fieldsync_sqlite_checkpoint_errors_total", nil); n != 0 {
		t.Errorf("failed checkpoints: %v", n)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_open_fds"} {
		if metricValue(after, name, nil) < 0 {
			t.Errorf("%s missing", name)
		}
	}
}

// TestMetricsElsewhere: with Config.MetricsElsewhere (serve
// --metrics-addr) the API's listener does not answer /metrics.
func TestMetricsElsewhere(t *testing.T) {
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.MetricsElsewhere = true })
	if resp, _ := ts.DoAs(t, "", http.MethodGet, "/metrics", "", nil); resp.StatusCode != 404 {
		t.Fatalf("/metrics on the API listener: %d", resp.StatusCode)
	}
}

// A pull of many pages writes the device's position at no page (each
// write is a durable transaction queued behind the pushes): once, when the
// buffered positions are flushed, and the position written is the end of
// the pull.
func TestLongPullWritesItsPositionOnce(t *testing.T) {
	m := api.NewMetrics("test")
	ts := apitest.MustServeConfig(t, sqlite.Options{Observer: m}, func(cfg *api.Config) { cfg.Metrics = m })
	admin := storetest.NewDevice("admin")
	var changes []syncproto.Change
	for i := 0; i < 7; i++ {
		changes = append(changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	}
	if resp, body := ts.PushJSON(t, admin.Changeset(changes...)); resp.StatusCode != 200 {
		t.Fatalf("push: %d %s", resp.StatusCode, body)
	}
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	dev := uuid.NewString()
	token := ts.Login(t, "worker", dev)
	writes := func() float64 {
		return max(metricValue(scrape(t, ts), "fieldsync_sqlite_write_wait_seconds", map[string]string{"op": "record_pull"}), 0)
	}
	before := writes()
	cursor, pages := "", 0
	for {
		resp, body := ts.DoAs(t, token, http.MethodGet, "/v1/sync/pull?limit=2&cursor="+cursor, "", nil)
		var page syncproto.PullResponse
		if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 {
			t.Fatalf("pull: %d %s", resp.StatusCode, body)
		}
		pages++
		cursor = page.Cursor
		if !page.HasMore {
			break
		}
	}
	if pages != 4 {
		t.Fatalf("%d pages of 2 for 7 records", pages)
	}
	if got := writes() - before; got != 0 {
		t.Fatalf("a pull of %d pages wrote the position %v times before the flush, want 0", pages, got)
	}
	flushPulls(t, ts)
	if got := writes() - before; got != 1 {
		t.Fatalf("a pull of %d pages wrote the position %v times, want 1", pages, got)
	}
	devs, err := ts.Store.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	head, err := ts.Push.Cursors().Parse(cursor)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range devs {
		if d.DeviceID == dev {
			found = true
			if d.LastPullSeq != head.Seq {
				t.Fatalf("position written %d, the pull ended at %d", d.LastPullSeq, head.Seq)
			}
		}
	}
	if !found {
		t.Fatal("the pulling device is not in the device list")
	}
}
