package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// noPageLimit is SQLite's largest max_page_count: room again.
const noPageLimit = 1<<32 - 2

// households is a change set of n new households, each with its own head
// (no suspected duplicates): with n of 50, far more than a page's free
// space.
func households(dev *storetest.Device, n int) syncproto.Changeset {
	changes := make([]syncproto.Change, n)
	for i := range changes {
		changes[i] = storetest.Upsert("household", uuid.NewString(), 0, storetest.T0, map[string]any{
			"village": storetest.SouthVillage, "head_name": fmt.Sprintf("户主 %d", i), "members": 4})
	}
	return dev.Changeset(changes...)
}

// rowCounts counts the rows of every table a write touches.
func rowCounts(tb testing.TB, s *Store) map[string]int {
	tb.Helper()
	out := map[string]int{}
	for _, table := range []string{"records", "changes", "receipts", "devices", "conflicts", "quarantine", "settings"} {
		var n int
		if err := s.reader.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
			tb.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// mustBeStorageFull checks that err is the domain's "storage full": 503
// material for the client, with the SQLite error kept for the log.
func mustBeStorageFull(tb testing.TB, err error) {
	tb.Helper()
	var se *syncproto.Error
	if !errors.As(err, &se) || se.Code != syncproto.EUnavailable || se.RetryIn != retryFullAfter*time.Second || se.Title != "Storage full" {
		tb.Fatalf("error %v, want EUnavailable \"Storage full\" with RetryIn %ds", err, retryFullAfter)
	}
	var le *msqlite.Error
	if !errors.As(err, &le) || le.Code()&0xff != sqlite3.SQLITE_FULL {
		tb.Fatalf("error %v does not keep SQLite's SQLITE_FULL for the log", err)
	}
}

// TestFullDiskRefusesWritesWhole makes the database unable to grow
// (max_page_count at its current size): a push and a supervisor's write
// fail as EUnavailable with nothing written, reads go on, and once there is
// room the same change set applies as new.
func TestFullDiskRefusesWritesWhole(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	dev := storetest.NewDevice("li.na")
	first := households(dev, 3)
	if _, err := pushes(s).Push(ctx, dev.Actor, first); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetMaxPageCountForTest(ctx, 0); err != nil {
		t.Fatal(err)
	}
	before := rowCounts(t, s)

	cs := households(dev, 50)
	_, err := pushes(s).Push(ctx, dev.Actor, cs)
	mustBeStorageFull(t, err)
	// Conflict resolutions and duplicate merges write through write().
	err = s.write(ctx, "test", func(ctx context.Context, tx *superviseTx) error {
		_, err := tx.tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('filler', zeroblob(1000000))`)
		return err
	})
	mustBeStorageFull(t, err)
	if after := rowCounts(t, s); !maps.Equal(before, after) {
		t.Fatalf("a refused write left rows: before %v, after %v", before, after)
	}

	page, err := s.Pull(ctx, syncproto.Actor{UserID: "w", Scope: []string{"500240"}}, syncproto.Cursor{}, 100)
	if err != nil || len(page.Records) != len(first.Changes) {
		t.Fatalf("pull on a full disk: %d records, %v", len(page.Records), err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping on a full disk: %v", err)
	}

	if _, err := s.SetMaxPageCountForTest(ctx, noPageLimit); err != nil {
		t.Fatal(err)
	}
	resp, err := pushes(s).Push(ctx, dev.Actor, cs)
	if err != nil || resp.Replayed || len(resp.Results) != len(cs.Changes) || resp.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("push once there is room: %v (replayed %v)", err, resp.Replayed)
	}
	var check string
	if err := s.reader.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check %q, %v", check, err)
	}
}

// TestWriteErrorKeepsOtherErrors: only the server's storage conditions
// become EUnavailable; domain errors and faults pass unchanged.
func TestWriteErrorKeepsOtherErrors(t *testing.T) {
	conflict := syncproto.Errorf(syncproto.EConflict, "changeset_id reused")
	fault := errors.New("no such table: records")
	for _, err := range []error{nil, conflict, fault} {
		if got := writeError(err); got != err {
			t.Errorf("writeError(%v) = %v, want it unchanged", err, got)
		}
	}
	if got := writeError(errors.New("commit: database or disk is full")); syncproto.ErrorCode(got) != syncproto.EUnavailable {
		t.Errorf("a full disk known only by its message: %v", got)
	}
}

// TestCloseCheckpointsTheWAL: Close leaves the WAL empty even while another
// connection (another process's, say) keeps the file open, when SQLite's
// own checkpoint at the last close would not run.
func TestCloseCheckpointsTheWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var n int
	if err := other.QueryRow("SELECT count(*) FROM records").Scan(&n); err != nil {
		t.Fatal(err)
	}
	dev := storetest.NewDevice("li.na")
	dev.Push(t, pushes(s), households(dev, 20).Changes...)
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("no WAL before Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() != 0 {
		t.Fatalf("WAL after Close: %v, %d bytes", err, fi.Size())
	}
	if err := other.QueryRow("SELECT count(*) FROM records").Scan(&n); err != nil || n != 20 {
		t.Fatalf("the other connection reads %d records, %v", n, err)
	}
}
