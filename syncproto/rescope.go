package syncproto

import "context"

// Placement is where a record stands: the village that scopes it and its
// current version.
type Placement struct {
	Entity  string
	ID      string
	Version int64
	Village string
}

// OpRescope is the change-log op of a record that moved village with the
// record it belongs to, without a version of its own.
const OpRescope = "rescope"

// writeVersion stores rec as a new version (tx.WriteVersion) and applies
// the rescope rule: when the record changed village (prior is what it was
// before, nil for a new record), the records that belong to it (a
// household's inspections) follow it to the new village.
func writeVersion(ctx context.Context, tx PushTx, prior, rec *StoredRecord, entry LogEntry) error {
	if _, err := tx.WriteVersion(ctx, rec, entry); err != nil {
		return err
	}
	if prior == nil || prior.Village == rec.Village {
		return nil
	}
	return rescopeChildren(ctx, tx, rec, entry)
}

// rescopeChildren moves the records that belong to rec and stand in
// another village to rec's village. Each move is a log entry of its own
// (op "rescope", the child's version, a new sequence), made by the same
// change set, user, device and times as entry, so that tablets of the new
// village pull the children and tablets of the old one are told they left.
// A moved child is not a new version: nothing in it changed but its scope.
func rescopeChildren(ctx context.Context, tx PushTx, rec *StoredRecord, entry LogEntry) error {
	children, err := tx.ChildPlacements(ctx, rec.ID)
	if err != nil {
		return err
	}
	for _, c := range children {
		if c.Village == rec.Village {
			continue
		}
		move := LogEntry{Entity: c.Entity, RecordID: c.ID, Version: c.Version, Op: OpRescope,
			ChangesetID: entry.ChangesetID, UserID: entry.UserID, DeviceID: entry.DeviceID,
			DeviceAt: entry.DeviceAt, ServerAt: entry.ServerAt}
		if err := tx.Rescope(ctx, c, rec.Village, move); err != nil {
			return err
		}
	}
	return nil
}
