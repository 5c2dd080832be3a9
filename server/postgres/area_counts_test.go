package postgres

import (
	"context"
	"io/fs"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/storetest"
)

// A database whose summaries were kept before the townships' and
// counties' sums existed gets them from its village rows when migration 8
// runs, and its village rows their never-inspected households and
// coverage: the same rows the write path keeps.
func TestAreaCountsMigrationFillsFromVillages(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	if err := s.KeepSummaries(ctx, survey.NewSummarizer(schema.V1()), clock.Now()); err != nil {
		t.Fatal(err)
	}
	storetest.PushAreaFixture(t, pushes(s))
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	const areas = `SELECT area, counts, digits, 0 FROM area_counts ORDER BY digits, area`
	const villages = `SELECT village, counts, never_inspected, coverage FROM village_counts ORDER BY village`
	wantAreas, wantVillages := storetest.ReadCountRows(t, db, areas), storetest.ReadCountRows(t, db, villages)
	if len(wantAreas) != 4 || len(wantVillages) != 3 || wantVillages[0].Extra == [2]int64{} {
		t.Fatalf("kept by the writes: areas %+v, villages %+v", wantAreas, wantVillages)
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`SELECT 1 FROM area_counts`); err == nil {
		t.Fatal("area_counts survived the migration down to 7")
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if got := storetest.ReadCountRows(t, db, areas); !reflect.DeepEqual(got, wantAreas) {
		t.Errorf("areas after the migration:\n%+v\nkept by the writes:\n%+v", got, wantAreas)
	}
	if got := storetest.ReadCountRows(t, db, villages); !reflect.DeepEqual(got, wantVillages) {
		t.Errorf("villages after the migration:\n%+v\nkept by the writes:\n%+v", got, wantVillages)
	}
}
