package sqlite

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestPublicationMigratesInResumableBatches: the stored records migrate
// migrateBatch at a time, each batch committed with how far it got. A
// failure in the third batch leaves the first two migrated whole (to v2),
// the rest as they were (v1), and the store saying so; the next start —
// on a set that meanwhile gained v3 — finishes the v2 migration from
// where it stopped and then moves every record to v3, each record
// migrated exactly once (migrating one twice fails: its v1 fields are
// gone), at its version, with the checksum unchanged.
func TestPublicationMigratesInResumableBatches(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	v1, v2, v3 := fixtureCatalog(t, 1), fixtureCatalog(t, 2), fixtureCatalog(t, 3)
	if _, err := syncproto.OpenCatalog(ctx, s, v1, clock.Now()); err != nil {
		t.Fatal(err)
	}
	p1 := syncproto.NewPushService(s, syncproto.PushOptions{Catalog: v1, Now: clock.Now})
	dev := storetest.NewDevice("loader")
	hID := uuid.NewString()
	ids := []string{hID}
	changes := []syncproto.Change{storetest.Household(hID, "500240107201", clock.Now())}
	total := 2*migrateBatch + migrateBatch/2
	for len(ids) < total {
		id := uuid.NewString()
		ids = append(ids, id)
		changes = append(changes, storetest.WaterInspection(id, hID, clock.Now()))
		if len(changes) == 500 || len(ids) == total {
			checkApplied(t, dev.Push(t, p1, changes...))
			changes = changes[:0]
		}
	}
	sort.Strings(ids)
	before := map[string]*syncproto.StoredRecord{}
	for _, id := range ids {
		before[id] = storetest.MustRecord(t, s, id)
	}
	sumBefore, _, err := s.Checksum(ctx, storetest.All)
	if err != nil {
		t.Fatal(err)
	}

	// A failure in the third batch.
	failAt := 2*migrateBatch + 10
	if _, err := syncproto.OpenCatalog(ctx, failingMigrator{s, failAt}, v2, clock.Now()); !errors.Is(err, errInjected) {
		t.Fatalf("a failed migration: %v", err)
	}
	if n, err := s.RecordsSchemaVersion(ctx); n != 1 || err != nil {
		t.Fatalf("after a failed migration the records are in %d (%v)", n, err)
	}
	if n, err := s.PendingRecordsVersion(ctx); n != 2 || err != nil {
		t.Fatalf("after a failed migration the pending migration is to %d (%v), want 2", n, err)
	}
	migrated := 0
	for i, id := range ids {
		r := storetest.MustRecord(t, s, id)
		_, inV2 := r.Fields["quantity_lpd"]
		_, inV1 := r.Fields["liters_per_person_day"]
		if r.Entity != "water_inspection" {
			inV2, inV1 = i < 2*migrateBatch, i >= 2*migrateBatch
			if inV1 && !reflect.DeepEqual(r, before[id]) {
				t.Fatalf("household %s changed by a failed batch", id)
			}
		}
		switch {
		case i < 2*migrateBatch && inV2 && !inV1:
			migrated++
		case i >= 2*migrateBatch && inV1 && !inV2:
			if !reflect.DeepEqual(r, before[id]) {
				t.Fatalf("record %d (%s), past the committed batches, changed:\n%+v\n%+v", i, id, r, before[id])
			}
		default:
			t.Fatalf("record %d of %d (%s) is half migrated or in the wrong batch: %s", i, total, id, r.Fields)
		}
	}
	if migrated != 2*migrateBatch {
		t.Fatalf("%d records migrated by the committed batches, want %d", migrated, 2*migrateBatch)
	}

	// The next start, on v1–v3: the v2 migration is finished, then v3.
	if _, err := syncproto.OpenCatalog(ctx, s, v3, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RecordsSchemaVersion(ctx); n != 3 || err != nil {
		t.Fatalf("records in %d (%v), want 3", n, err)
	}
	if n, err := s.PendingRecordsVersion(ctx); n != 0 || err != nil {
		t.Fatalf("a migration to %d is still pending (%v)", n, err)
	}
	for _, id := range ids {
		r, old := storetest.MustRecord(t, s, id), before[id]
		if r.Version != old.Version || !r.UpdatedAt.Equal(old.UpdatedAt) {
			t.Errorf("%s: version %d→%d", id, old.Version, r.Version)
		}
		if r.Entity != "water_inspection" {
			continue
		}
		want := map[string]string{"quantity_lpd": "80", "fetch_minutes": "5", "convenience": `"met"`,
			"quantity_met": "true", "quality_basis": `"not_established"`}
		for f, v := range want {
			if string(r.Fields[f]) != v {
				t.Fatalf("%s.%s = %s, want %s (%s)", id, f, r.Fields[f], v, r.Fields)
			}
		}
		if r.Meta["quantity_met"] != old.Meta["liters_per_person_day"] || r.Meta["convenience"] != old.Meta["fetch_minutes"] {
			t.Fatalf("%s: metadata %+v from %+v", id, r.Meta, old.Meta)
		}
	}
	if sum, _, _ := s.Checksum(ctx, storetest.All); sum != sumBefore {
		t.Errorf("checksum %+v → %+v", sumBefore, sum)
	}
}

// writeOps counts the write transactions of each op and the background
// checkpoints.
type writeOps struct {
	mu          sync.Mutex
	ops         map[string]int
	checkpoints int
}

func (w *writeOps) WriteWaited(op string, _ time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ops[op]++
}

func (w *writeOps) Checkpointed(walPages, copied int, took time.Duration, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checkpoints++
}

func (w *writeOps) counts() (map[string]int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.ops), w.checkpoints
}

// TestPublicationGoesThroughTheWritePath: publishing a version and
// migrating the records are writes of the store's one write path — seen
// by the write observer as publish_schema and one migrate_records
// transaction per batch, each commit prompting the background checkpoint
// — and, like every write, refused with EUnavailable once Close began.
func TestPublicationGoesThroughTheWritePath(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	obs := &writeOps{ops: map[string]int{}}
	s, err := Open(ctx, filepath.Join(t.TempDir(), FileName), Options{Now: clock.Now, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v1, v2 := fixtureCatalog(t, 1), fixtureCatalog(t, 2)
	if _, err := syncproto.OpenCatalog(ctx, s, v1, clock.Now()); err != nil {
		t.Fatal(err)
	}
	p1 := syncproto.NewPushService(s, syncproto.PushOptions{Catalog: v1, Now: clock.Now})
	dev := storetest.NewDevice("loader")
	hID := uuid.NewString()
	changes := []syncproto.Change{storetest.Household(hID, "500240107201", clock.Now())}
	for len(changes) < migrateBatch+migrateBatch/2 {
		changes = append(changes, storetest.WaterInspection(uuid.NewString(), hID, clock.Now()))
	}
	checkApplied(t, dev.Push(t, p1, changes...))
	// The push's own checkpoint first, so that the one counted below is
	// the migration's.
	waitFor(t, func() bool { _, n := obs.counts(); return n > 0 })
	_, pushed := obs.counts()

	if _, err := syncproto.OpenCatalog(ctx, s, v2, clock.Now()); err != nil {
		t.Fatal(err)
	}
	ops, _ := obs.counts()
	if ops["publish_schema"] != 2 || ops["migrate_records"] != 2 {
		t.Errorf("write transactions %v: want publish_schema 2 (v1, v2) and migrate_records 2 (two batches)", ops)
	}
	waitFor(t, func() bool { _, n := obs.counts(); return n > pushed })

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitFor(t, s.committer.Closed)
	err = s.PublishSchema(ctx, syncproto.PublishedSchema{Version: 9, Digest: "x", Document: []byte(`{}`), PublishedAt: clock.Now()})
	if syncproto.ErrorCode(err) != syncproto.EUnavailable {
		t.Errorf("PublishSchema after Close began: %v, want EUnavailable", err)
	}
	if err := s.MigrateRecords(ctx, 3, func(*syncproto.StoredRecord) error { return nil }); syncproto.ErrorCode(err) != syncproto.EUnavailable {
		t.Errorf("MigrateRecords after Close began: %v, want EUnavailable", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
	}
}
