package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// MustOpen opens a store on a new database file in a temporary directory
// and closes it when the test ends.
func MustOpen(tb testing.TB, clock *storetest.Clock) *Store {
	tb.Helper()
	s, err := Open(context.Background(), filepath.Join(tb.TempDir(), FileName), Options{Now: clock.Now})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// pushes is the push service over s, on the v1 schema and the store's
// clock, as the server builds it.
func pushes(s *Store) *syncproto.PushService {
	return syncproto.NewPushService(s, syncproto.PushOptions{Now: s.now})
}

// reports is the report service over s, on the v1 schema, as the server
// builds it.
func reports(s *Store) *syncproto.ReportService {
	return syncproto.NewReportService(s, syncproto.ReportOptions{})
}

// supervision is the supervision service over s, on the v1 schema and the
// store's clock, as the server builds it.
func supervision(s *Store) *syncproto.SupervisionService {
	return syncproto.NewSupervisionService(s, syncproto.SupervisionOptions{Now: s.now})
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t testing.TB, clock *storetest.Clock) syncproto.Store { return MustOpen(t, clock) })
}

func TestOpenUsesWALAndFullSync(t *testing.T) {
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	var mode string
	var sync int
	if err := s.reader.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("reader journal_mode %q, %v", mode, err)
	}
	if err := s.writer.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("writer synchronous %d (want 2 = FULL), %v", sync, err)
	}
	if _, err := s.reader.Exec("DELETE FROM records"); err == nil {
		t.Fatal("the read pool accepted a write")
	}
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	clock := storetest.NewClock(storetest.T0)
	s, err := Open(context.Background(), path, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	dev := storetest.NewDevice("li.na")
	hh := uuid.NewString()
	dev.Push(t, pushes(s), storetest.Household(hh, storetest.SouthVillage, storetest.T0))
	s.Close()
	s, err = Open(context.Background(), path, Options{Now: clock.Now})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	storetest.MustRecord(t, s, hh)
}

// TestPushIsAtomic injects a failure after every write of a change set and
// before its commit: none of it may remain, not even the receipt or the
// device sequence.
func TestPushIsAtomic(t *testing.T) {
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	dev := storetest.NewDevice("li.na")
	hh, ins := uuid.NewString(), uuid.NewString()
	injected := errors.New("injected failure")
	s.beforeCommit = func(context.Context, *sql.Tx) error { return injected }
	cs := dev.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0),
		storetest.HousingInspection(ins, hh, "D", storetest.T0),
		storetest.Upsert("water_inspection", uuid.NewString(), 0, storetest.T0, map[string]any{"household_id": uuid.NewString()}))
	if _, err := pushes(s).Push(context.Background(), dev.Actor, cs); !errors.Is(err, injected) {
		t.Fatalf("push error %v, want the injected failure", err)
	}
	for _, table := range []string{"records", "changes", "receipts", "devices", "conflicts", "quarantine"} {
		var n int
		if err := s.reader.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s holds %d rows after a failed push (%v)", table, n, err)
		}
	}
	// The same change set goes through once the failure is gone, and is
	// not a replay.
	s.beforeCommit = nil
	resp, err := pushes(s).Push(context.Background(), dev.Actor, cs)
	if err != nil || resp.Replayed || resp.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("retry: %+v, %v", resp, err)
	}
}

// TestPushFailsCleanlyOnClosedConnection closes the writer's database
// under a push: the error is reported and nothing is half-written.
func TestPushFailsCleanlyOnClosedConnection(t *testing.T) {
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	dev := storetest.NewDevice("li.na")
	s.beforeCommit = func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "SELECT * FROM no_such_table")
		return err
	}
	hh := uuid.NewString()
	if _, err := pushes(s).Push(context.Background(), dev.Actor, dev.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0))); err == nil {
		t.Fatal("push succeeded through a failing statement")
	}
	if _, err := s.Record(context.Background(), hh); syncproto.ErrorCode(err) != syncproto.ENotFound {
		t.Fatalf("record after failed push: %v", err)
	}
}

// BenchmarkPush measures change sets of 100 new inspections (with their
// households) through the whole push transaction, fsync included.
func BenchmarkPush(b *testing.B) {
	s := MustOpen(b, storetest.NewClock(storetest.T0))
	p := pushes(s)
	dev := storetest.NewDevice("bench")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var changes []syncproto.Change
		for j := 0; j < 50; j++ {
			hh := uuid.NewString()
			changes = append(changes, storetest.Household(hh, storetest.SouthVillage, storetest.T0),
				storetest.HousingInspection(uuid.NewString(), hh, "C", storetest.T0))
		}
		if _, err := p.Push(context.Background(), dev.Actor, dev.Changeset(changes...)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkPullPage measures pull pages of 500 records from 20,000.
func BenchmarkPullPage(b *testing.B) {
	s := MustOpen(b, storetest.NewClock(storetest.T0))
	dev := storetest.NewDevice("bench")
	for i := 0; i < 20; i++ {
		var changes []syncproto.Change
		for j := 0; j < 1000; j++ {
			changes = append(changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
		}
		if _, err := pushes(s).Push(context.Background(), dev.Actor, dev.Changeset(changes...)); err != nil {
			b.Fatal(err)
		}
	}
	worker := syncproto.Actor{UserID: "w", Scope: []string{"500240107"}}
	b.ResetTimer()
	var cur syncproto.Cursor
	for i := 0; i < b.N; i++ {
		page, err := s.Pull(context.Background(), worker, cur, 500)
		if err != nil {
			b.Fatal(err)
		}
		cur = page.Cursor
		if !page.HasMore {
			cur = syncproto.Cursor{}
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
}
