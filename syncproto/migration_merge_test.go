package syncproto_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/migrationtest"
	"github.com/fieldsync/fieldsync/syncproto"
	"pgregory.net/rapid"
)

// stored is the record an outcome leaves, as the store would hold it.
func stored(out syncproto.Outcome) *syncproto.StoredRecord {
	return &syncproto.StoredRecord{Version: out.Version, Fields: out.Fields, Meta: out.Meta, Deleted: out.Deleted}
}

// mergeAll creates a record from base and merges the edits a and b into
// it by the form's real per-field merge, each with its own device, time
// and base version; false when one is rejected. With r (the edits were
// migrated from an older version), each merge is followed by the push's
// derivation of the derived fields from their merged sources.
func mergeAll(form *schema.Form, r *schema.Rederivation, base, a, b map[string]json.RawMessage, edits [3]syncproto.Incoming) (map[string]json.RawMessage, bool) {
	var rec *syncproto.StoredRecord
	for i, fields := range []map[string]json.RawMessage{base, a, b} {
		in := edits[i]
		in.Op, in.Fields = syncproto.OpUpsert, fields
		out := syncproto.Merge(form, rec, in)
		out = syncproto.RederiveMerged(r, form.Entity, rec, fields, out)
		if out.Status == syncproto.StatusRejected {
			return nil, false
		}
		rec = stored(out)
	}
	return rec.Fields, true
}

// Merge commutes with migration: for a record created under the older
// version and two random edits a and b of it (concurrent or not, from one
// device or two), migrating the merged record gives what merging the
// migrated changes under the newer version gives — derived fields
// included, derived again from their merged sources as the push does —
// but for fields whose map folds values and fields derived from a dropped
// source (see below).
func TestMergeCommutesWithMigration(t *testing.T) {
	t0 := time.Date(2027, 1, 20, 8, 0, 0, 0, time.UTC)
	const devA, devB, devX = "0193a000-0000-7000-8000-00000000000a", "0193a000-0000-7000-8000-00000000000b", "0193a000-0000-7000-8000-00000000000c"
	rapid.Check(t, func(t *rapid.T) {
		d := migrationtest.DrawMigration(t, schema.V1())
		entity := rapid.SampledFrom(d.From.Entities()).Draw(t, "entity")
		older, newer := d.From.Form(entity), d.To.Form(entity)
		base := migrationtest.DrawRecord(t, older, true)
		a := migrationtest.DrawRecord(t, older, false)
		b := migrationtest.DrawRecord(t, older, false)
		at := func(label string) time.Time {
			return t0.Add(time.Duration(rapid.IntRange(1, 3).Draw(t, label)) * time.Minute)
		}
		edits := [3]syncproto.Incoming{
			{BaseVersion: 0, Device: devX, At: t0},
			{BaseVersion: 1, Device: devA, At: at("a at")},
			{BaseVersion: int64(rapid.IntRange(1, 2).Draw(t, "b's base")), Device: rapid.SampledFrom([]string{devA, devB}).Draw(t, "b's device"), At: at("b at")},
		}

		merged, ok := mergeAll(older, nil, base, a, b, edits)
		if !ok {
			return
		}
		left, _, err := d.Migration.Up(entity, merged, true)
		if err != nil {
			t.Fatalf("Up(merge): %v", err)
		}

		var up [3]map[string]json.RawMessage
		for i, fields := range []map[string]json.RawMessage{base, a, b} {
			if up[i], _, err = d.Migration.Up(entity, fields, i == 0); err != nil {
				t.Fatalf("Up(%v): %v", fields, err)
			}
		}
		right, ok := mergeAll(newer, d.Migration.Rederivation(), up[0], up[1], up[2], edits)
		if !ok {
			return
		}
		// Where the two cannot agree, the fields are left out: a field
		// whose map folds values (an edit between two folded values is no
		// edit in the newer version, and a concurrent one wins), and a
		// derived field whose source the newer version drops (the record
		// no longer holds the source to derive it again from, so it is
		// merged on its own). A derived field whose source stays follows
		// the merged source (RederiveMerged) and must agree.
		for _, f := range []map[string]json.RawMessage{left, right} {
			if d.Migration.Rederivation().Derived(entity)["derived_"+entity] == "" {
				delete(f, "derived_"+entity)
			}
			for name := range d.Folded[entity] {
				delete(f, name)
			}
		}
		if !reflect.DeepEqual(left, right) {
			t.Fatalf("steps %s\nbase %v\na %v\nb %v (base %d, %s)\nUp(merge) %v\nmerge(Up) %v",
				d.Steps, base, a, b, edits[2].BaseVersion, edits[2].Device, left, right)
		}
	})
}
