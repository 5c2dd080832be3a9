package syncproto

import (
	"context"
	"encoding/json"
	"time"
)

// SupervisionStore is the part of the store contract behind the
// supervisors' queues: conflicts, quarantine, devices, receipts and
// duplicate households. Every list is bounded by the actor's scope and
// paged by an opaque position (0 from the start). The decisions on them
// (resolve, merge, dismiss, close) are the SupervisionService's: the store
// only offers their write transaction (SupervisionWriter).
type SupervisionStore interface {
	SupervisionWriter
	// ListConflicts returns up to limit conflicts in the actor's scope in
	// the order they were made, after position, optionally of one state.
	ListConflicts(ctx context.Context, actor Actor, state string, after int64, limit int) ([]ConflictEntry, int64, error)
	// Conflict returns one conflict, or ENotFound.
	Conflict(ctx context.Context, id string) (*ConflictEntry, error)
	// ListQuarantine returns rejected changes in the actor's scope,
	// optionally of one state (open, closed).
	ListQuarantine(ctx context.Context, actor Actor, state string, after int64, limit int) ([]QuarantineEntry, int64, error)
	// Devices returns every tablet with its sync state.
	Devices(ctx context.Context) ([]DeviceState, error)
	// Behind counts, for each change-log position of after, the records
	// in the actor's scope changed after it (0: every record of the
	// scope), without reading the change log.
	Behind(ctx context.Context, actor Actor, after []int64) ([]int64, error)
	// NameDevice keeps the name a tablet gave itself at login.
	NameDevice(ctx context.Context, device, name string) error
	// Receipts returns the receipts of a device's change sets, newest
	// first, after position. A listed receipt is its summary: Response and
	// SchemaVersion are not read (PushTx.Receipt reads them).
	Receipts(ctx context.Context, device string, after int64, limit int) ([]Receipt, int64, error)
	// ReceiptOf returns the receipt of one change set, as Receipts lists
	// it, or ENotFound.
	ReceiptOf(ctx context.Context, changesetID string) (*Receipt, error)
	// Head returns the highest position of the change log.
	Head(ctx context.Context) (int64, error)
	// RecordPulls writes the pull positions of devices, all in one
	// transaction; a position never moves a device's back.
	RecordPulls(ctx context.Context, positions []PullPosition) error
	// ListDuplicates returns suspected duplicate households in the
	// actor's scope, optionally of one state.
	ListDuplicates(ctx context.Context, actor Actor, state string) ([]Duplicate, error)
}

// Duplicate and quarantine states, besides StateOpen.
const (
	StateMerged    = "merged"
	StateDismissed = "dismissed"
	StateClosed    = "closed"
)

// QueueDecision is who closed an entry of a supervisors' queue, when, and why.
type QueueDecision struct {
	By, Note string
	At       time.Time
}

// Resolution is a supervisor's decision on a conflict: the value the field
// takes and why.
type Resolution struct {
	ConflictID string
	Value      json.RawMessage
	Note       string
	// OverrideNote is why a deciding role sets a decided value (a
	// household's status lifted_out) without the verdict its write
	// permission requires: stored in the form's override-note field
	// (status_note) by the resolution's version, which is flagged
	// FlagOverride when the verdict did not allow the value. Only a
	// resolution that sets a decided value takes one.
	OverrideNote string
}

// ResolveResult is the outcome of a resolution.
type ResolveResult struct {
	Conflict ConflictEntry
	Record   Record
}

// DeviceState is what the server knows of a tablet's syncing.
type DeviceState struct {
	DeviceID    string
	UserID      string
	UserScope   []string
	UserRole    string
	LastSeq     int64
	LastPushAt  time.Time
	LastPullAt  time.Time
	LastPullSeq int64
	Applied     int
	Merged      int
	Conflicts   int
	Rejected    int
	Revoked     bool
	// Name is the name the tablet gave itself at login, or "".
	Name string
}

// Duplicate is a suspected household registered twice.
type Duplicate struct {
	ID         string
	Village    string
	HouseholdA string // registered first
	HouseholdB string // registered second
	Reason     string
	State      string // open, merged, dismissed
	CreatedAt  time.Time
	DecidedAt  time.Time
	DecidedBy  string
	Survivor   string
	Note       string // the decision's note
	// NameA and NameB are the heads of the two households, for
	// supervisors (personal data: never logged).
	NameA, NameB string
}

// MergeResult is the outcome of merging two households.
type MergeResult struct {
	Duplicate Duplicate
	Survivor  string
	Tombstone string
	Repointed []string // inspections moved to the survivor
}

// PullPosition is how far a device has pulled: seq of the change log, at
// a time, by a user.
type PullPosition struct {
	Device string
	User   string
	Seq    int64
	At     time.Time
}
