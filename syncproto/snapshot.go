package syncproto

// SnapshotStore is the part of the store contract that serves supervisors'
// snapshots.
type SnapshotStore interface{}
