package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A database made before the checksum existed gets its per-village sums
// from the records when migration 6 runs.
func TestChecksumMigrationFillsSumsFromRecords(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(ctx, path, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	d := storetest.NewDevice("admin")
	for i := 0; i < 20; i++ {
		hh := uuid.NewString()
		village := storetest.SouthVillage
		if i%3 == 0 {
			village = storetest.NorthVillage
		}
		d.Push(t, pushes(s), storetest.Household(hh, village, storetest.T0), storetest.WaterInspection(uuid.NewString(), hh, storetest.T0))
		d.Push(t, pushes(s), storetest.Upsert("household", hh, 1, storetest.T0.Add(time.Minute), map[string]any{"members": 2}))
	}
	actors := []syncproto.Actor{storetest.All, {Scope: []string{"500240"}}, {Scope: []string{storetest.NorthVillage}}}
	var want []syncproto.Checksum
	for _, a := range actors {
		c, _, err := s.Checksum(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, c)
	}
	s.Close()
	// Back to migration 5, through each later migration's Down: no sums,
	// and the migrations run again in order.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := migrator(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`SELECT 1 FROM scope_sums`); err == nil {
		t.Fatal("scope_sums survived the migrations down to 5")
	}
	db.Close()
	s, err = Open(ctx, path, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, a := range actors {
		got, _, err := s.Checksum(ctx, a)
		if err != nil || got != want[i] || got.Count == 0 {
			t.Fatalf("scope %v after the migration: %v %d/%s, want %d/%s", a.Scope, err, got.Count, got, want[i].Count, want[i])
		}
	}
}

// BenchmarkChecksum reads the checksum of a county scope: its cost is one
// row per village, whatever the number of records.
func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{1_000, 20_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			s := MustOpen(b, storetest.NewClock(storetest.T0))
			d := storetest.NewDevice("admin")
			var batch []syncproto.Change
			for i := 0; i < n; i++ {
				batch = append(batch, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
				if len(batch) == 500 {
					d.Push(b, pushes(s), batch...)
					batch = nil
				}
			}
			actor := syncproto.Actor{Scope: []string{"500240"}}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := s.Checksum(context.Background(), actor); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
