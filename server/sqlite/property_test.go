package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// offlineEdit is one change set a tablet recorded offline, from the seeded
// version 1 of every record.
type offlineEdit struct {
	device  int
	housing map[string]any
	water   map[string]any
	members *int
	at      time.Time
}

// TestPropertyInterleavingsConverge: several tablets edit the same records
// offline (base version 1) and their change sets arrive in two different
// orders that keep each tablet's own order. For every field whose policy
// decides concurrent edits (lww, safety_first, union) both orders end in the
// same state, the one the policy prescribes; for manual fields the stored
// value is one of the written values and every other one is in an open
// conflict. Every written value is in the current state, the history or a
// recorded conflict.
func TestPropertyInterleavingsConverge(t *testing.T) {
	clock := storetest.NewClock(storetest.T0.Add(24 * time.Hour))
	storeA, storeB := MustOpen(t, clock), MustOpen(t, clock)
	housingForm := schema.V1().Form("housing_inspection")

	rapid.Check(t, func(rt *rapid.T) {
		nDev := rapid.IntRange(2, 4).Draw(rt, "devices")
		hh, ins, wat := uuid.NewString(), uuid.NewString(), uuid.NewString()
		seed := []syncproto.Change{storetest.Household(hh, storetest.SouthVillage, storetest.T0),
			storetest.HousingInspection(ins, hh, "B", storetest.T0), storetest.WaterInspection(wat, hh, storetest.T0)}
		seeder := storetest.NewDevice("seed")
		seedCS := seeder.Changeset(seed...)
		for _, s := range []*Store{storeA, storeB} {
			if _, err := pushes(s).Push(context.Background(), seeder.Actor, seedCS); err != nil {
				rt.Fatal(err)
			}
		}

		devices := make([]syncproto.Actor, nDev)
		var edits [][]offlineEdit
		// Device ids are fresh (device_seq starts anew) but their order,
		// which breaks lww ties, is drawn, so that a failure reproduces.
		ranks := rapid.Permutation([]int{0, 1, 2, 3}[:nDev]).Draw(rt, "device order")
		for d := 0; d < nDev; d++ {
			devices[d] = syncproto.Actor{UserID: fmt.Sprintf("worker-%d", d), AllRegions: true,
				DeviceID: fmt.Sprint(ranks[d]) + uuid.NewString()[1:]}
			n := rapid.IntRange(1, 3).Draw(rt, "changesets")
			var seq []offlineEdit
			usedOnce := map[string]bool{} // safety_first and union fields: once per device
			at := storetest.T0.Add(time.Duration(rapid.IntRange(1, 600).Draw(rt, "start")) * time.Second)
			for k := 0; k < n; k++ {
				at = at.Add(time.Duration(rapid.IntRange(1, 600).Draw(rt, "step")) * time.Second)
				e := offlineEdit{device: d, housing: map[string]any{}, water: map[string]any{}, at: at}
				// A tablet sends only what it changed: a device's first write
				// of a field differs from the seeded value it started from
				// (renovation "none", fetch 5, grade B, quality true,
				// hazards [roof], members 5). Later lww writes may revert.
				if rapid.Bool().Draw(rt, "renovation?") {
					choices := []string{"planned", "in_progress", "completed"}
					if usedOnce["renovation"] {
						choices = append(choices, "none")
					}
					e.housing["renovation"] = rapid.SampledFrom(choices).Draw(rt, "renovation")
					usedOnce["renovation"] = true
				}
				if rapid.Bool().Draw(rt, "fetch?") {
					f := rapid.IntRange(6, 90).Draw(rt, "fetch")
					if usedOnce["fetch"] && rapid.Bool().Draw(rt, "fetch revert?") {
						f = 5
					}
					e.water["fetch_minutes"] = f
					usedOnce["fetch"] = true
				}
				if !usedOnce["grade"] && rapid.Bool().Draw(rt, "grade?") {
					e.housing["grade"] = rapid.SampledFrom([]string{"A", "C", "D"}).Draw(rt, "grade")
					usedOnce["grade"] = true
				}
				if !usedOnce["quality"] && rapid.Bool().Draw(rt, "quality?") {
					e.water["quality_ok"] = false
					usedOnce["quality"] = true
				}
				if !usedOnce["hazards"] && rapid.Bool().Draw(rt, "hazards?") {
					e.housing["hazards"] = rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"walls", "foundation", "ventilation"}), 1, 3, rapid.ID[string]).Draw(rt, "hazards")
					usedOnce["hazards"] = true
				}
				if !usedOnce["members"] && rapid.Bool().Draw(rt, "members?") {
					m := rapid.IntRange(6, 12).Draw(rt, "members")
					e.members = &m
					usedOnce["members"] = true
				}
				seq = append(seq, e)
			}
			edits = append(edits, seq)
		}

		// Two arrival orders, each keeping every device's own order.
		var tokens []int
		for d, seq := range edits {
			for range seq {
				tokens = append(tokens, d)
			}
		}
		orderA := rapid.Permutation(tokens).Draw(rt, "orderA")
		orderB := rapid.Permutation(tokens).Draw(rt, "orderB")
		seqNo := make([]int64, nDev)
		changesets := make([][]syncproto.Changeset, nDev)
		for d, seq := range edits {
			for _, e := range seq {
				var changes []syncproto.Change
				if len(e.housing) > 0 {
					changes = append(changes, storetest.Upsert("housing_inspection", ins, 1, e.at, e.housing))
				}
				if len(e.water) > 0 {
					changes = append(changes, storetest.Upsert("water_inspection", wat, 1, e.at, e.water))
				}
				if e.members != nil {
					changes = append(changes, storetest.Upsert("household", hh, 1, e.at, map[string]any{"members": *e.members}))
				}
				if len(changes) == 0 {
					changes = append(changes, storetest.Upsert("household", hh, 1, e.at, map[string]any{"head_name": "陈秀英"}))
				}
				seqNo[d]++
				changesets[d] = append(changesets[d], syncproto.Changeset{ChangesetID: uuid.NewString(),
					DeviceID: devices[d].DeviceID, DeviceSeq: seqNo[d], SchemaVersion: 1, Changes: changes})
			}
		}
		apply := func(s *Store, order []int) {
			next := make([]int, nDev)
			for _, d := range order {
				cs := changesets[d][next[d]]
				next[d]++
				if _, err := pushes(s).Push(context.Background(), devices[d], cs); err != nil {
					rt.Fatalf("push: %v", err)
				}
			}
		}
		apply(storeA, orderA)
		apply(storeB, orderB)

		// The model: what each policy prescribes over all concurrent writes.
		type write struct {
			value  string
			at     time.Time
			device string
		}
		writes := map[string][]write{}
		record := func(field string, v any, e offlineEdit) {
			b, _ := json.Marshal(v)
			fd := housingForm.Field(field)
			if fd == nil {
				fd = schema.V1().Form("water_inspection").Field(field)
			}
			norm, ferr := fd.Normalize(b)
			if ferr != nil {
				rt.Fatalf("generated invalid %s: %v", field, ferr)
			}
			writes[field] = append(writes[field], write{string(norm), e.at, devices[e.device].DeviceID})
		}
		for _, seq := range edits {
			for _, e := range seq {
				for k, v := range e.housing {
					record(k, v, e)
				}
				for k, v := range e.water {
					record(k, v, e)
				}
			}
		}
		expect := map[string]string{}
		for field, ws := range writes {
			switch field {
			case "renovation", "fetch_minutes": // lww: latest device time, ties by device id
				best := ws[0]
				for _, w := range ws[1:] {
					if w.at.After(best.at) || w.at.Equal(best.at) && w.device > best.device {
						best = w
					}
				}
				expect[field] = best.value
			case "grade", "quality_ok": // safety_first
				fd := housingForm.Field("grade")
				if field == "quality_ok" {
					fd = schema.V1().Form("water_inspection").Field("quality_ok")
				}
				best := ws[0].value
				for _, w := range ws[1:] {
					if fd.Rank(json.RawMessage(w.value)) > fd.Rank(json.RawMessage(best)) {
						best = w.value
					}
				}
				expect[field] = best
			case "hazards": // union
				set := map[string]bool{}
				for _, w := range ws {
					var items []string
					_ = json.Unmarshal([]byte(w.value), &items)
					for _, it := range items {
						set[it] = true
					}
				}
				items := []string{}
				for it := range set {
					items = append(items, it)
				}
				sort.Strings(items)
				b, _ := json.Marshal(items)
				expect[field] = string(b)
			}
		}
		for _, s := range []*Store{storeA, storeB} {
			hRec, _ := s.Record(context.Background(), ins)
			wRec, _ := s.Record(context.Background(), wat)
			for field, want := range expect {
				got := string(hRec.Fields[field])
				if _, ok := wRec.Fields[field]; ok && housingForm.Field(field) == nil {
					got = string(wRec.Fields[field])
				}
				if got != want {
					rt.Fatalf("%s = %s, want %s (orders %v / %v)", field, got, want, orderA, orderB)
				}
			}
		}

		// Manual: the stored value is one of the writes; every other write
		// is in an open conflict.
		var members []string
		for _, seq := range edits {
			for _, e := range seq {
				if e.members != nil {
					members = append(members, fmt.Sprint(*e.members))
				}
			}
		}
		if len(members) > 0 {
			for _, s := range []*Store{storeA, storeB} {
				rec, _ := s.Record(context.Background(), hh)
				got := string(rec.Fields["members"])
				conflicts, _ := s.Conflicts(context.Background(), hh)
				inConflict := map[string]bool{}
				for _, c := range conflicts {
					if c.Field == "members" && c.State == syncproto.StateOpen {
						inConflict[string(c.Incoming)] = true
					}
				}
				found := false
				for _, m := range members {
					found = found || m == got
					if m != got && !inConflict[m] {
						rt.Fatalf("members=%s written but neither stored (%s) nor in an open conflict", m, got)
					}
				}
				if !found {
					rt.Fatalf("members=%s is none of the written values %v", got, members)
				}
			}
		}

		// Nothing written is lost without a trace.
		for _, id := range []string{ins, wat} {
			hist, _ := storeA.History(context.Background(), id)
			conflicts, _ := storeA.Conflicts(context.Background(), id)
			traced := map[string]bool{}
			for _, h := range hist {
				for f, c := range h.Changes {
					traced[f+"="+string(c.After)] = true
				}
			}
			for _, c := range conflicts {
				traced[c.Field+"="+string(c.Incoming)] = true
			}
			for field, ws := range writes {
				for _, w := range ws {
					key := field + "=" + w.value
					if (id == ins) == (housingForm.Field(field) != nil) && !traced[key] {
						rt.Fatalf("write %s left no trace in history or conflicts", key)
					}
				}
			}
		}
	})
}
