package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldsync/fieldsync/server/postgres/pgtest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestWriteErrorsOfTheDatabase: the database's conditions are EUnavailable
// with a Retry-After (a full disk, a shutdown or failover, a lost
// connection); a fault of the data or the code is returned as it is (a
// 500, logged).
func TestWriteErrorsOfTheDatabase(t *testing.T) {
	cases := []struct {
		err   error
		retry time.Duration // 0: not unavailable
	}{
		{&pgconn.PgError{Code: "53100"}, retryFullAfter * time.Second},
		{&pgconn.PgError{Code: "53300"}, retryDownAfter * time.Second}, // too many connections
		{&pgconn.PgError{Code: "57P01"}, retryDownAfter * time.Second}, // admin shutdown
		{&pgconn.PgError{Code: "25006"}, retryDownAfter * time.Second}, // read-only: a standby after a failover
		{&pgconn.PgError{Code: "08006"}, retryDownAfter * time.Second},
		{&pgconn.PgError{Code: "40P01"}, retryDownAfter * time.Second}, // a deadlock is a retry, never a 500
		{&pgconn.PgError{Code: "40001"}, retryDownAfter * time.Second},
		// the database's process gone mid-answer (a restart --mode immediate)
		{fmt.Errorf("write lock: %w", io.ErrUnexpectedEOF), retryDownAfter * time.Second},
		// A commit on a connection the driver closed under it (the
		// database restarted): its outcome unknown, a retry is applied once.
		{fmt.Errorf("commit: %w", pgconn.ErrConnClosed), retryDownAfter * time.Second},
		{&pgconn.PgError{Code: "23505"}, 0}, // a unique violation is a bug, not the database's condition
		{errors.New("record x fields: bad JSON"), 0},
	}
	for _, c := range cases {
		err := writeError(c.err)
		var se *syncproto.Error
		got := errors.As(err, &se) && se.Code == syncproto.EUnavailable
		if got != (c.retry > 0) || got && se.RetryIn != c.retry {
			t.Errorf("writeError(%v) = %v", c.err, err)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("writeError(%v) lost the database's error for the log: %v", c.err, err)
		}
	}
}

// TestCutConnectionIsUnavailableAndNothingIsKept: the database cuts the
// store's connections (a restart, a failover) just before a change set
// commits. The push is EUnavailable with a Retry-After, nothing of it is
// kept, and the tablet's retry applies it once.
func TestCutConnectionIsUnavailableAndNothingIsKept(t *testing.T) {
	ctx := context.Background()
	url := pgtest.DB(t)
	clock := storetest.NewClock(storetest.T0)
	s := mustOpenURL(t, url, clock)
	admin, err := pgx.Connect(ctx, url) // not the store's: another application_name
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var once sync.Once
	s.beforeCommit = func() {
		once.Do(func() {
			if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE application_name = 'fieldsync' AND datname = current_database()`); err != nil {
				t.Error(err)
			}
		})
	}
	p := storetest.NewPushService(s, clock)
	dev := storetest.NewDevice("li.na")
	hh := uuid.NewString()
	cs := dev.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0))
	_, err = p.Push(ctx, dev.Actor, cs)
	var se *syncproto.Error
	if !errors.As(err, &se) || se.Code != syncproto.EUnavailable || se.RetryIn != retryDownAfter*time.Second {
		t.Fatalf("push while the connection is cut: %v, want EUnavailable with a Retry-After", err)
	}
	if _, err := s.Record(ctx, hh); syncproto.ErrorCode(err) != syncproto.ENotFound {
		t.Fatalf("the household of the failed push: %v, want not found", err)
	}
	resp, err := p.Push(ctx, dev.Actor, cs)
	if err != nil || resp.Replayed || resp.Results[0].Status != syncproto.StatusApplied {
		t.Fatalf("the retry: %+v, %v; want applied, not replayed", resp, err)
	}
	if h, err := s.History(ctx, hh); err != nil || len(h) != 1 {
		t.Fatalf("history %v, %v; want one version", h, err)
	}
}

// TestWriteLockHeldTooLongIsBusy: while another session holds the write
// lock (a stuck transaction of another instance or program), a push waits
// the lock timeout, then is refused as EUnavailable, keeping nothing; once
// the lock is free the same push is applied.
func TestWriteLockHeldTooLongIsBusy(t *testing.T) {
	ctx := context.Background()
	url := pgtest.DB(t)
	clock := storetest.NewClock(storetest.T0)
	s, err := Open(ctx, url, Options{Now: clock.Now, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, WriteLockKey); err != nil {
		t.Fatal(err)
	}
	p := storetest.NewPushService(s, clock)
	dev := storetest.NewDevice("li.na")
	hh := uuid.NewString()
	cs := dev.Changeset(storetest.Household(hh, storetest.SouthVillage, storetest.T0))
	_, err = p.Push(ctx, dev.Actor, cs)
	var se *syncproto.Error
	if !errors.As(err, &se) || se.Code != syncproto.EUnavailable || se.RetryIn != retryDownAfter*time.Second {
		t.Fatalf("push while the write lock is held: %v, want EUnavailable with a Retry-After", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if resp, err := p.Push(ctx, dev.Actor, cs); err != nil || resp.Replayed {
		t.Fatalf("the retry once the lock is free: %+v, %v", resp, err)
	}
}

// TestReadsOfAStoppedDatabaseAreUnavailable: once the database cannot be
// reached, a pull and a checksum are EUnavailable (503, retry), not an
// internal error.
func TestReadsOfAStoppedDatabaseAreUnavailable(t *testing.T) {
	ctx := context.Background()
	url := pgtest.DB(t)
	clock := storetest.NewClock(storetest.T0)
	s := mustOpenURL(t, url, clock)
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	admin, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// No new connection to the database, and the store's cut: as a
	// database that stopped.
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(ctx, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`) })
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx, storetest.All, syncproto.Cursor{}, 10); syncproto.ErrorCode(err) != syncproto.EUnavailable {
		t.Errorf("pull: %v, want EUnavailable", err)
	}
	if _, _, err := s.Checksum(ctx, storetest.All); syncproto.ErrorCode(err) != syncproto.EUnavailable {
		t.Errorf("checksum: %v, want EUnavailable", err)
	}
}
