package api

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Metrics are fieldsync's Prometheus collectors, on a registry of their own
// (never the global default registry, so that two servers in one process,
// as in the tests, do not share counters). The README's Metrics section
// documents each of them. A Metrics is also the SQLite store's
// sqlite.WriteObserver.
type Metrics struct {
	registry *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpInFlight prometheus.Gauge

	changesets        *prometheus.CounterVec
	changes           *prometheus.CounterVec
	merges            *prometheus.CounterVec
	conflictsOpened   *prometheus.CounterVec
	conflictsResolved prometheus.Counter
	quarantined       *prometheus.CounterVec
	pullRecords       *prometheus.CounterVec
	snapshotRows      *prometheus.CounterVec
	writeWait         *prometheus.HistogramVec
	pgWriteWait       *prometheus.HistogramVec
	checkpoint        prometheus.Histogram
	checkpointErrors  prometheus.Counter
	walUncopied       prometheus.Gauge
}

// requestBuckets are the latency buckets of HTTP requests, in seconds: from
// a health check to a snapshot of a county streamed over a slow link.
var requestBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120, 600}

// writeWaitBuckets are the buckets of the wait for the writer, in seconds:
// from an idle writer (tens of microseconds) to the busy timeout.
var writeWaitBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// NewMetrics makes the collectors and registers them, with Go's runtime
// and the process collectors and fieldsync_build_info, on a new registry.
func NewMetrics(version string) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{registry: r,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldsync_http_requests_total",
			Help: "HTTP requests answered, by method, route template and status code."}, []string{"method", "route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fieldsync_http_request_duration_seconds",
			Help:    "Time from receiving an HTTP request to the end of its answer, by method, route template and status code.",
			Buckets: requestBuckets}, []string{"method", "route", "status"}),
		httpInFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fieldsync_http_requests_in_flight",
			Help: "HTTP requests being answered now."}),
		changesets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldsync_changesets_total",
			Help: "Change sets accepted by push: outcome applied (committed now) or replayed (a retry answered from its receipt)."}, []string{"outcome"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldsync_changes_total",
			Help: "Changes of committed change sets, by entity and result status (applied, merged, conflict, rejected)."}, []string{"entity", "status"}),
		merges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldsync_merges_total",
			Help: "Concurrent field edits decided automatically by the field's policy (lww, safety_first, union)."}, []string{"policy"}),
		conflictsOpened: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldsync_conflicts_opened_total",
			Help: "Concurrent edits left open for a supervisor, by policy (manual; _deleted conflicts count as manual)."}, []string{"policy"}),
		conflictsResolved: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldsync_conflicts_resolved_total",
			Help: "Conflicts resolved by a supervisor."}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldsync_quarantined_changes_total",
			Help: "Changes rejected and kept in quarantine, by entity."}, []string{"entity"}),
		pullRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldsync_pull_records_total",
			Help: "Records sent by pull, by kind: record (current state or tombstone) or removal (left the caller's scope)."}, []string{"kind"}),
		snapshotRows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldsync_snapshot_rows_total",
			Help: "Records written by snapshots, by format."}, []string{"format"}),
		writeWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fieldsync_sqlite_write_wait_seconds",
			Help:    "Time a write transaction waited for the single writer connection and SQLite's write lock, by operation.",
			Buckets: writeWaitBuckets}, []string{"op"}),
		pgWriteWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fieldsync_postgres_write_wait_seconds",
			Help:    "Time a write transaction on PostgreSQL waited for a pooled connection and the write lock (the advisory lock of every instance's writes), by operation; for push, from the call (the group committer's queue included).",
			Buckets: writeWaitBuckets}, []string{"op"}),
		checkpoint: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fieldsync_sqlite_checkpoint_seconds",
			Help:    "Duration of the background checkpoints, which copy the WAL into the database file beside the writer.",
			Buckets: writeWaitBuckets}),
		checkpointErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldsync_sqlite_checkpoint_errors_total",
			Help: "Background checkpoints that failed (a full disk, an I/O error); the WAL keeps every page, nothing is lost."}),
		walUncopied: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fieldsync_sqlite_wal_uncopied_pages",
			Help: "WAL pages the last background checkpoint could not copy into the database file: pages a reader still needs, or written meanwhile."}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fieldsync_build_info",
		Help: "Always 1: the version of fieldsync and of Go it was built with."}, []string{"version", "go_version"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	r.MustRegister(m.httpRequests, m.httpDuration, m.httpInFlight, m.changesets, m.changes, m.merges,
		m.conflictsOpened, m.conflictsResolved, m.quarantined, m.pullRecords, m.snapshotRows, m.writeWait, m.pgWriteWait, m.checkpoint, m.checkpointErrors, m.walUncopied, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{"applied", "replayed"} {
		m.changesets.WithLabelValues(o)
	}
	return m
}

// initLabels makes the push counters of every entity, status and policy
// exist at 0 from the start, so that rate() and increase() see the first
// change, not only the second.
func (m *Metrics) initLabels(sch *schema.Schema) {
	for _, e := range sch.Entities() {
		for _, s := range []string{syncproto.StatusApplied, syncproto.StatusMerged, syncproto.StatusConflict, syncproto.StatusRejected} {
			m.changes.WithLabelValues(e, s)
		}
		m.quarantined.WithLabelValues(e)
	}
	for _, p := range []schema.Policy{schema.PolicyLWW, schema.PolicySafetyFirst, schema.PolicyUnion} {
		m.merges.WithLabelValues(string(p))
	}
	m.conflictsOpened.WithLabelValues(string(schema.PolicyManual))
	for _, k := range []string{"record", "removal"} {
		m.pullRecords.WithLabelValues(k)
	}
}

// Handler serves the registry in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// WriteWaited records how long a write transaction waited for the writer;
// it implements sqlite.WriteObserver.
func (m *Metrics) WriteWaited(op string, waited time.Duration) {
	m.writeWait.WithLabelValues(op).Observe(waited.Seconds())
}

// PostgresWrites is the observer of a PostgreSQL store's write waits
// (postgres.WriteObserver): it records them as
// fieldsync_postgres_write_wait_seconds.
func (m *Metrics) PostgresWrites() PostgresWriteWaits { return PostgresWriteWaits{m} }

// PostgresWriteWaits records a PostgreSQL store's write waits; made by
// Metrics.PostgresWrites.
type PostgresWriteWaits struct{ m *Metrics }

// WriteWaited records how long a write transaction waited for a
// connection and the write lock.
func (w PostgresWriteWaits) WriteWaited(op string, waited time.Duration) {
	w.m.pgWriteWait.WithLabelValues(op).Observe(waited.Seconds())
}

// Checkpointed records a background checkpoint; it implements
// sqlite.CheckpointObserver.
func (m *Metrics) Checkpointed(walPages, copied int, took time.Duration, err error) {
	if err != nil {
		m.checkpointErrors.Inc()
		return
	}
	m.checkpoint.Observe(took.Seconds())
	m.walUncopied.Set(float64(walPages - copied))
}

// WatchDatabase adds the gauge fieldsync_database_size_bytes of the
// database file at path and its WAL, read from the file system at every
// scrape. It may be called once per Metrics.
func (m *Metrics) WatchDatabase(path string) error {
	return m.registry.Register(databaseSize{path: path})
}

// WatchDatabaseSize adds the gauge fieldsync_database_size_bytes{file="db"}
// of a database that is not a file of this machine (PostgreSQL's
// pg_database_size): size is asked at every scrape, bounded by 5 s; when
// it fails the scrape has no such sample. It may be called once per
// Metrics, instead of WatchDatabase.
func (m *Metrics) WatchDatabaseSize(size func(context.Context) (int64, error)) error {
	return m.registry.Register(queriedDatabaseSize(size))
}

// watchSnapshots adds the gauge of snapshots streaming now, read from the
// server's semaphore at every scrape (once per Metrics: a second server on
// the same Metrics keeps the first's).
func (m *Metrics) watchSnapshots(sem chan struct{}) {
	_ = m.registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldsync_snapshots_in_flight",
		Help: "Snapshots streaming now (at most the configured snapshot concurrency)."}, func() float64 { return float64(len(sem)) }))
}

// observeRequest counts and times one answered request. Every label comes
// from a closed set, whatever the client sent: the method is one of
// HTTP's registered methods or "other" (methodLabel), the route is a
// registered route template or "unmatched" (routeLabel), the status one
// the server answered or "other" (statusLabel). A client inventing methods
// or paths therefore adds no series.
func (m *Metrics) observeRequest(method, route string, status int, elapsed time.Duration) {
	method, code := methodLabel(method), statusLabel(status)
	m.httpRequests.WithLabelValues(method, route, code).Inc()
	m.httpDuration.WithLabelValues(method, route, code).Observe(elapsed.Seconds())
}

// otherLabel is the label value of every method or status outside the
// closed set.
const otherLabel = "other"

// methodLabel is the metrics' label of a request method: the method
// itself when it is one of net/http's (GET, HEAD, POST, PUT, PATCH,
// DELETE, CONNECT, OPTIONS, TRACE), "other" for anything a client made up
// (HTTP allows any token as a method, and net/http passes it on).
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return otherLabel
}

// statusLabel is the metrics' label of a response status: its three
// digits when net/http knows the status, "other" otherwise.
func statusLabel(status int) string {
	if http.StatusText(status) == "" {
		return otherLabel
	}
	return strconv.Itoa(status)
}

// observePush counts a push's outcome: the change set, each change's
// status by entity, each concurrent decision by policy, the quarantined
// changes. A replay changed nothing and counts only as a replay.
func (m *Metrics) observePush(cs syncproto.Changeset, resp syncproto.PushResponse) {
	if resp.Replayed {
		m.changesets.WithLabelValues("replayed").Inc()
		return
	}
	m.changesets.WithLabelValues("applied").Inc()
	entity := make(map[string]string, len(cs.Changes))
	for _, ch := range cs.Changes {
		entity[ch.ID] = ch.Entity
	}
	for _, r := range resp.Results {
		e := entity[r.ID]
		m.changes.WithLabelValues(e, r.Status).Inc()
		if r.Status == syncproto.StatusRejected {
			m.quarantined.WithLabelValues(e).Inc()
		}
		for _, cf := range r.Conflicts {
			if cf.State == syncproto.StateOpen {
				m.conflictsOpened.WithLabelValues(cf.Policy).Inc()
			} else {
				m.merges.WithLabelValues(cf.Policy).Inc()
			}
		}
	}
}

func (m *Metrics) observePull(records []syncproto.Record) {
	var removed int
	for _, r := range records {
		if r.Removed {
			removed++
		}
	}
	if n := len(records) - removed; n > 0 {
		m.pullRecords.WithLabelValues("record").Add(float64(n))
	}
	if removed > 0 {
		m.pullRecords.WithLabelValues("removal").Add(float64(removed))
	}
}

// databaseSize is the collector of fieldsync_database_size_bytes: it stats
// the database file and its WAL when scraped (a missing WAL counts 0).
type databaseSize struct{ path string }

var databaseSizeDesc = prometheus.NewDesc("fieldsync_database_size_bytes",
	"Size of the database on disk, by file: db (the SQLite database file; on PostgreSQL, pg_database_size of the store's database) and wal (SQLite's write-ahead log).", []string{"file"}, nil)

func (d databaseSize) Describe(ch chan<- *prometheus.Desc) { ch <- databaseSizeDesc }

func (d databaseSize) Collect(ch chan<- prometheus.Metric) {
	for _, f := range []struct{ label, suffix string }{{"db", ""}, {"wal", "-wal"}} {
		var size int64
		if fi, err := os.Stat(d.path + f.suffix); err == nil {
			size = fi.Size()
		}
		ch <- prometheus.MustNewConstMetric(databaseSizeDesc, prometheus.GaugeValue, float64(size), f.label)
	}
}

// queriedDatabaseSize is the collector of fieldsync_database_size_bytes
// for a database asked for its size (PostgreSQL): file="db" only.
type queriedDatabaseSize func(context.Context) (int64, error)

func (q queriedDatabaseSize) Describe(ch chan<- *prometheus.Desc) { ch <- databaseSizeDesc }

func (q queriedDatabaseSize) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	size, err := q(ctx)
	if err != nil {
		// The database unreachable: no sample, rather than a false 0
		// (fieldsync_http_requests_total's 503s say why).
		return
	}
	ch <- prometheus.MustNewConstMetric(databaseSizeDesc, prometheus.GaugeValue, float64(size), "db")
}
