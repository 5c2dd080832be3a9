package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/bench"
	"github.com/fieldsync/fieldsync/server/sqlite"
)

const benchUsage = `bench --households N --tablets T --sets S --changes C [--shared F] [--rate R] [--data DIR] [--store URL]`

func runBench(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "bench")
	cfg := bench.Config{Engine: sqliteEngine{}, Progress: env.Stderr}
	var jsonOut string
	fs.StringVar(&cfg.Data, "data", "", "data directory to run on (generated there when it has fewer households); default: a new temporary one")
	fs.IntVar(&cfg.Households, "households", 10000, "households in the database (fieldsync generate)")
	fs.IntVar(&cfg.Tablets, "tablets", 100, "concurrent simulated tablets")
	fs.IntVar(&cfg.Sets, "sets", 10, "change sets each tablet pushes")
	fs.IntVar(&cfg.Changes, "changes", 50, "changes per change set")
	fs.Float64Var(&cfg.Shared, "shared", 0.1, "share of changes that edit records another tablet edits too (merges, conflicts)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "offered load in changes/s, spread over the tablets (open loop); 0: each tablet pushes as fast as it can")
	fs.BoolVar(&cfg.OpenLoop, "open-loop", true, "after the closed loop, push as much again open loop at half its rate (latency under load)")
	fs.IntVar(&cfg.RawRows, "raw-rows", 100000, "rows of the raw SQLite loops")
	snaps := fs.String("snapshots", "ndjson,csv,geojson,xlsx", "snapshot formats to download (empty: none)")
	seed := fs.Uint64("seed", 1, "seed of the simulated edits")
	fs.StringVar(&jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "profile the server's CPU into this file (go tool pprof)")
	storeURL := fs.String("store", "", "run on PostgreSQL: the `URL` of the database to generate into (kept for later runs; each run works on a copy beside it, dropped at its end); empty: SQLite in --data")
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	if *storeURL != "" {
		if err := checkStore(*storeURL); err != nil {
			return err
		}
		cfg.Engine = newPostgresEngine(*storeURL)
	}
	cfg.Seed = *seed
	if *snaps != "" {
		cfg.Snapshots = strings.Split(*snaps, ",")
	}
	if cfg.Tablets < 1 || cfg.Sets < 1 || cfg.Changes < 1 || cfg.Changes > api.DefaultLimits.MaxChanges || cfg.Households < 1 ||
		cfg.Shared < 0 || cfg.Shared > 1 || cfg.Rate < 0 {
		return fmt.Errorf("bench: --tablets, --sets, --households ≥ 1; --changes 1–%d; --shared 0–1; --rate ≥ 0", api.DefaultLimits.MaxChanges)
	}
	if cfg.Data == "" {
		dir, err := os.MkdirTemp("", "fieldsync-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.Data, cfg.DataTemporary = dir, true
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Exe = exe
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	bench.Print(env.Stdout, cfg, res)
	if jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		return os.WriteFile(jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

// sqliteEngine is bench's engine: the SQLite store of a data directory.
type sqliteEngine struct{}

func (sqliteEngine) Open(ctx context.Context, dir string) (bench.Store, error) {
	path := filepath.Join(dir, sqlite.FileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, bench.ErrNoDatabase
	}
	return sqlite.Open(ctx, path, sqlite.Options{})
}

// Copy copies the database file; the generator closed the database,
// checkpointing its WAL, so the file is whole.
func (sqliteEngine) Copy(src, dst string) error {
	return copyFile(filepath.Join(src, sqlite.FileName), filepath.Join(dst, sqlite.FileName), 0o600)
}

func (sqliteEngine) RawUpsert(path string, rows int, durable bool) (float64, error) {
	sync := "NORMAL"
	if durable {
		sync = "FULL"
	}
	return sqlite.RawUpsert(path, rows, sync)
}

func (sqliteEngine) RawRead(path string) (float64, error) { return sqlite.RawRead(path) }
