package cli

import (
	"context"
	"fmt"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/syncproto"
)

// runGenerate is fieldsync generate: a large deterministic data set
// (fixtures.Generate) loaded through the push path, for benchmarks.
func runGenerate(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "generate")
	data := fs.String("data", "data", "data directory")
	storeURL := fs.String("store", "", storeUsage)
	households := fs.Int("households", 10000, "households to generate (with their inspections)")
	seed := fs.Int64("seed", 1, "generator seed: the same seed and size give the same data")
	batch := fs.Int("batch", 1000, "changes per change set")
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	if *households < 1 || *batch < 1 {
		return fmt.Errorf("--households and --batch must be positive")
	}
	store, done, err := openLocked(ctx, env, *storeURL, *data, "generate")
	if err != nil {
		return err
	}
	defer done()
	// Progress counts households: their number is known beforehand, the
	// number of inspections is not.
	progress := newProgress(env.Stderr, "generate", progressHouseholds)
	var queued int64 // households handed to the loader (each flush pushes all of them)
	push, err := fixturesPush(ctx, store)
	if err != nil {
		return err
	}
	l := &fixtures.Loader{Service: push, Name: fmt.Sprintf("generated-s%d-n%d", *seed, *households), BatchSize: *batch, Progress: env.Stderr}
	l.Report = func(int) { progress.set(queued, int64(*households)) }
	return loadThroughPush(ctx, env, l, progress, func(add func(syncproto.Change) error) error {
		return fixtures.Generate(fixtures.GenConfig{Seed: *seed, Households: *households}, func(ch syncproto.Change) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if ch.Entity == "household" {
				queued++
			}
			return add(ch)
		})
	})
}
