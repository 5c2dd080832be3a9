package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A push is copied into the database file by the background checkpointer,
// though the writer's own checkpoint is out of reach: the database file
// alone, without its WAL, holds the change set soon after it is answered.
func TestBackgroundCheckpointCopiesPushesIntoTheDatabaseFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	done := make(chan [2]int, 64)
	s, err := Open(ctx, path, Options{Now: storetest.NewClock(storetest.T0).Now, WALAutocheckpoint: 1 << 20,
		Observer: checkpoints(func(walPages, copied int) { done <- [2]int{walPages, copied} })})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	dev := storetest.NewDevice("ckpt")
	var changes []syncproto.Change
	for i := 0; i < 50; i++ {
		changes = append(changes, storetest.Household(uuid.NewString(), storetest.SouthVillage, storetest.T0))
	}
	if _, err := pushes(s).Push(ctx, dev.Actor, dev.Changeset(changes...)); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r[0] == 0 || r[1] != r[0] {
			t.Fatalf("background checkpoint: %d WAL pages, %d copied; want all of a non-empty WAL", r[0], r[1])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no background checkpoint within 10 s of a push")
	}

	// The database file on its own, as a crash that lost the WAL would
	// leave it, has the 50 households.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	alone := filepath.Join(t.TempDir(), "alone.db")
	if err := os.WriteFile(alone, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := OpenReader(ctx, alone, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n int
	if err := c.reader.QueryRow(`SELECT count(*) FROM records WHERE entity = 'household'`).Scan(&n); err != nil || n != 50 {
		t.Fatalf("the database file alone holds %d households (%v), want 50", n, err)
	}
}

// Without commits the checkpointer stays idle: it runs after writes only.
func TestBackgroundCheckpointIdlesWithoutWrites(t *testing.T) {
	runs := make(chan struct{}, 8)
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), FileName), Options{
		Observer: checkpoints(func(int, int) { runs <- struct{}{} })})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	select {
	case <-runs:
		t.Fatal("a checkpoint ran with nothing committed")
	case <-time.After(3 * checkpointInterval):
	}
}

// Closing a store twice is harmless: the second Close neither panics on
// the stopped checkpointer nor fails on the closed pools, and returns the
// first one's result (nil). So is closing a reader-only store twice.
func TestCloseTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("first close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	r, err := OpenReader(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("first close of a reader: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second close of a reader: %v", err)
	}
}

// checkpoints is an observer that hands each successful background
// checkpoint to a function.
type checkpoints func(walPages, copied int)

func (checkpoints) WriteWaited(string, time.Duration) {}

func (f checkpoints) Checkpointed(walPages, copied int, _ time.Duration, err error) {
	if err == nil {
		f(walPages, copied)
	}
}
