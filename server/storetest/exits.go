package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/syncproto"
)

// testFlaggedVersions: FlaggedVersions lists the versions that carry any
// of the flags asked for (not the unflagged ones, not those of another
// flag), of the actor's scope only (by the village each was written in),
// in log order, with every field of the entry as written (flags, note,
// changes, conflicts) and the village; its positions page through them
// each once.
func testFlaggedVersions(t *testing.T, open Opener) {
	s := open(t, NewClock(T0))
	ctx := context.Background()
	type written struct {
		id, village, flag string
		seq               int64
	}
	plan := []written{
		{uuid.NewString(), SouthVillage, syncproto.FlagDecided, 0},
		{uuid.NewString(), SouthVillage, "", 0},
		{uuid.NewString(), NorthVillage, syncproto.FlagOverride, 0},
		{uuid.NewString(), SouthVillage, syncproto.FlagRegistered, 0},
		{uuid.NewString(), SouthVillage, syncproto.FlagOverride, 0},
		{uuid.NewString(), SouthVillage, syncproto.FlagClockClamped, 0},
	}
	conflict := uuid.NewString()
	err := s.WritePush(ctx, len(plan), func(ctx context.Context, tx syncproto.PushTx) error {
		for i := range plan {
			w := &plan[i]
			rec, entry := stored("household", w.id, w.village, "", 1, map[string]any{"village": w.village, "status": "lifted_out"})
			if w.flag != "" {
				entry.Flags = []string{w.flag}
				entry.Note = "status lifted_out decided by a supervisor on verdict verified as of 2026-11-20"
				entry.ConflictIDs = []string{conflict}
			}
			seq, err := tx.WriteVersion(ctx, rec, entry)
			if err != nil {
				return err
			}
			w.seq = seq
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	list := func(actor syncproto.Actor, flags []string, limit int) []syncproto.FlaggedVersion {
		t.Helper()
		var all []syncproto.FlaggedVersion
		var after int64
		for range 20 {
			page, next, err := s.FlaggedVersions(ctx, actor, flags, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 0 && next <= after {
				t.Fatalf("position went from %d to %d", after, next)
			}
			all = append(all, page...)
			if len(page) < limit {
				return all
			}
			after = next
		}
		t.Fatal("FlaggedVersions never ended")
		return nil
	}
	ids := func(l []syncproto.FlaggedVersion) []string {
		var out []string
		for _, v := range l {
			out = append(out, v.RecordID)
		}
		return out
	}
	south := syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	exits := []string{syncproto.FlagDecided, syncproto.FlagOverride}
	for _, limit := range []int{1, 2, 100} {
		if got, want := ids(list(All, exits, limit)), []string{plan[0].id, plan[2].id, plan[4].id}; !slices.Equal(got, want) {
			t.Errorf("decided and override, every region, pages of %d: %v, want %v", limit, got, want)
		}
	}
	got := list(south, exits, 100)
	if !slices.Equal(ids(got), []string{plan[0].id, plan[4].id}) {
		t.Fatalf("in 500240: %v, want the south's decided and override", ids(got))
	}
	v := got[0]
	if v.Seq != plan[0].seq || v.Village != SouthVillage || v.Entity != "household" || v.Version != 1 || v.UserID != "w" ||
		!slices.Equal(v.Flags, []string{syncproto.FlagDecided}) || v.Note == "" || !slices.Equal(v.ConflictIDs, []string{conflict}) ||
		!v.ServerAt.Equal(T0) || string(v.Changes["status"].After) != `"lifted_out"` {
		t.Errorf("the decided version as listed: %+v", v)
	}
	if got := ids(list(south, []string{syncproto.FlagRegistered}, 100)); !slices.Equal(got, []string{plan[3].id}) {
		t.Errorf("registered in 500240: %v", got)
	}
	nobody := syncproto.Actor{UserID: "x", Role: syncproto.RoleSupervisor}
	if got := list(nobody, exits, 100); len(got) != 0 {
		t.Errorf("an actor without a scope sees %v", ids(got))
	}
	if got := list(All, nil, 100); len(got) != 0 {
		t.Errorf("no flags asked: %v", ids(got))
	}
}
