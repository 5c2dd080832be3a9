package server

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// seedNamespace derives the fixed ids of the loader's devices and change
// sets, so that loading the same data again replays instead of duplicating.
var seedNamespace = uuid.MustParse("6f1d2a4e-0b7c-5e3a-9c1d-5eed0f1e1d00")

// Loader pushes a stream of changes into a store as change sets of a fixed
// size, through the same merge path as tablets: everything it loads has a
// history, a version and a cursor. Its change-set ids are derived from name
// and the batch number, so loading the same stream twice replays.
type Loader struct {
	Service   *syncproto.PushService // the push the changes go through
	Name      string                 // names the device and the change sets
	BatchSize int
	Progress  io.Writer // the first rejected changes are reported here; nil for none
	// Report, when set, is called after each change set with the number
	// of changes loaded so far.
	Report func(loaded int)

	actor   syncproto.Actor
	batch   []syncproto.Change
	seq     int64
	loaded  int
	started time.Time
	counts  map[string]int
}

// Add queues one change and pushes a change set when the batch is full.
func (l *Loader) Add(ctx context.Context, ch syncproto.Change) error {
	if l.actor.DeviceID == "" {
		l.actor = syncproto.Actor{UserID: "loader:" + l.Name, Role: syncproto.RoleAdmin, AllRegions: true,
			DeviceID: uuid.NewSHA1(seedNamespace, []byte("device:"+l.Name)).String()}
		l.started = time.Now()
		l.counts = map[string]int{}
		if l.BatchSize <= 0 {
			l.BatchSize = 500
		}
	}
	l.batch = append(l.batch, ch)
	if len(l.batch) >= l.BatchSize {
		return l.Flush(ctx)
	}
	return nil
}

// Flush pushes the queued changes as one change set.
func (l *Loader) Flush(ctx context.Context) error {
	if len(l.batch) == 0 {
		return nil
	}
	l.seq++
	cs := syncproto.Changeset{
		ChangesetID:   uuid.NewSHA1(seedNamespace, []byte(fmt.Sprintf("changeset:%s:%d", l.Name, l.seq))).String(),
		DeviceID:      l.actor.DeviceID,
		DeviceSeq:     l.seq,
		SchemaVersion: schema.Version,
		Changes:       l.batch,
	}
	resp, err := l.Service.Push(ctx, l.actor, cs)
	if err != nil {
		return fmt.Errorf("load batch %d: %w", l.seq, err)
	}
	if resp.Replayed {
		// Loaded before, under the same change-set id: nothing applied now.
		l.counts["replayed"] += len(resp.Results)
	} else {
		for _, r := range resp.Results {
			l.counts[r.Status]++
			if r.Status == syncproto.StatusRejected && l.counts[r.Status] <= 3 && l.Progress != nil {
				fmt.Fprintf(l.Progress, "rejected %s: %v\n", r.ID, r.Errors)
			}
		}
	}
	l.loaded += len(l.batch)
	l.batch = l.batch[:0]
	if l.Report != nil {
		l.Report(l.loaded)
	}
	return nil
}

// Summary describes what was loaded.
func (l *Loader) Summary() string {
	return fmt.Sprintf("%s: %d changes in %d change sets (applied %d, merged %d, conflict %d, rejected %d; already loaded %d) in %s",
		l.Name, l.loaded, l.seq, l.counts[syncproto.StatusApplied], l.counts[syncproto.StatusMerged],
		l.counts[syncproto.StatusConflict], l.counts[syncproto.StatusRejected], l.counts["replayed"],
		time.Since(l.started).Round(time.Millisecond))
}

func runSeed(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "seed")
	data := fs.String("data", "data", "data directory")
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	release, err := lockData(*data, "seed")
	if err != nil {
		return err
	}
	defer release()
	store, err := openData(ctx, *data, env.Stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	stats, err := fixtures.Stats()
	if err != nil {
		return err
	}
	total := int64(stats.Households + stats.HousingInspections + stats.WaterInspections)
	progress := newProgress(env.Stderr, "seed", progressChanges)
	l := &Loader{Service: syncproto.NewPushService(store, syncproto.PushOptions{}), Name: "demo", BatchSize: 500, Progress: env.Stderr,
		Report: func(n int) { progress.set(int64(n), total) }}
	err = fixtures.Demo(func(ch syncproto.Change) error { return l.Add(ctx, ch) })
	if err == nil {
		err = l.Flush(ctx)
	}
	progress.finish()
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, l.Summary())
	fmt.Fprintf(env.Stdout, "demo data: %d households, %d housing and %d water inspections, %d households never inspected\n",
		stats.Households, stats.HousingInspections, stats.WaterInspections, stats.NeverInspected)
	return seedDemoAccounts(ctx, store, env.Stdout)
}

func runGenerate(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "generate")
	data := fs.String("data", "data", "data directory")
	households := fs.Int("households", 10000, "households to generate (with their inspections)")
	seed := fs.Int64("seed", 1, "generator seed: the same seed and size give the same data")
	batch := fs.Int("batch", 1000, "changes per change set")
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	if *households < 1 || *batch < 1 {
		return fmt.Errorf("--households and --batch must be positive")
	}
	release, err := lockData(*data, "generate")
	if err != nil {
		return err
	}
	defer release()
	store, err := openData(ctx, *data, env.Stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	// Progress counts households: their number is known beforehand, the
	// number of inspections is not.
	progress := newProgress(env.Stderr, "generate", progressHouseholds)
	var queued int64 // households handed to the loader (each flush pushes all of them)
	l := &Loader{Service: syncproto.NewPushService(store, syncproto.PushOptions{}), Name: fmt.Sprintf("generated-s%d-n%d", *seed, *households), BatchSize: *batch, Progress: env.Stderr}
	l.Report = func(int) { progress.set(queued, int64(*households)) }
	err = fixtures.Generate(fixtures.GenConfig{Seed: *seed, Households: *households}, func(ch syncproto.Change) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if ch.Entity == "household" {
			queued++
		}
		return l.Add(ctx, ch)
	})
	if err == nil {
		err = l.Flush(ctx)
	}
	progress.finish()
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, l.Summary())
	return nil
}
