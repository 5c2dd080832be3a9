package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

// deviceState returns the state Devices gives of one device, or fails.
func deviceState(t *testing.T, s syncproto.Store, device string) syncproto.DeviceState {
	t.Helper()
	list, err := s.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list {
		if d.DeviceID == device {
			return d
		}
	}
	t.Fatalf("device %s not among %d devices", device, len(list))
	return syncproto.DeviceState{}
}

// testDevices: Devices lists every tablet that pushed or pulled, with its
// user (and the user's role and scope), its last device_seq and push, the
// outcome counts of its change sets, its last pull (RecordPulls: all in one
// call, never moving back), the name it gave itself (NameDevice, the last
// one kept) and whether it was revoked; DeviceSchemaVersion is the version
// of its last change set, 0 for a device that pushed none.
func testDevices(t *testing.T, open Opener) {
	clock := NewClock(T0.Add(time.Hour))
	s, p := Open(t, open, clock)
	ctx := context.Background()
	accounts := mustAccounts(t, s)
	if err := accounts.PutUser(ctx, auth.User{Name: "li.na", PasswordHash: "x", Role: syncproto.RoleFieldWorker, Scope: []string{"500240107"}}); err != nil {
		t.Fatal(err)
	}
	a, b := NewDevice("li.na", "500240107"), NewDevice("zhao.lei")
	if v, err := s.DeviceSchemaVersion(ctx, a.Actor.DeviceID); err != nil || v != 0 {
		t.Fatalf("schema version of a device that never pushed: %d, %v", v, err)
	}
	hh := uuid.NewString()
	a.Push(t, p, Household(hh, SouthVillage, T0), HousingInspection(uuid.NewString(), hh, "B", T0))
	clock.Advance(time.Minute)
	b.Push(t, p, Upsert("household", hh, 1, T0.Add(time.Minute), map[string]any{"members": 7}))
	clock.Advance(time.Minute)
	bad := Upsert("water_inspection", uuid.NewString(), 0, T0, map[string]any{"household_id": hh, "inspected_on": "2026-11-20", "reliability_pct": 140})
	a.Push(t, p, Upsert("household", hh, 1, T0.Add(2*time.Minute), map[string]any{"members": 6}), bad)
	pushedAt := clock.Now()

	d := deviceState(t, s, a.Actor.DeviceID)
	if d.UserID != "li.na" || d.LastSeq != 2 || !d.LastPushAt.Equal(pushedAt) || d.Applied != 2 || d.Conflicts != 1 ||
		d.Rejected != 1 || d.Revoked || d.Name != "" || d.UserRole != syncproto.RoleFieldWorker || !slices.Equal(d.UserScope, []string{"500240107"}) {
		t.Fatalf("device a: %+v", d)
	}
	if d := deviceState(t, s, b.Actor.DeviceID); d.UserID != "zhao.lei" || d.LastSeq != 1 || d.Applied != 1 || d.Conflicts != 0 {
		t.Fatalf("device b: %+v", d)
	}
	if v, err := s.DeviceSchemaVersion(ctx, a.Actor.DeviceID); err != nil || v != 1 {
		t.Fatalf("schema version of a device that pushed in 1: %d, %v", v, err)
	}

	if err := s.NameDevice(ctx, a.Actor.DeviceID, "西沱 1"); err != nil {
		t.Fatal(err)
	}
	if err := s.NameDevice(ctx, a.Actor.DeviceID, "西沱 2"); err != nil {
		t.Fatal(err)
	}
	if d := deviceState(t, s, a.Actor.DeviceID); d.Name != "西沱 2" {
		t.Fatalf("device name %q, want the last one given", d.Name)
	}

	pulledAt := clock.Now().Add(time.Minute)
	puller := uuid.NewString() // a device that only pulls
	if err := s.RecordPulls(ctx, []syncproto.PullPosition{{Device: a.Actor.DeviceID, User: "li.na", Seq: 3, At: pulledAt},
		{Device: puller, User: "wang.fang", Seq: 2, At: pulledAt}}); err != nil {
		t.Fatal(err)
	}
	if d := deviceState(t, s, a.Actor.DeviceID); d.LastPullSeq != 3 || !d.LastPullAt.Equal(pulledAt) || d.LastSeq != 2 {
		t.Fatalf("device a after a pull: %+v", d)
	}
	if d := deviceState(t, s, puller); d.LastPullSeq != 2 || d.UserID != "wang.fang" || d.LastSeq != 0 {
		t.Fatalf("a device that only pulled: %+v", d)
	}
	// An older position (a pull answered late) does not move it back.
	if err := s.RecordPulls(ctx, []syncproto.PullPosition{{Device: a.Actor.DeviceID, User: "li.na", Seq: 1, At: pulledAt.Add(time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	if d := deviceState(t, s, a.Actor.DeviceID); d.LastPullSeq != 3 {
		t.Fatalf("a pull position moved back to %d", d.LastPullSeq)
	}
	if err := s.RecordPulls(ctx, nil); err != nil {
		t.Fatalf("no positions: %v", err)
	}

	if err := accounts.RevokeDevice(ctx, b.Actor.DeviceID, "admin", clock.Now()); err != nil {
		t.Fatal(err)
	}
	if d := deviceState(t, s, b.Actor.DeviceID); !d.Revoked {
		t.Fatalf("a revoked device: %+v", d)
	}
}

// testReceipts: Receipts lists a device's change sets newest first, paged
// by position without a repeat or a gap, with what each did; ReceiptOf
// returns one, or ENotFound.
func testReceipts(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s, p := Open(t, open, clock)
	ctx := context.Background()
	a, b := NewDevice("li.na"), NewDevice("zhao.lei")
	var sets []string
	for i := range 5 {
		cs := a.Changeset(Household(uuid.NewString(), SouthVillage, T0))
		if _, err := p.Push(ctx, a.Actor, cs); err != nil {
			t.Fatal(err)
		}
		sets = append(sets, cs.ChangesetID)
		b.Push(t, p, Household(uuid.NewString(), SouthVillage, T0))
		if i == 0 {
			clock.Advance(time.Minute)
		}
	}
	slices.Reverse(sets) // newest first
	for _, limit := range []int{1, 2, 10} {
		var got []string
		var after int64
		for {
			page, next, err := s.Receipts(ctx, a.Actor.DeviceID, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				if r.DeviceID != a.Actor.DeviceID || r.UserID != "li.na" || r.Applied != 1 {
					t.Fatalf("receipt %+v", r)
				}
				if slices.Contains(got, r.ChangesetID) {
					t.Fatalf("receipt %s listed twice in pages of %d", r.ChangesetID, limit)
				}
				got = append(got, r.ChangesetID)
			}
			if len(page) < limit {
				break
			}
			after = next
		}
		if !slices.Equal(got, sets) {
			t.Fatalf("receipts in pages of %d: %v, want %v (newest first)", limit, got, sets)
		}
	}
	r, err := s.ReceiptOf(ctx, sets[4])
	if err != nil || r.ChangesetID != sets[4] || r.DeviceSeq != 1 || r.DeviceID != a.Actor.DeviceID || !r.ReceivedAt.Equal(T0) ||
		r.ContentHash == "" || r.Applied != 1 {
		t.Fatalf("receipt of the first change set %+v, %v", r, err)
	}
	if _, err := s.ReceiptOf(ctx, uuid.NewString()); syncproto.ErrorCode(err) != syncproto.ENotFound {
		t.Fatalf("receipt of an unknown change set: %v", err)
	}
	if page, _, err := s.Receipts(ctx, uuid.NewString(), 0, 10); err != nil || len(page) != 0 {
		t.Fatalf("receipts of an unknown device: %v, %v", page, err)
	}
}

// testBehind: Behind counts, for each position, the records of the actor's
// scope changed after it (each record once, however often it changed; 0:
// every record of the scope), what a pull from there returns.
func testBehind(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	ctx := context.Background()
	dev := NewDevice("admin")
	south, other, north := uuid.NewString(), uuid.NewString(), uuid.NewString()
	dev.Push(t, p, Household(south, SouthVillage, T0))
	atSouth := MustHead(t, s).Seq
	dev.Push(t, p, Household(other, "500240108203", T0))
	atOther := MustHead(t, s).Seq // other's own position: other is not after it
	dev.Push(t, p, Household(north, NorthVillage, T0))
	mid := MustHead(t, s).Seq
	dev.Push(t, p, Upsert("household", south, 1, T0, map[string]any{"members": 6}))
	dev.Push(t, p, Upsert("household", south, 2, T0, map[string]any{"members": 7}), Upsert("household", north, 1, T0, map[string]any{"members": 2}))
	head := MustHead(t, s).Seq
	county := syncproto.Actor{UserID: "w", Scope: []string{"500240"}}
	positions := []int64{0, mid, head, atOther, atSouth}
	got, err := s.Behind(ctx, county, positions)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{2, 1, 0, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("behind for the county %v, want %v", got, want)
	}
	for i, after := range positions {
		records, _ := PullAll(t, s, county, syncproto.Cursor{Seq: after, Scope: county.ScopeKey()}, 10)
		if int64(len(records)) != got[i] {
			t.Fatalf("behind %d after %d, a pull gives %d records", got[i], after, len(records))
		}
	}
	if got, err := s.Behind(ctx, All, []int64{mid, 0}); err != nil || !slices.Equal(got, []int64{2, 3}) {
		t.Fatalf("behind for every region %v, %v", got, err)
	}
	if got, err := s.Behind(ctx, syncproto.Actor{UserID: "nobody"}, []int64{0}); err != nil || !slices.Equal(got, []int64{0}) {
		t.Fatalf("behind for no scope %v, %v", got, err)
	}
}

// mustAccounts returns the store's accounts, which a store of the contract
// keeps beside its records (auth.Accounts), or fails.
func mustAccounts(t *testing.T, s syncproto.Store) auth.Accounts {
	t.Helper()
	a, ok := s.(auth.Accounts)
	if !ok {
		t.Fatalf("the store %T does not implement auth.Accounts", s)
	}
	return a
}
