package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestDevicesAndBehind: Devices lists each tablet with its pushes, its
// last pull position (never moved back), its user's role and scope, its
// revocation and its name; Behind counts the records of a scope changed
// after each position, and every record of it for position 0.
func TestDevicesAndBehind(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(storetest.T0)
	s := MustOpen(t, clock)
	p := storetest.NewPushService(s, clock)
	if err := s.PutUser(ctx, auth.User{Name: "worker.south", PasswordHash: "x", Role: "field_worker", Scope: []string{"500240"}}); err != nil {
		t.Fatal(err)
	}
	south := storetest.NewDevice("worker.south", "500240")
	north := storetest.NewDevice("worker.north")
	var southIDs []string
	for range 3 {
		id := uuid.NewString()
		southIDs = append(southIDs, id)
		south.Push(t, p, storetest.Household(id, storetest.SouthVillage, storetest.T0))
	}
	resp := north.Push(t, p, storetest.Household(uuid.NewString(), storetest.NorthVillage, storetest.T0),
		storetest.Household(uuid.NewString(), storetest.NorthVillage, storetest.T0))
	if len(resp.Results) != 2 {
		t.Fatalf("north push: %+v", resp)
	}
	at := storetest.T0.Add(time.Hour)
	if err := s.RecordPulls(ctx, []syncproto.PullPosition{{Device: south.Actor.DeviceID, User: "worker.south", Seq: 3, At: at}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordPulls(ctx, []syncproto.PullPosition{{Device: south.Actor.DeviceID, User: "worker.south", Seq: 1, At: at}}); err != nil {
		t.Fatal(err)
	}
	if err := s.NameDevice(ctx, south.Actor.DeviceID, "西沱 tablet 2"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeDevice(ctx, north.Actor.DeviceID, "admin", at); err != nil {
		t.Fatal(err)
	}
	devs, err := s.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]syncproto.DeviceState{}
	for _, d := range devs {
		byID[d.DeviceID] = d
	}
	sd, nd := byID[south.Actor.DeviceID], byID[north.Actor.DeviceID]
	if len(devs) != 2 || sd.LastSeq != 3 || sd.Applied != 3 || sd.LastPullSeq != 3 || !sd.LastPullAt.Equal(at) ||
		sd.UserRole != "field_worker" || len(sd.UserScope) != 1 || sd.Name != "西沱 tablet 2" || sd.Revoked {
		t.Errorf("south tablet: %+v", sd)
	}
	if nd.LastSeq != 1 || nd.Applied != 2 || !nd.Revoked || nd.UserRole != "" {
		t.Errorf("north tablet: %+v", nd)
	}

	southActor := syncproto.Actor{UserID: "worker.south", Scope: []string{"500240"}}
	hist, err := s.History(ctx, southIDs[0])
	if err != nil || len(hist) != 1 {
		t.Fatal(hist, err)
	}
	behind, err := s.Behind(ctx, southActor, []int64{0, hist[0].Seq, 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{3, 2, 0}; behind[0] != want[0] || behind[1] != want[1] || behind[2] != want[2] {
		t.Errorf("Behind(south, [0, first, far]) = %v, want %v", behind, want)
	}
	if all, err := s.Behind(ctx, storetest.All, []int64{0}); err != nil || all[0] != 5 {
		t.Errorf("Behind(all, [0]) = %v, %v; want [5]", all, err)
	}
}
