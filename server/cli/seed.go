package cli

import (
	"context"
	"fmt"

	"github.com/fieldsync/fieldsync/fixtures"
)

// runSeed is fieldsync seed: the demo regions, households and inspections
// (fixtures.Demo) loaded through the push path, and the demo accounts.
func runSeed(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "seed")
	data := fs.String("data", "data", "data directory")
	storeURL := fs.String("store", "", storeUsage)
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	store, done, err := openLocked(ctx, env, *storeURL, *data, "seed")
	if err != nil {
		return err
	}
	defer done()
	stats, err := fixtures.Stats()
	if err != nil {
		return err
	}
	total := int64(stats.Households + stats.Persons + stats.HousingInspections + stats.WaterInspections + stats.FollowupVisits)
	progress := newProgress(env.Stderr, "seed", progressChanges)
	push, err := fixturesPush(ctx, store)
	if err != nil {
		return err
	}
	l := &fixtures.Loader{Service: push, Name: "demo", BatchSize: 500, Progress: env.Stderr,
		Report: func(n int) { progress.set(int64(n), total) }}
	if err := loadThroughPush(ctx, env, l, progress, fixtures.Demo); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "demo data: %d households of %d members, %d housing and %d water inspections, %d households never inspected, %d follow-up visits\n",
		stats.Households, stats.Persons, stats.HousingInspections, stats.WaterInspections, stats.NeverInspected, stats.FollowupVisits)
	return seedDemoAccounts(ctx, store, env.Stdout)
}
