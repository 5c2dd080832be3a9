package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/attachments"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/console"
	"github.com/fieldsync/fieldsync/server/sqlite"
)

// DefaultBusyTimeout is how long a write waits for a lock held by another
// process before it is answered 503.
const DefaultBusyTimeout = 10 * time.Second

func runServe(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "serve")
	fs.String(configFlag, "", "a TOML `FILE` of settings (keys: these flags' names)")
	addr := fs.String("addr", "127.0.0.1:8080", "`HOST:PORT` to listen on (:8080 for every interface)")
	data := fs.String("data", "data", "data directory `DIR`: the database fieldsync.db, the signing keys in keys/, the photos in attachments/")
	storeURL := fs.String("store", "", storeUsage)
	photosDir := fs.String("photos", "", "photo store `DIR`; default attachments/ in --data. Servers on one PostgreSQL (--store) share one: an NFS mount, or an object store mounted as a directory")
	grace := fs.Duration("shutdown-grace", 30*time.Second, "how long to let requests in flight finish on SIGTERM")
	logFormat := fs.String("log-format", LogFormatAuto, "log `FORMAT`: json (one object per line), text, or auto (text on a terminal, json otherwise)")
	logLevel := fs.String("log-level", "info", "least severe `LEVEL` logged: debug, info, warn or error")
	metricsAddr := fs.String("metrics-addr", "", "serve /metrics on this `HOST:PORT` of its own instead of --addr (e.g. 127.0.0.1:9464)")
	maxBody := fs.Int64("max-body-bytes", api.DefaultLimits.MaxBodyBytes, "largest request body accepted (bytes)")
	maxChanges := fs.Int("max-changes", api.DefaultLimits.MaxChanges, "most changes accepted in one change set")
	maxPull := fs.Int("max-pull", api.DefaultLimits.MaxPull, "largest pull page (records)")
	pushRate := fs.Float64("push-rate", 10, "pushes per second allowed per device, sustained")
	pushBurst := fs.Int("push-burst", api.DefaultRateLimits.PushPerDevice.Burst, "pushes allowed per device at once")
	loginHashes := fs.Int("login-hashes", 0, "password checks (argon2id, 19 MiB each) running at once for the whole process; 0: half the cores, at least 1")
	readHeaderTimeout := fs.Duration("read-header-timeout", api.DefaultTimeouts.ReadHeader, "how long a client may take to send a request's headers")
	readTimeout := fs.Duration("read-timeout", api.DefaultTimeouts.Read, "how long a client may take to send a whole request, body included")
	writeTimeout := fs.Duration("write-timeout", api.DefaultTimeouts.Write, "how long writing a response may take (a snapshot or a streamed report renews it while the client reads)")
	idleTimeout := fs.Duration("idle-timeout", api.DefaultTimeouts.Idle, "how long a kept-alive connection may wait for its next request")
	snapshotConcurrency := fs.Int("snapshot-concurrency", api.DefaultSnapshotConcurrency, "how many snapshots may stream at once (503 beyond)")
	snapshotsPerUser := fs.Int("snapshot-per-user", api.DefaultSnapshotsPerUser, "how many snapshots one user may stream at once (429 beyond)")
	snapshotMinRate := fs.Int64("snapshot-min-rate", api.DefaultSnapshotMinRate, "least average rate, in bytes per second, a snapshot's client must read at, after --snapshot-rate-grace (the connection is cut below it)")
	snapshotRateGrace := fs.Duration("snapshot-rate-grace", api.DefaultSnapshotRateGrace, "time a snapshot's client has on top of its bytes at --snapshot-min-rate")
	busyTimeout := fs.Duration("busy-timeout", DefaultBusyTimeout, "how long a write waits for a lock held by another process (a backup, the sqlite3 shell) before a 503")
	walCheckpoint := fs.Int("wal-autocheckpoint", sqlite.DefaultWALAutocheckpoint, "WAL pages (4 KiB) at which a commit copies the WAL into the database itself, and waits; below it a background checkpointer does so shortly after writes")
	maxPhoto := fs.Int64("max-photo-bytes", attachments.DefaultMaxBytes, "largest photo accepted (bytes; 413 beyond)")
	orphanAge := fs.Duration("orphan-upload-age", attachments.DefaultOrphanAge, "how long an unfinished photo upload is kept untouched before it is removed")
	userPartial := fs.Int64("user-partial-bytes", attachments.DefaultUserPartialBytes, "most bytes one user's unfinished photo uploads may hold (429 beyond; at least --max-photo-bytes)")
	userHourly := fs.Int64("user-photo-bytes-per-hour", attachments.DefaultUserHourlyBytes, "most photo bytes one user may send per hour (429 with Retry-After beyond; at least --max-photo-bytes)")
	minFree := fs.Int64("min-free-bytes", attachments.DefaultMinFreeBytes, "free disk space kept for the database: photo bytes that would leave less are refused (507) while pushes go on; 0 turns the floor off")
	unrefAge := fs.Duration("unreferenced-photo-age", attachments.DefaultUnreferencedPhotoAge, "how long a photo that no record references (since its upload, or since a version dropped it) is kept before it is removed")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) of the whole run to this `FILE`, at shutdown")
	reinspectAfter := api.DefaultReinspectAfter
	formsDir := fs.String("forms", "", "form set `DIR` (version directories 1/, 2/, … with version.json and form files; fieldsync forms check validates one); default the built-in set")
	divisionsFile := fs.String("divisions", "", "division register `FILE` (CSV code,name) naming villages in labelled CSV and XLSX snapshots; fixtures/divisions-demo.csv for the demo")
	consoleIdle := fs.Duration("console-idle", console.DefaultIdle, "how long a web console session lasts without a request")
	mapTiles := fs.String("map-tiles", "", "tile `URL` template ({z}/{x}/{y}) drawn under the console's map; none by default (points only)")
	mapTilesGCJ02 := fs.Bool("map-tiles-gcj02", false, "the --map-tiles provider draws in GCJ-02 (Chinese providers): shift the WGS-84 points onto it")
	fs.Var(reinspectAfterFlag{&reinspectAfter}, "reinspect-after", "how old a housing appraisal may get before its household is due for re-inspection (`DAYS` such as 365d, or a duration)")
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	_, configFile, err := applySettings(fs, env.LookupEnv)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if *maxBody < 1024 || *maxChanges < 1 || *maxPull < 1 || *pushRate <= 0 || *pushBurst < 1 {
		return fmt.Errorf("invalid limits: --max-body-bytes must be ≥ 1024; --max-changes, --max-pull, --push-burst ≥ 1; --push-rate > 0")
	}
	timeouts := api.Timeouts{ReadHeader: *readHeaderTimeout, Read: *readTimeout, Write: *writeTimeout, Idle: *idleTimeout}
	checks := []error{checkServeLimits(timeouts, *snapshotConcurrency, *grace), checkListenAddr("addr", *addr),
		checkSnapshotPace(*snapshotsPerUser, *snapshotMinRate, *snapshotRateGrace), checkStore(*storeURL)}
	if *metricsAddr != "" {
		checks = append(checks, checkListenAddr("metrics-addr", *metricsAddr))
	}
	if *maxPhoto < 1024 || *orphanAge < time.Minute {
		checks = append(checks, fmt.Errorf("invalid photo limits: --max-photo-bytes must be ≥ 1024, --orphan-upload-age ≥ 1m"))
	}
	if *loginHashes < 0 {
		checks = append(checks, fmt.Errorf("--login-hashes must be 0 (half the cores) or more, not %d", *loginHashes))
	}
	if *userPartial < *maxPhoto || *userHourly < *maxPhoto || *minFree < 0 || *unrefAge < time.Hour {
		checks = append(checks, fmt.Errorf("invalid photo quotas: --user-partial-bytes and --user-photo-bytes-per-hour must be ≥ --max-photo-bytes (%d), --min-free-bytes ≥ 0, --unreferenced-photo-age ≥ 1h", *maxPhoto))
	}
	if *busyTimeout < 10*time.Millisecond {
		checks = append(checks, fmt.Errorf("--busy-timeout must be at least 10ms, not %s", *busyTimeout))
	}
	if *consoleIdle < time.Minute {
		checks = append(checks, fmt.Errorf("--console-idle must be at least 1m, not %s", *consoleIdle))
	}
	if *mapTiles != "" && (!strings.HasPrefix(*mapTiles, "https://") && !strings.HasPrefix(*mapTiles, "http://") || !strings.Contains(*mapTiles, "{z}")) {
		checks = append(checks, fmt.Errorf("--map-tiles must be an http(s) URL template with {z}, {x} and {y}, not %q", *mapTiles))
	}
	if *walCheckpoint < 100 {
		checks = append(checks, fmt.Errorf("--wal-autocheckpoint must be at least 100 pages, not %d", *walCheckpoint))
	}
	log, err := NewLogger(env.Stderr, *logFormat, *logLevel)
	if err != nil {
		checks = append(checks, fmt.Errorf("--log-format or --log-level: %w", err))
	}
	forms, err := loadForms(*formsDir)
	if err != nil {
		checks = append(checks, err)
	}
	if err := errors.Join(checks...); err != nil {
		return err
	}

	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	// One server per data directory: the durability promise rests on a
	// single writer.
	release, err := lockData(*data, "serve")
	if err != nil {
		return err
	}
	defer release()
	metrics := api.NewMetrics(Version)
	store, storeAt, err := openServeStore(ctx, *storeURL, *data,
		sqlite.Options{BusyTimeout: *busyTimeout, Observer: metrics, WALAutocheckpoint: *walCheckpoint}, metrics, log.Warn)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the database", "err", err)
		}
	}()
	recordsIn, err := store.RecordsSchemaVersion(ctx)
	if err != nil {
		return err
	}
	opened := time.Now()
	if forms, err = openCatalog(ctx, store, forms); err != nil {
		return err
	}
	stopSummaries, err := keepSummaries(ctx, store, forms.Latest(), time.Now, summaryRejudgeEvery, log)
	if err != nil {
		return err
	}
	defer stopSummaries()
	stopVerdicts, err := keepVerdicts(ctx, store, forms.Latest(), log)
	if err != nil {
		return err
	}
	defer stopVerdicts()
	defer refreshRegistrySums(ctx, store, forms.Latest(), log)()
	if latest := forms.Latest().Version; latest != recordsIn {
		log.Info("stored records migrated", "from_schema_version", recordsIn, "to_schema_version", latest,
			"took", time.Since(opened).Round(time.Millisecond).String())
	}
	limits := api.DefaultLimits
	limits.MaxBodyBytes, limits.MaxChanges, limits.MaxPull = *maxBody, *maxChanges, *maxPull
	if limits.DefaultPull > limits.MaxPull {
		limits.DefaultPull = limits.MaxPull
	}
	keys, err := openKeyring(ctx, store, *data)
	if err != nil {
		return err
	}
	floor := *minFree
	if floor == 0 {
		floor = -1 // no floor
	}
	if *photosDir == "" {
		*photosDir = filepath.Join(*data, AttachmentsDir)
	}
	photos, err := attachments.Open(*photosDir, attachments.Options{MaxBytes: *maxPhoto,
		UserPartialBytes: *userPartial, UserHourlyBytes: *userHourly, MinFreeBytes: floor})
	if err != nil {
		return err
	}
	go photos.RunUnreferencedSweeper(ctx, store, *unrefAge, sweepInterval(*unrefAge), log)
	go photos.RunSweeper(ctx, *orphanAge, sweepInterval(*orphanAge), func(removed int, bytes int64, err error) {
		if err != nil {
			log.Warn("sweeping unfinished photo uploads", "err", err)
			return
		}
		log.Info("removed unfinished photo uploads", "uploads", removed, "bytes", bytes, "older_than", orphanAge.String())
	})
	var divisions schema.Divisions
	if *divisionsFile != "" {
		if divisions, err = schema.LoadDivisions(*divisionsFile); err != nil {
			return err
		}
	}
	rates := api.DefaultRateLimits
	rates.PushPerDevice = api.Rate{Every: time.Duration(float64(time.Second) / *pushRate), Burst: *pushBurst}
	srv := api.New(api.Config{Store: store, Accounts: store, Keys: keys, Logger: log, Metrics: metrics, MetricsElsewhere: *metricsAddr != "",
		Limits: limits, Rates: &rates, ReinspectAfter: reinspectAfter, Timeouts: timeouts, SnapshotConcurrency: *snapshotConcurrency,
		SnapshotsPerUser: *snapshotsPerUser, SnapshotMinRate: *snapshotMinRate, SnapshotRateGrace: *snapshotRateGrace,
		Attachments: photos, HashGate: auth.NewHashGate(*loginHashes, 0, 0),
		Divisions: divisions, Version: Version, Catalog: forms,
		ConsoleIdle: *consoleIdle, MapTiles: *mapTiles, MapTilesGCJ02: *mapTilesGCJ02})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return listenError("addr", *addr, err)
	}
	metricsAt := ln.Addr().String()
	if *metricsAddr != "" {
		mln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			ln.Close()
			return listenError("metrics-addr", *metricsAddr, err)
		}
		metricsAt = mln.Addr().String()
		stop := serveMetrics(mln, metrics)
		defer stop()
	}
	attrs := []any{"addr", ln.Addr().String(), "metrics", "http://" + metricsAt + "/metrics", "data", storeAt,
		"version", Version, "signing_key", keys.Current()}
	if configFile != "" {
		attrs = append(attrs, "config", configFile)
	}
	log.Info("fieldsync serving", attrs...)
	if env.Listening != nil {
		env.Listening(ln.Addr().String())
	}
	err = srv.Serve(ctx, ln, *grace)
	log.Info("fieldsync stopped")
	return err
}

// listenError words a failure to listen on --flag addr; an address in use
// gets the way out (another port, with make run's ADDR=).
func listenError(flagName, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("--%s %s: the address is already in use (another fieldsync or program listens there): "+
			"give another, e.g. --%s 127.0.0.1:8081 (make run ADDR=127.0.0.1:8081 DATA=data2)", flagName, addr, flagName)
	}
	return fmt.Errorf("--%s %s: %w", flagName, addr, err)
}

// AttachmentsDir is the photo store's directory inside a data directory.
const AttachmentsDir = "attachments"

// sweepInterval is how often unfinished uploads (or unreferenced photos)
// older than age are looked for: a quarter of the age or an hour,
// whichever is shorter.
func sweepInterval(age time.Duration) time.Duration {
	return min(max(age/4, time.Second), time.Hour)
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// serveMetrics answers GET /metrics (and nothing else) on a listener of
// its own until the returned stop is called.
func serveMetrics(ln net.Listener, m *api.Metrics) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}

// checkServeLimits refuses timeouts and a snapshot concurrency that would
// make the server unusable, naming the flag at fault.
func checkServeLimits(t api.Timeouts, snapshots int, grace time.Duration) error {
	var errs []error
	for _, f := range []struct {
		flag string
		d    time.Duration
	}{{"--read-header-timeout", t.ReadHeader}, {"--read-timeout", t.Read}, {"--write-timeout", t.Write}, {"--idle-timeout", t.Idle}} {
		if f.d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration such as 30s or 2m, not %s", f.flag, f.d))
		}
	}
	if t.ReadHeader > t.Read && t.Read > 0 {
		errs = append(errs, fmt.Errorf("--read-header-timeout (%s) must not be longer than --read-timeout (%s)", t.ReadHeader, t.Read))
	}
	if snapshots < 1 {
		errs = append(errs, fmt.Errorf("--snapshot-concurrency must be at least 1, not %d", snapshots))
	}
	if grace < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-grace must not be negative, not %s", grace))
	}
	return errors.Join(errs...)
}

// checkSnapshotPace refuses snapshot bounds serve cannot work with, naming
// the flag at fault.
func checkSnapshotPace(perUser int, minRate int64, grace time.Duration) error {
	var errs []error
	if perUser < 1 {
		errs = append(errs, fmt.Errorf("--snapshot-per-user must be at least 1, not %d", perUser))
	}
	if minRate < 1 {
		errs = append(errs, fmt.Errorf("--snapshot-min-rate must be at least 1 byte per second, not %d", minRate))
	}
	if grace <= 0 {
		errs = append(errs, fmt.Errorf("--snapshot-rate-grace must be a positive duration such as 10s, not %s", grace))
	}
	return errors.Join(errs...)
}
