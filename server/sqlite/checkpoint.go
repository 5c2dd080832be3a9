package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// Background checkpoints. In WAL mode a commit appends pages to the WAL;
// a checkpoint copies them into the database file and fsyncs it. Left to
// SQLite, the commit that takes the WAL past wal_autocheckpoint pages runs
// the checkpoint itself, before its transaction is answered: every few
// hundred changes one group of pushes waited for the copy and a second
// fsync. That was the tail of push latency.
//
// So a goroutine checkpoints from a connection of its own, PASSIVE (it
// never blocks the writer or readers), shortly after commits: at most once
// per checkpointInterval, and only when something was committed since its
// last run. The writer still checkpoints itself when the WAL reaches
// wal_autocheckpoint pages, which only happens under sustained load (a
// passive checkpoint rarely catches up with a writer that never pauses, and
// the WAL restarts from its beginning only once it has). By then the
// background has copied nearly all of it, so that checkpoint is short, and
// the WAL stays bounded.
const checkpointInterval = 200 * time.Millisecond

// CheckpointObserver, when the WriteObserver also implements it, is told
// of every background checkpoint: the WAL's size in pages, how many of
// them are now in the database file (fewer when a reader still needs
// older pages, or the writer appended meanwhile), how long it took, and
// its error (then the counts are 0).
type CheckpointObserver interface {
	Checkpointed(walPages, copied int, took time.Duration, err error)
}

type checkpointer struct {
	db       *sql.DB
	kick     chan struct{} // a commit happened (buffered: one pending kick)
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	closeErr error
}

func (s *Store) startCheckpointer(dsn string) error {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s.ckpt = &checkpointer{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.checkpointLoop()
	return nil
}

// commit commits a write transaction and tells the checkpointer.
func (s *Store) commit(tx *sql.Tx) error {
	if err := tx.Commit(); err != nil {
		return err
	}
	if s.ckpt == nil {
		return nil
	}
	select {
	case s.ckpt.kick <- struct{}{}:
	default:
	}
	return nil
}

func (s *Store) checkpointLoop() {
	c := s.ckpt
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		// Let the commits of the next moments gather: one checkpoint copies
		// each changed page once, however often it changed.
		select {
		case <-c.stop:
			return
		case <-time.After(checkpointInterval):
		}
		start := time.Now()
		// A checkpoint that fails (a full disk, an I/O error) leaves the
		// WAL as it was: nothing is lost, and the writer's own checkpoint
		// or the next kick tries again. The observer counts the failure.
		walPages, copied, err := s.checkpointPassive(context.Background())
		if o, ok := s.observer.(CheckpointObserver); ok {
			o.Checkpointed(walPages, copied, time.Since(start), err)
		}
	}
}

func (s *Store) checkpointPassive(ctx context.Context) (walPages, copied int, err error) {
	var busy int
	if err := s.ckpt.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &walPages, &copied); err != nil {
		return 0, 0, fmt.Errorf("checkpoint: %w", err)
	}
	return walPages, copied, nil
}

// stopCheckpointer ends the loop (a checkpoint under way completes) and
// closes its connection; calling it again returns the same result.
func (s *Store) stopCheckpointer() error {
	c := s.ckpt
	if c == nil {
		return nil
	}
	c.stopOnce.Do(func() {
		close(c.stop)
		<-c.done
		c.closeErr = c.db.Close()
	})
	return c.closeErr
}
