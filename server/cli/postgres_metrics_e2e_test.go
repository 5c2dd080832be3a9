package cli

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/postgres/pgtest"
	"github.com/fieldsync/fieldsync/server/storetest"
)

// scrapeFamilies reads a server's /metrics, parsed, and the size of the
// exposition in bytes.
func scrapeFamilies(tb testing.TB, url string) (map[string]*dto.MetricFamily, int) {
	tb.Helper()
	resp, err := apitest.HTTPClient.Get(url + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		tb.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("parsing /metrics: %v", err)
	}
	return families, len(body)
}

// sample is the value of the series of family name with labels (a
// histogram's sample count), and whether there is one.
func sample(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := families[name]
	if f == nil {
		return 0, false
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
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

// TestPostgresWriteWaitAndSizeMetrics: a server on PostgreSQL serves, on
// /metrics, the wait of its writes for a connection and the write lock
// (fieldsync_postgres_write_wait_seconds, one observation per write, by
// operation: each pushed change set, each login) and the database's size
// (fieldsync_database_size_bytes{file="db"}, pg_database_size of its
// database, growing as pushes land).
func TestPostgresWriteWaitAndSizeMetrics(t *testing.T) {
	ctx := context.Background()
	store, drop, err := pgtest.Shared(t).CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drop() })
	const password = "a-long-password"
	cli(t, password+"\n", "user", "add", "--store", store, "--name", "worker.xituo", "--role", "field_worker", "--scope", "500240107")
	p := startBinary(t, t.TempDir(), "--store", store)
	before, _ := scrapeFamilies(t, p.url)
	if _, ok := sample(before, "fieldsync_postgres_write_wait_seconds", map[string]string{"op": "push"}); ok {
		t.Fatal("a push wait before any push")
	}
	sizeBefore, ok := sample(before, "fieldsync_database_size_bytes", map[string]string{"file": "db"})
	if !ok || sizeBefore <= 0 {
		t.Fatalf("fieldsync_database_size_bytes{file=db} before the pushes: %v %v", sizeBefore, ok)
	}
	dev := storetest.NewDevice("worker.xituo", "500240107")
	token := httpLogin(t, p.url, "worker.xituo", password, dev.Actor.DeviceID)
	const sets = 3
	for range sets {
		cs := surveyChangeset(dev, 200)
		if _, status, err := postPush(p.url, token, cs); err != nil || status != 200 {
			t.Fatalf("push: %d %v", status, err)
		}
	}
	after, _ := scrapeFamilies(t, p.url)
	if n, _ := sample(after, "fieldsync_postgres_write_wait_seconds", map[string]string{"op": "push"}); n != sets {
		t.Fatalf("push waits observed: %v, want %d (one per change set)", n, sets)
	}
	if n, _ := sample(after, "fieldsync_postgres_write_wait_seconds", map[string]string{"op": "login"}); n < 1 {
		t.Fatalf("login waits observed: %v, want at least 1", n)
	}
	if _, ok := sample(after, "fieldsync_sqlite_write_wait_seconds", map[string]string{"op": "push"}); ok {
		t.Fatal("a PostgreSQL server observed SQLite write waits")
	}
	size, _ := sample(after, "fieldsync_database_size_bytes", map[string]string{"file": "db"})
	conn, err := pgx.Connect(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var actual int64
	if err := conn.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&actual); err != nil {
		t.Fatal(err)
	}
	if size <= sizeBefore || size > float64(actual) {
		t.Fatalf("fieldsync_database_size_bytes{file=db} %v after %d change sets: want above %v and at most pg_database_size %d",
			size, sets, sizeBefore, actual)
	}
	if _, ok := sample(after, "fieldsync_database_size_bytes", map[string]string{"file": "wal"}); ok {
		t.Fatal("a PostgreSQL server reports a SQLite WAL size")
	}
}
