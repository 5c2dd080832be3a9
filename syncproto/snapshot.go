package syncproto

import (
	"context"

	"github.com/fieldsync/fieldsync/schema"
)

// SnapshotStore is the part of the store contract that serves supervisors'
// snapshots: every record of some entities in a region, as they stood at one
// point of the change log, read as a stream.
type SnapshotStore interface {
	// Snapshot reads the records q asks for that lie in the actor's scope,
	// all in one read transaction, so that the rows show one point of the
	// change log however many change sets commit meanwhile: none of them
	// half. It calls sink.Start once, before any row, with that point (the
	// head of the change log, or q.AsOf), then sink.Row for each record as
	// it is read, entity by entity in the order of q.Entities; it never
	// holds more than a few records in memory.
	//
	// It returns the first error of the sink, the context's error as soon
	// as ctx is done (the transaction is then rolled back), an EInvalid
	// error for an entity the schema lacks (path "entities"), and an
	// EInvalid error with path "as_of" for a q.AsOf ahead of the change log;
	// those two before calling Start.
	Snapshot(ctx context.Context, actor Actor, q SnapshotQuery, sink SnapshotSink) error
}

// SnapshotQuery says what a snapshot holds.
type SnapshotQuery struct {
	// Schema is the set of forms the entities are of: the entities a query
	// may name, and the field by which a record names its parent (Latest,
	// and records rebuilt as of AsOf); schema.V1() when nil. The server
	// passes the schema its pushes are validated against, so that the
	// store keeps none of its own.
	Schema *schema.Schema
	// Entities are the entities whose records the snapshot holds, in this
	// order.
	Entities []string
	// AsOf, when set, asks for the state at that earlier position of the
	// change log instead of the current one: a record is in it if it had a
	// change at or before AsOf.Seq, with its fields, deletion, village,
	// version and last update as they were then. Only Seq is used.
	AsOf *Cursor
	// Tombstones asks for deleted records too. A snapshot is the current
	// survey, so they are left out by default.
	Tombstones bool
	// Latest names entities whose records belong to the snapshot's records
	// (forms whose Parent is the row's entity, such as the inspections of a
	// household): each row carries the latest live one of each, as of the
	// snapshot's point.
	Latest []string
	// LatestBy is the field (a date) that orders those records; ties go to
	// the one updated last, then to the larger id.
	LatestBy string
	// LatestByEntity names, per Latest entity, the field that orders its
	// records when it is not LatestBy (each role's own date field: the
	// housing appraisal's and the water inspection's need not share a
	// name). An entity it lacks is ordered by LatestBy.
	LatestByEntity map[string]string
	// Parents asks for each row's parent record (the household of an
	// inspection: the record its form's Parent field names) as of the
	// snapshot's point, in SnapshotRow.Parent: one lookup per row, so that
	// a table of inspections can show the household's head without the
	// whole region in memory.
	Parents bool
	// RawFields asks for the records' fields as stored (StoredRecord.
	// RawFields) instead of decoded, where the store can: for a sink that
	// only writes the wire form (NDJSON). Rows rebuilt as of an earlier
	// point, and Latest records, still come decoded.
	RawFields bool
}

// SnapshotRow is one record of a snapshot.
type SnapshotRow struct {
	// Record is the record as of the snapshot's point. Its Meta is not
	// read.
	Record StoredRecord
	// Latest holds, for each entity of SnapshotQuery.Latest that has one,
	// the latest record belonging to this one (Meta not read).
	Latest map[string]*StoredRecord
	// Parent is, with SnapshotQuery.Parents, the record this one belongs to
	// (Meta not read); nil for a record without a parent, or whose parent
	// did not exist at the snapshot's point.
	Parent *StoredRecord
}

// SnapshotSink receives a snapshot as the store reads it.
type SnapshotSink interface {
	// Start is called once, before any row, with the point of the change
	// log the snapshot shows. An error stops the snapshot.
	Start(at Cursor) error
	// Row receives one record. An error stops the snapshot and is returned
	// by Snapshot.
	Row(r SnapshotRow) error
}

// LatestField is the field that orders the records of entity, one of
// Latest: its LatestByEntity, else LatestBy.
func (q SnapshotQuery) LatestField(entity string) string {
	if f, ok := q.LatestByEntity[entity]; ok && f != "" {
		return f
	}
	return q.LatestBy
}
