package syncproto

import (
	"context"
	"encoding/json"
)

// Store is the contract of fieldsync's database, in domain terms. The
// SQLite store implements it; a PostgreSQL store must implement it too and
// pass the same contract tests (server/storetest).
type Store interface {
	SnapshotStore
	ReportStore
	SupervisionStore
	AttachmentStore
	// ExitStore lists the change log's decided and overridden values.
	ExitStore
	// PushStore is the write of pushes and outbox replays; the
	// PushService drives it.
	PushStore
	// SchemaStore keeps every schema version the server has published.
	SchemaStore
	// RegistryStore keeps the registry imports (other departments'
	// lists) and their rows.
	RegistryStore

	// Pull returns up to limit records in the actor's scope changed after
	// the cursor, oldest change first, each once, with removals of records
	// that left the scope.
	Pull(ctx context.Context, actor Actor, after Cursor, limit int) (PullPage, error)
	// Checksum returns the checksum over (id, version) of every record in
	// the actor's scope (tombstones included, removals not) and the pull
	// position it holds at: the head of the change log, under the actor's
	// scope. It reads maintained sums, not every record.
	Checksum(ctx context.Context, actor Actor) (Checksum, Cursor, error)
	// Record returns the stored record with the id, or ENotFound.
	Record(ctx context.Context, id string) (*StoredRecord, error)
	// History returns the record's entries of the change log, oldest
	// first: every accepted version, and each move with the record it
	// belongs to (op rescope, at the version it moved with).
	History(ctx context.Context, id string) ([]LogEntry, error)
	// Conflicts lists recorded decisions of a record (all records when id
	// is empty) in the order they were made.
	Conflicts(ctx context.Context, recordID string) ([]ConflictEntry, error)
	// Quarantined lists rejected changes of a change set (all when
	// changesetID is empty) in the order they were received.
	Quarantined(ctx context.Context, changesetID string) ([]QuarantineEntry, error)
	// Ping reports whether the store can serve reads and writes.
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// PullPage is one page of a pull: the records, the position after them,
// and whether more follow.
type PullPage struct {
	Records []Record
	Cursor  Cursor
	HasMore bool
}

// WireRecord renders a stored record as the protocol's Record.
func WireRecord(r *StoredRecord) Record {
	out := Record{Entity: r.Entity, ID: r.ID, Version: r.Version, Fields: r.Fields, Deleted: r.Deleted,
		MergedInto: r.MergedInto, UpdatedBy: r.UpdatedBy, RawFields: r.RawFields}
	if out.Fields == nil && out.RawFields == nil {
		out.Fields = map[string]json.RawMessage{}
	}
	if !r.UpdatedAt.IsZero() {
		out.UpdatedAt = FormatTime(r.UpdatedAt)
	}
	return out
}
