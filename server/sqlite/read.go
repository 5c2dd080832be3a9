package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fieldsync/fieldsync/syncproto"
)

const recordQuery = `SELECT id, entity, version, village, COALESCE(parent_id, ''), fields, meta, deleted,
	COALESCE(merged_into, ''), updated_at, updated_by, updated_device FROM records`

type rowScanner interface{ Scan(dest ...any) error }

// scanRecord reads one row of recordQuery; it returns nil, nil when there is
// no row.
func scanRecord(row rowScanner) (*syncproto.StoredRecord, error) {
	var r syncproto.StoredRecord
	var fields, meta, updated string
	err := row.Scan(&r.ID, &r.Entity, &r.Version, &r.Village, &r.Parent, &fields, &meta, &r.Deleted,
		&r.MergedInto, &updated, &r.UpdatedBy, &r.UpdatedDevice)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read record: %w", err)
	}
	if err := json.Unmarshal([]byte(fields), &r.Fields); err != nil {
		return nil, fmt.Errorf("record %s fields: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(meta), &r.Meta); err != nil {
		return nil, fmt.Errorf("record %s meta: %w", r.ID, err)
	}
	r.UpdatedAt = parseTime(updated)
	return &r, nil
}

// scopeClause returns an SQL condition on column restricting it to the
// division-code prefixes of scope, and its arguments. An empty scope is
// every region.
func scopeClause(column string, scope []string) (string, []any) {
	if len(scope) == 0 {
		return "1", nil
	}
	parts := make([]string, len(scope))
	args := make([]any, 0, 2*len(scope))
	for i, p := range scope {
		parts[i] = fmt.Sprintf("substr(%s, 1, ?) = ?", column)
		args = append(args, len(p), p)
	}
	return "(" + strings.Join(parts, " OR ") + ")", args
}

// Pull returns up to limit records in the actor's scope whose last change
// is after the position `after`, in change order. The page is read in one
// read transaction; when it is the last page, the cursor moves to the head
// of the change log as seen by that transaction, so a tablet whose scope saw
// no change does not re-scan the same range.
func (s *Store) Pull(ctx context.Context, actor syncproto.Actor, after int64, limit int) (syncproto.PullPage, error) {
	var page syncproto.PullPage
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return page, fmt.Errorf("begin pull: %w", err)
	}
	defer tx.Rollback()
	h, err := head(ctx, tx)
	if err != nil {
		return page, err
	}
	if after > h {
		return page, &syncproto.Error{Code: syncproto.EInvalid, Title: "Cursor ahead of the server",
			Message: "the cursor is ahead of this server's change log (was the server restored from a backup?); pull again from the beginning",
			Errors:  []syncproto.FieldError{{Path: "cursor", Message: "is ahead of the server"}}}
	}
	where, args := scopeClause("village", actor.Scope)
	args = append([]any{after}, args...)
	args = append(args, limit+1)
	rows, err := tx.QueryContext(ctx, `SELECT id, entity, version, fields, deleted, COALESCE(merged_into, ''),
		updated_at, updated_by, seq FROM records WHERE seq > ? AND `+where+` ORDER BY seq LIMIT ?`, args...)
	if err != nil {
		return page, fmt.Errorf("pull: %w", err)
	}
	defer rows.Close()
	page.Cursor = after
	for rows.Next() {
		if len(page.Records) == limit {
			page.HasMore = true
			break
		}
		var r syncproto.Record
		var fields, updated string
		var seq int64
		if err := rows.Scan(&r.ID, &r.Entity, &r.Version, &fields, &r.Deleted, &r.MergedInto, &updated,
			&r.UpdatedBy, &seq); err != nil {
			return page, fmt.Errorf("pull: %w", err)
		}
		if err := json.Unmarshal([]byte(fields), &r.Fields); err != nil {
			return page, fmt.Errorf("pull %s: %w", r.ID, err)
		}
		r.UpdatedAt = syncproto.FormatTime(parseTime(updated))
		page.Records = append(page.Records, r)
		page.Cursor = seq
	}
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("pull: %w", err)
	}
	if !page.HasMore {
		page.Cursor = h
	}
	return page, nil
}

// Record returns the stored record with the id, or an ENotFound error.
func (s *Store) Record(ctx context.Context, id string) (*syncproto.StoredRecord, error) {
	r, err := scanRecord(s.reader.QueryRowContext(ctx, recordQuery+` WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, syncproto.Errorf(syncproto.ENotFound, "no record with id %s", id)
	}
	return r, nil
}

// History returns every accepted version of a record, oldest first.
func (s *Store) History(ctx context.Context, id string) ([]syncproto.LogEntry, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT seq, entity, record_id, version, op, COALESCE(changeset_id, ''),
		user_id, device_id, device_at, server_at, flags, diff, conflict_ids FROM changes
		WHERE record_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer rows.Close()
	var out []syncproto.LogEntry
	for rows.Next() {
		var e syncproto.LogEntry
		var devAt, srvAt, flags, diff, cids string
		if err := rows.Scan(&e.Seq, &e.Entity, &e.RecordID, &e.Version, &e.Op, &e.ChangesetID, &e.UserID,
			&e.DeviceID, &devAt, &srvAt, &flags, &diff, &cids); err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		e.DeviceAt, e.ServerAt = parseTime(devAt), parseTime(srvAt)
		if err := errors.Join(json.Unmarshal([]byte(flags), &e.Flags), json.Unmarshal([]byte(diff), &e.Changes),
			json.Unmarshal([]byte(cids), &e.ConflictIDs)); err != nil {
			return nil, fmt.Errorf("history %s: %w", id, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Conflicts lists the recorded decisions of a record, or of every record
// when recordID is empty, in the order they were made.
func (s *Store) Conflicts(ctx context.Context, recordID string) ([]syncproto.ConflictEntry, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT id, entity, record_id, village, field, policy, stored, incoming,
		kept, state, changeset_id, device_id, user_id, device_at, created_at, version FROM conflicts
		WHERE ? = '' OR record_id = ? ORDER BY rowid`, recordID, recordID)
	if err != nil {
		return nil, fmt.Errorf("conflicts: %w", err)
	}
	defer rows.Close()
	var out []syncproto.ConflictEntry
	for rows.Next() {
		var c syncproto.ConflictEntry
		var stored, incoming, kept, devAt, created string
		if err := rows.Scan(&c.ID, &c.Entity, &c.RecordID, &c.Village, &c.Field, &c.Policy, &stored, &incoming,
			&kept, &c.State, &c.ChangesetID, &c.DeviceID, &c.UserID, &devAt, &created, &c.Version); err != nil {
			return nil, fmt.Errorf("conflicts: %w", err)
		}
		c.Stored, c.Incoming, c.Kept = json.RawMessage(stored), json.RawMessage(incoming), json.RawMessage(kept)
		c.DeviceAt, c.CreatedAt = parseTime(devAt), parseTime(created)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Quarantined lists the rejected changes of a change set, or all when
// changesetID is empty, in the order they were received.
func (s *Store) Quarantined(ctx context.Context, changesetID string) ([]syncproto.QuarantineEntry, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT id, changeset_id, device_id, user_id, entity, record_id, village,
		errors, raw, received_at FROM quarantine WHERE ? = '' OR changeset_id = ? ORDER BY rowid`,
		changesetID, changesetID)
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	defer rows.Close()
	var out []syncproto.QuarantineEntry
	for rows.Next() {
		var q syncproto.QuarantineEntry
		var errs, raw, received string
		if err := rows.Scan(&q.ID, &q.ChangesetID, &q.DeviceID, &q.UserID, &q.Entity, &q.RecordID, &q.Village,
			&errs, &raw, &received); err != nil {
			return nil, fmt.Errorf("quarantine: %w", err)
		}
		if err := json.Unmarshal([]byte(errs), &q.Errors); err != nil {
			return nil, fmt.Errorf("quarantine %s: %w", q.ID, err)
		}
		q.Raw, q.ReceivedAt = json.RawMessage(raw), parseTime(received)
		out = append(out, q)
	}
	return out, rows.Err()
}
