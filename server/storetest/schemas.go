package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// testPublishedSchemas: a published schema version is kept as it was
// published, survives a second publication of the same content, refuses
// another content (EConflict), and OpenCatalog publishes the built-in set
// once and accepts it again.
func testPublishedSchemas(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s := open(t, clock)
	ctx := context.Background()
	if got, err := s.PublishedSchemas(ctx); err != nil || len(got) != 0 {
		t.Fatalf("a new store has published versions: %v %v", got, err)
	}
	set := schema.BuiltIn()
	served, err := syncproto.OpenCatalog(ctx, s, set, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if served.Latest().Version != set.Latest().Version {
		t.Fatalf("served %v", served.Versions())
	}
	got, err := s.PublishedSchemas(ctx)
	if err != nil || len(got) != len(set.Versions()) {
		t.Fatalf("published %v %v", got, err)
	}
	for i, p := range got {
		if n := i + 1; p.Version != n || p.Digest != set.Digest(n) || string(p.Document) != string(set.Document(n)) || !p.PublishedAt.Equal(T0) {
			t.Fatalf("stored %+v", p)
		}
	}
	clock.Advance(time.Hour)
	if _, err := syncproto.OpenCatalog(ctx, s, set, clock.Now()); err != nil {
		t.Fatalf("the same set again: %v", err)
	}
	if err := s.PublishSchema(ctx, syncproto.PublishedSchema{Version: 1, Digest: "other", Document: []byte(`{}`), PublishedAt: clock.Now()}); syncproto.ErrorCode(err) != syncproto.EConflict {
		t.Fatalf("version 1 republished with another content: %v", err)
	}
	if got, _ := s.PublishedSchemas(ctx); len(got) != len(set.Versions()) || got[0].Digest != set.Digest(1) || !got[0].PublishedAt.Equal(T0) {
		t.Fatalf("a published version changed: %+v", got)
	}
}

// testMigrateRecords: a new store's records are in version 1; MigrateRecords
// calls fn on every record, tombstones included, and keeps the fields and
// metadata fn left, nothing else (not the version, the change log, a pull
// position or the checksum), then records the version; when fn fails
// midway nothing changes and the error is returned.
func testMigrateRecords(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	ctx := context.Background()
	if v, err := s.RecordsSchemaVersion(ctx); err != nil || v != 1 {
		t.Fatalf("records schema version of a new store: %d, %v", v, err)
	}
	if v, err := s.PendingRecordsVersion(ctx); err != nil || v != 0 {
		t.Fatalf("pending records version of a new store: %d, %v", v, err)
	}
	dev := NewDevice("li.na")
	hh, gone, ins := uuid.NewString(), uuid.NewString(), uuid.NewString()
	dev.Push(t, p, Household(hh, SouthVillage, T0), Household(gone, SouthVillage, T0), HousingInspection(ins, hh, "C", T0))
	dev.Push(t, p, Delete("household", gone, 1, T0))
	head := MustHead(t, s)
	sumBefore, _, err := s.Checksum(ctx, All)
	if err != nil {
		t.Fatal(err)
	}
	histBefore, _ := s.History(ctx, hh)

	// rename moves members to member_count, with its metadata.
	rename := func(rec *syncproto.StoredRecord) error {
		if v, ok := rec.Fields["members"]; ok {
			rec.Fields["member_count"] = v
			delete(rec.Fields, "members")
			rec.Meta["member_count"] = rec.Meta["members"]
			delete(rec.Meta, "members")
		}
		return nil
	}
	calls := 0
	err = s.MigrateRecords(ctx, 2, func(rec *syncproto.StoredRecord) error {
		if calls++; calls == 2 {
			return errBroken
		}
		return rename(rec)
	})
	if !errors.Is(err, errBroken) {
		t.Fatalf("a failing fn: %v", err)
	}
	for _, id := range []string{hh, gone} {
		if r := MustRecord(t, s, id); r.Fields["members"] == nil || r.Fields["member_count"] != nil {
			t.Fatalf("a failed migration changed %s: %v", id, r.Fields)
		}
	}
	if v, _ := s.RecordsSchemaVersion(ctx); v != 1 {
		t.Fatalf("a failed migration recorded version %d", v)
	}
	// A store that migrates in batches may leave the migration pending
	// (its committed batches in version 2); one that migrates in one
	// transaction leaves none. Either way no other version may start.
	pending, err := s.PendingRecordsVersion(ctx)
	if err != nil || (pending != 0 && pending != 2) {
		t.Fatalf("pending records version after a failed migration to 2: %d, %v", pending, err)
	}
	if pending == 2 {
		if err := s.MigrateRecords(ctx, 3, func(*syncproto.StoredRecord) error { return nil }); err == nil {
			t.Fatal("a migration to 3 started while one to 2 is pending")
		}
	}

	seen := map[string]bool{}
	err = s.MigrateRecords(ctx, 2, func(rec *syncproto.StoredRecord) error {
		seen[rec.ID] = true
		return rename(rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.PendingRecordsVersion(ctx); err != nil || v != 0 {
		t.Fatalf("pending records version after a completed migration: %d, %v", v, err)
	}
	if len(seen) != 3 || !seen[gone] {
		t.Fatalf("fn saw %v, want every record, the tombstone too", seen)
	}
	for _, id := range []string{hh, gone} {
		r := MustRecord(t, s, id)
		if r.Fields["members"] != nil || string(r.Fields["member_count"]) != "5" || r.Meta["member_count"].Version != 1 || r.Meta["members"] != (syncproto.FieldMeta{}) {
			t.Fatalf("migrated %s: %v %v", id, r.Fields, r.Meta)
		}
	}
	if r := MustRecord(t, s, gone); !r.Deleted || r.Version != 2 {
		t.Fatalf("the migrated tombstone %+v", r)
	}
	if v, err := s.RecordsSchemaVersion(ctx); err != nil || v != 2 {
		t.Fatalf("records schema version after the migration: %d, %v", v, err)
	}
	if MustHead(t, s) != head {
		t.Fatal("the migration wrote to the change log")
	}
	if got, _ := PullAll(t, s, All, head, 10); len(got) != 0 {
		t.Fatalf("the migration moved records in the log: %+v", got)
	}
	if sum, _, _ := s.Checksum(ctx, All); sum != sumBefore {
		t.Fatal("the migration changed the checksum")
	}
	if hist, _ := s.History(ctx, hh); len(hist) != len(histBefore) || string(hist[0].Changes["members"].After) != "5" {
		t.Fatalf("the migration rewrote the history: %+v", hist)
	}
}
