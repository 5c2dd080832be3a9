package client

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/syncproto"
)

// These tests need no server: they check what the client does locally.
// The client against a real server is tested in package server
// (client_test.go, client_e2e_test.go).

type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }

func open(t *testing.T, clock *stepClock) (*Client, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "device.db")
	c, err := Open(path, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

func outbox(t *testing.T, c *Client) map[string]syncproto.Change {
	t.Helper()
	rows, err := c.db.Query(`SELECT record_id, entity, op, base_version, fields, at FROM outbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]syncproto.Change{}
	for rows.Next() {
		var ch syncproto.Change
		var fields string
		if err := rows.Scan(&ch.ID, &ch.Entity, &ch.Op, &ch.BaseVersion, &fields, &ch.At); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(fields), &ch.Fields); err != nil {
			t.Fatal(err)
		}
		out[ch.ID] = ch
	}
	return out
}

func TestEditsCoalescePerRecordAndKeepOrder(t *testing.T) {
	clock := &stepClock{t: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)}
	c, _ := open(t, clock)
	ctx := context.Background()
	hh, err := c.Create(ctx, "household", Fields{"village": "500240107201", "head_name": "甲", "members": 3})
	if err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(time.Hour)
	if err := c.Update(ctx, "household", hh, Fields{"members": 4, "status": "in_poverty"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx, "household", hh, Fields{"status": nil}); err != nil {
		t.Fatal(err)
	}
	ob := outbox(t, c)
	ch := ob[hh]
	if len(ob) != 1 || ch.Op != "upsert" || ch.BaseVersion != 0 || string(ch.Fields["members"]) != "4" ||
		string(ch.Fields["status"]) != "null" || string(ch.Fields["head_name"]) != `"甲"` {
		t.Fatalf("outbox after three edits of one record: %+v", ob)
	}
	if ch.At != "2026-11-20T09:00:00.001Z" {
		t.Fatalf("coalesced change at %s, want the last edit's time", ch.At)
	}
	r, err := c.Get(ctx, hh)
	if err != nil || !r.Pending || r.Version != 0 || string(r.Fields["members"]) != "4" {
		t.Fatalf("Get of a pending record: %v %+v", err, r)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Pending != 1 {
		t.Fatalf("status: %v %+v", err, st)
	}
	// The change set takes changes in the order of their first edit.
	ins, err := c.Create(ctx, "water_inspection", Fields{"household_id": hh})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx, "household", hh, Fields{"members": 5}); err != nil {
		t.Fatal(err)
	}
	set, err := c.nextChangeset(ctx)
	if err != nil || set == nil || len(set.cs.Changes) != 2 || set.cs.Changes[0].ID != hh || set.cs.Changes[1].ID != ins ||
		set.cs.DeviceSeq != 1 || set.cs.DeviceID != c.DeviceID() {
		t.Fatalf("change set: %v %+v", err, set)
	}
	again, err := c.nextChangeset(ctx)
	if err != nil || again.id != set.id || string(again.body) != string(set.body) {
		t.Fatal("the change set in flight is not sent again unchanged")
	}
	if len(outbox(t, c)) != 0 {
		t.Fatal("changes in flight still in the outbox")
	}
	// A new edit of a record in flight goes to the outbox, and Get shows it.
	if err := c.Update(ctx, "household", hh, Fields{"members": 6}); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.Get(ctx, hh); string(r.Fields["members"]) != "6" || string(r.Fields["head_name"]) != `"甲"` {
		t.Fatalf("record in flight with a newer edit: %+v", r)
	}
}

func TestCreatedAndDeletedBeforeAPushIsDropped(t *testing.T) {
	c, _ := open(t, &stepClock{t: time.Now()})
	ctx := context.Background()
	id, err := c.Create(ctx, "household", Fields{"head_name": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "household", id); err != nil {
		t.Fatal(err)
	}
	if len(outbox(t, c)) != 0 {
		t.Fatal("a record created and deleted offline is still pending")
	}
	if _, err := c.Get(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: %v", err)
	}
}

func TestEditRefusals(t *testing.T) {
	c, _ := open(t, &stepClock{t: time.Now()})
	ctx := context.Background()
	if err := c.Update(ctx, "household", uuid.NewString(), Fields{"members": 2}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("edit of an unknown record: %v", err)
	}
	if err := c.Update(ctx, "household", "../etc", Fields{"members": 2}); err == nil {
		t.Fatal("edit of a non-UUID id")
	}
	id, _ := c.Create(ctx, "household", Fields{"head_name": "x"})
	if err := c.Update(ctx, "water_inspection", id, Fields{"source": "well"}); err == nil {
		t.Fatal("edit of a household as a water inspection")
	}
	if err := c.Update(ctx, "household", id, Fields{"bad": make(chan int)}); err == nil {
		t.Fatal("a value that is not JSON")
	}
}

// The clock of `at` never goes back, whatever the device clock does, and
// moves past times seen in pulls.
func TestClockNeverGoesBackwards(t *testing.T) {
	clock := &stepClock{t: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)}
	c, path := open(t, clock)
	ctx := context.Background()
	id, _ := c.Create(ctx, "household", Fields{"head_name": "x"})
	at := func() string { return outbox(t, c)[id].At }
	first := at()
	clock.t = clock.t.Add(-3 * time.Hour) // the clock steps back
	if err := c.Update(ctx, "household", id, Fields{"members": 1}); err != nil {
		t.Fatal(err)
	}
	if second := at(); second <= first {
		t.Fatalf("at went from %s to %s", first, second)
	}
	// A pulled record from later moves the clock forward.
	err := c.tx(ctx, func(tx *sql.Tx) error {
		return c.applyPage(ctx, tx, []syncproto.Record{{Entity: "household", ID: uuid.NewString(), Version: 1,
			Fields: map[string]json.RawMessage{}, UpdatedAt: "2026-12-01T00:00:00.000Z"}}, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	// It survives a restart.
	c.Close()
	c2, err := Open(path, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c = c2
	if err := c.Update(ctx, "household", id, Fields{"members": 2}); err != nil {
		t.Fatal(err)
	}
	if got := at(); got != "2026-12-01T00:00:00.001Z" {
		t.Fatalf("at after a pull from 1 December: %s", got)
	}
}
