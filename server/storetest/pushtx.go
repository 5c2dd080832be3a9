package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/syncproto"
)

// stored builds a record and the log entry of its version v, as the push
// algorithm hands them to PushTx.WriteVersion.
func stored(entity, id, village, parent string, v int64, fields map[string]any) (*syncproto.StoredRecord, syncproto.LogEntry) {
	f := Upsert(entity, id, 0, T0, fields).Fields
	meta := map[string]syncproto.FieldMeta{}
	changes := map[string]syncproto.FieldChange{}
	for k, val := range f {
		meta[k] = syncproto.FieldMeta{Version: v, Device: "dev", At: T0}
		changes[k] = syncproto.FieldChange{Before: json.RawMessage(`null`), After: val}
	}
	rec := &syncproto.StoredRecord{Entity: entity, ID: id, Version: v, Fields: f, Meta: meta, Village: village, Parent: parent,
		UpdatedAt: T0, UpdatedBy: "w", UpdatedDevice: "dev"}
	entry := syncproto.LogEntry{Entity: entity, RecordID: id, Version: v, Op: syncproto.OpUpsert, ChangesetID: uuid.NewString(),
		UserID: "w", DeviceID: "dev", DeviceAt: T0, ServerAt: T0, Changes: changes}
	return rec, entry
}

// testPushTxPrimitives: the push transaction's primitives, directly.
// Record of an unknown id is nil (not an error), and a record written in
// the transaction is read back by it; WriteVersion returns a sequence
// above the head, which Head then is; Receipt and LastDeviceSeq are
// nil and 0 for what was never saved, then the receipt saved (with its
// response) and its device_seq; UpdateMeta replaces a record's metadata
// without a version, a change-log entry or a move in the log;
// ChildPlacements lists a household's records, deleted ones too, in the
// order of creation, with their version and village.
func testPushTxPrimitives(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	ctx := context.Background()
	hh, first, second := uuid.NewString(), uuid.NewString(), uuid.NewString()
	device := uuid.NewString()
	var seqs []int64
	err := s.WritePush(ctx, 1, func(ctx context.Context, tx syncproto.PushTx) error {
		if r, err := tx.Record(ctx, hh); err != nil || r != nil {
			t.Errorf("an unknown record: %+v, %v", r, err)
		}
		if r, err := tx.Receipt(ctx, uuid.NewString()); err != nil || r != nil {
			t.Errorf("an unknown receipt: %+v, %v", r, err)
		}
		if n, err := tx.LastDeviceSeq(ctx, device); err != nil || n != 0 {
			t.Errorf("last device_seq of an unknown device: %d, %v", n, err)
		}
		head, err := tx.Head(ctx)
		if err != nil || head != 0 {
			t.Errorf("head of an empty store: %d, %v", head, err)
		}
		for _, w := range []struct {
			id, entity, parent string
			deleted            bool
		}{{hh, "household", "", false}, {second, "water_inspection", hh, true}, {first, "housing_inspection", hh, false}} {
			rec, entry := stored(w.entity, w.id, SouthVillage, w.parent, 1, map[string]any{"household_id": w.parent, "village": SouthVillage})
			rec.Deleted = w.deleted
			seq, err := tx.WriteVersion(ctx, rec, entry)
			if err != nil {
				return err
			}
			if seq <= head {
				t.Errorf("WriteVersion returned %d, not above the head %d", seq, head)
			}
			if head, err = tx.Head(ctx); err != nil || head != seq {
				t.Errorf("head %d after writing at %d, %v", head, seq, err)
			}
			seqs = append(seqs, seq)
			back, err := tx.Record(ctx, w.id)
			if err != nil || back == nil || back.Version != 1 || back.Deleted != w.deleted || back.Village != SouthVillage || back.Parent != w.parent {
				t.Errorf("the record just written, read in the transaction: %+v, %v", back, err)
			}
		}
		placements, err := tx.ChildPlacements(ctx, hh)
		if err != nil {
			return err
		}
		want := []syncproto.Placement{{Entity: "water_inspection", ID: second, Version: 1, Village: SouthVillage},
			{Entity: "housing_inspection", ID: first, Version: 1, Village: SouthVillage}}
		if !reflect.DeepEqual(placements, want) {
			t.Errorf("child placements %+v, want %+v (deleted too, in the order of creation)", placements, want)
		}
		r := receipt()
		r.DeviceID, r.DeviceSeq, r.Response = device, 4, []byte(`{"results":[]}`)
		if err := tx.SaveReceipt(ctx, r); err != nil {
			return err
		}
		if got, err := tx.Receipt(ctx, r.ChangesetID); err != nil || got == nil || !bytes.Equal(got.Response, r.Response) ||
			got.ContentHash != r.ContentHash || got.DeviceSeq != 4 {
			t.Errorf("the receipt just saved: %+v, %v", got, err)
		}
		if n, err := tx.LastDeviceSeq(ctx, device); err != nil || n != 4 {
			t.Errorf("last device_seq after a receipt: %d, %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(seqs) {
		t.Fatalf("sequences %v not increasing", seqs)
	}

	// A new version of the first-created child: the order stays that of
	// creation, not of the last write.
	err = s.WritePush(ctx, 1, func(ctx context.Context, tx syncproto.PushTx) error {
		rec, entry := stored("water_inspection", second, SouthVillage, hh, 2, map[string]any{"household_id": hh, "village": SouthVillage})
		if _, err := tx.WriteVersion(ctx, rec, entry); err != nil {
			return err
		}
		placements, err := tx.ChildPlacements(ctx, hh)
		if err != nil {
			return err
		}
		if len(placements) != 2 || placements[0].ID != second || placements[0].Version != 2 || placements[1].ID != first {
			t.Errorf("child placements after a later version of the first child: %+v", placements)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// UpdateMeta: new metadata, nothing else.
	before := MustRecord(t, s, first)
	head := MustHead(t, s)
	confirmed := map[string]syncproto.FieldMeta{"household_id": {Version: 1, Device: "other", At: T0.Add(time.Hour)}}
	err = s.WritePush(ctx, 1, func(ctx context.Context, tx syncproto.PushTx) error {
		return tx.UpdateMeta(ctx, first, confirmed)
	})
	if err != nil {
		t.Fatal(err)
	}
	after := MustRecord(t, s, first)
	if m := after.Meta["household_id"]; m.Device != "other" || !m.At.Equal(T0.Add(time.Hour)) || m.Version != 1 {
		t.Fatalf("metadata after UpdateMeta: %+v", after.Meta)
	}
	if after.Version != before.Version || !equalFields(after.Fields, before.Fields) || MustHead(t, s) != head {
		t.Fatalf("UpdateMeta made a version: v%d→v%d, head %d→%d", before.Version, after.Version, head.Seq, MustHead(t, s).Seq)
	}
	if hist, err := s.History(ctx, first); err != nil || len(hist) != 1 {
		t.Fatalf("history after UpdateMeta: %d entries, %v", len(hist), err)
	}
	if got, _ := PullAll(t, s, All, head, 10); len(got) != 0 {
		t.Fatalf("UpdateMeta moved the record in the log: a pull from the head gives %+v", got)
	}
}

// testStoreLifecycle: an open store answers Ping; its cursor key is
// stable, long enough to sign with, and the database's own (another
// database has another); Close ends it: Ping fails after, and a second
// Close is harmless.
func testStoreLifecycle(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	other := open(t, NewClock(T0))
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("ping of an open store: %v", err)
	}
	key := s.CursorKey()
	if len(key) < 16 || !bytes.Equal(key, s.CursorKey()) {
		t.Fatalf("cursor key of %d bytes, stable %v", len(key), bytes.Equal(key, s.CursorKey()))
	}
	if bytes.Equal(key, other.CursorKey()) {
		t.Fatal("two databases share a cursor key")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("ping of a closed store succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	if err := other.Ping(context.Background()); err != nil {
		t.Fatalf("closing one store closed another: %v", err)
	}
}

// testOutboxReplay: a change set replayed from an exported outbox (through
// the PushService, in WriteReplay) is applied as its original device and
// user, and recorded as replayed by the supervisor through their device
// (RecordReplay, in the record's history); the photos it references that
// the replayer uploaded grant downloads as the original device's would
// (CarryPhotoProofs); a second replay of it applies and records nothing.
func testOutboxReplay(t *testing.T, open Opener) {
	clock := NewClock(T0.Add(time.Hour))
	s, p := Open(t, open, clock)
	ctx := context.Background()
	worker := NewDevice("li.na", "500240107")
	sup := syncproto.Actor{UserID: "sup", DeviceID: uuid.NewString(), Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	photo, other := "ab"+string(bytes.Repeat([]byte("0"), 62)), "cd"+string(bytes.Repeat([]byte("0"), 62))
	hh, ins := uuid.NewString(), uuid.NewString()
	housing := HousingInspection(ins, hh, "D", T0)
	housing.Fields["photos"] = json.RawMessage(`["` + photo + `"]`)
	cs := worker.Changeset(Household(hh, SouthVillage, T0), housing)
	// The supervisor uploads the photo the file carried, and one it did not
	// reference.
	for _, h := range []string{photo, other} {
		if err := s.PhotoUploaded(ctx, sup, h); err != nil {
			t.Fatal(err)
		}
	}
	sets, err := p.ReplayOutbox(ctx, worker.Actor, sup, []syncproto.Changeset{cs})
	if err != nil || len(sets) != 1 || sets[0].Err != nil || sets[0].Response.Results[1].Status != syncproto.StatusApplied {
		t.Fatalf("replay: %+v, %v", sets, err)
	}
	hist, err := s.History(ctx, ins)
	if err != nil || len(hist) != 1 {
		t.Fatalf("history %+v, %v", hist, err)
	}
	if e := hist[0]; e.DeviceID != worker.Actor.DeviceID || e.UserID != "li.na" || e.Replay == nil || e.Replay.By != "sup" ||
		e.Replay.Device != sup.DeviceID || !e.Replay.At.Equal(clock.Now()) {
		t.Fatalf("replayed version %+v (replay %+v)", e, e.Replay)
	}
	// The worker's reference grants: the proof came with the file.
	township := syncproto.Actor{UserID: "w2", Scope: []string{"500240107"}}
	if got, err := s.PhotoAccess(ctx, township, photo); err != nil || !got.InScope || got.Pending {
		t.Fatalf("the replayed reference: %+v, %v", got, err)
	}
	if got, err := s.ReadablePhotos(ctx, worker.Actor, []string{photo, other}); err != nil || !got[photo] || got[other] {
		t.Fatalf("readable by the original device: %v, %v (the proof of an unreferenced upload is not carried)", got, err)
	}
	again, err := p.ReplayOutbox(ctx, worker.Actor, sup, []syncproto.Changeset{cs})
	if err != nil || !again[0].Response.Replayed {
		t.Fatalf("a second replay: %+v, %v", again, err)
	}
	if hist, _ := s.History(ctx, ins); len(hist) != 1 {
		t.Fatalf("a second replay wrote a version: %+v", hist)
	}
}
