package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/storetest"
)

// A database whose summaries were kept before the townships' and
// counties' sums existed gets them from its village rows when migration
// 23 runs, and its village rows their never-inspected households and
// coverage: the same rows the write path keeps.
func TestAreaCountsMigrationFillsFromVillages(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(ctx, path, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.KeepSummaries(ctx, survey.NewSummarizer(schema.V1()), clock.Now()); err != nil {
		t.Fatal(err)
	}
	storetest.PushAreaFixture(t, pushes(s))
	s.Close()
	const areas = `SELECT area, counts, digits, 0 FROM area_counts ORDER BY digits, area`
	const villages = `SELECT village, counts, never_inspected, coverage FROM village_counts ORDER BY village`
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wantAreas, wantVillages := storetest.ReadCountRows(t, db, areas), storetest.ReadCountRows(t, db, villages)
	if len(wantAreas) != 4 || len(wantVillages) != 3 || wantVillages[0].Extra == [2]int64{} {
		t.Fatalf("kept by the writes: areas %+v, villages %+v", wantAreas, wantVillages)
	}
	p, err := migrator(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 22); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`SELECT 1 FROM area_counts`); err == nil {
		t.Fatal("area_counts survived the migration down to 22")
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
