package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync/syncproto"
)

var _ syncproto.SupervisionStore = (*Store)(nil)

const conflictColumns = `rowid, id, entity, record_id, village, field, policy, stored, incoming, kept, state,
	changeset_id, device_id, user_id, device_at, created_at, version, COALESCE(resolved_at, ''),
	COALESCE(resolved_by, ''), COALESCE(resolved_device, ''), COALESCE(resolution, ''),
	COALESCE(resolution_note, ''), COALESCE(resolved_version, 0), ` + conflictHousehold + `, ` + conflictDepartments

// conflictHousehold is the head name of the household a conflict's record
// is or belongs to (” when it has none).
const conflictHousehold = `COALESCE((SELECT json_extract(h.fields, '$.head_name') FROM records r
	JOIN records h ON h.id = CASE WHEN r.entity = 'household' THEN r.id ELSE r.parent_id END
	WHERE r.id = conflicts.record_id), '')`

// conflictDepartments are the departments of a conflict's two sides: the
// incoming change's (a registry's from its user, else the change log entry
// its change set wrote, else its user's) and the stored value's (the
// latest change log entry of the record that changed the field before the
// incoming change: a lower version, or the same version from another
// change set when the incoming change made none; else its user's).
const conflictDepartments = `CASE WHEN conflicts.user_id LIKE 'department:%' THEN substr(conflicts.user_id, 12) ELSE
	COALESCE((SELECT NULLIF(c.department, '') FROM changes c WHERE c.record_id = conflicts.record_id
		AND c.changeset_id = conflicts.changeset_id ORDER BY c.seq DESC LIMIT 1),
		(SELECT u.department FROM users u WHERE u.name = conflicts.user_id), '') END,
	COALESCE((SELECT COALESCE(NULLIF(c.department, ''), (SELECT u.department FROM users u WHERE u.name = c.user_id), '')
		FROM changes c WHERE c.record_id = conflicts.record_id
		AND json_type(c.diff, '$."' || conflicts.field || '"') IS NOT NULL
		AND (c.version < conflicts.version OR (c.version = conflicts.version AND c.changeset_id IS NOT conflicts.changeset_id))
		ORDER BY c.seq DESC LIMIT 1), '')`

func scanConflict(row rowScanner) (syncproto.ConflictEntry, int64, error) {
	var c syncproto.ConflictEntry
	var pos int64
	var stored, incoming, kept, devAt, created, resAt, resBy, resDev, resValue, resNote string
	var resVersion int64
	err := row.Scan(&pos, &c.ID, &c.Entity, &c.RecordID, &c.Village, &c.Field, &c.Policy, &stored, &incoming, &kept,
		&c.State, &c.ChangesetID, &c.DeviceID, &c.UserID, &devAt, &created, &c.Version, &resAt, &resBy, &resDev,
		&resValue, &resNote, &resVersion, &c.HouseholdName, &c.Department, &c.StoredDepartment)
	if err != nil {
		return c, 0, err
	}
	c.Stored, c.Incoming, c.Kept = json.RawMessage(stored), json.RawMessage(incoming), json.RawMessage(kept)
	c.DeviceAt, c.CreatedAt = parseTime(devAt), parseTime(created)
	if resAt != "" {
		c.Resolved = &syncproto.ResolvedConflict{By: resBy, Device: resDev, Note: resNote, Value: json.RawMessage(resValue),
			Version: resVersion, At: parseTime(resAt)}
	}
	return c, pos, nil
}

// ListConflicts returns up to limit conflicts in the actor's scope after
// position, in the order they were made, optionally of one state.
func (s *Store) ListConflicts(ctx context.Context, actor syncproto.Actor, state string, after int64, limit int) ([]syncproto.ConflictEntry, int64, error) {
	where, args := scopeClause("village", actor)
	args = append([]any{after, state, state}, args...)
	rows, err := s.reader.QueryContext(ctx, `SELECT `+conflictColumns+` FROM conflicts
		WHERE rowid > ? AND (? = '' OR state = ?) AND `+where+` ORDER BY rowid LIMIT ?`, append(args, limit)...)
	list, err := collect(rows, err, "conflicts", func(r rowScanner) (positioned[syncproto.ConflictEntry], error) {
		c, pos, err := scanConflict(r)
		return positioned[syncproto.ConflictEntry]{c, pos}, err
	})
	out, next := unposition(list, after)
	return out, next, err
}

// Conflict returns one conflict, or ENotFound.
func (s *Store) Conflict(ctx context.Context, id string) (*syncproto.ConflictEntry, error) {
	c, _, err := scanConflict(s.reader.QueryRowContext(ctx, `SELECT `+conflictColumns+` FROM conflicts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, syncproto.Errorf(syncproto.ENotFound, "no conflict %s", id)
	}
	if err != nil {
		return nil, fmt.Errorf("conflict: %w", err)
	}
	return &c, nil
}

// superviseTx is a write transaction for supervisors' decisions.
type superviseTx struct{ pushTx }

func (p *superviseTx) Conflict(ctx context.Context, id string) (*syncproto.ConflictEntry, error) {
	c, _, err := scanConflict(p.queryRow(ctx, `SELECT `+conflictColumns+` FROM conflicts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("conflict: %w", err)
	}
	return &c, nil
}

func (p *superviseTx) MarkResolved(ctx context.Context, id string, c syncproto.ConflictEntry) error {
	r := c.Resolved
	_, err := p.exec(ctx, `UPDATE conflicts SET state = ?, resolved_at = ?, resolved_by = ?, resolved_device = ?,
		resolution = ?, resolution_note = ?, resolved_version = ? WHERE id = ?`,
		c.State, formatTime(r.At), r.By, r.Device, string(r.Value), r.Note, r.Version, id)
	if err != nil {
		return fmt.Errorf("resolve conflict: %w", err)
	}
	return nil
}

func (p *superviseTx) Duplicate(ctx context.Context, id string) (*syncproto.Duplicate, error) {
	d, err := scanDuplicate(p.queryRow(ctx, `SELECT `+duplicateColumns+` FROM duplicates WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("duplicate: %w", err)
	}
	return &d, nil
}

func (p *superviseTx) MarkDecided(ctx context.Context, d syncproto.Duplicate) error {
	_, err := p.exec(ctx, `UPDATE duplicates SET state = ?, decided_at = ?, decided_by = ?, survivor = ?, note = ? WHERE id = ?`,
		d.State, formatTime(d.DecidedAt), d.DecidedBy, nullString(d.Survivor), d.Note, d.ID)
	if err != nil {
		return fmt.Errorf("decide duplicate: %w", err)
	}
	return nil
}

func (p *superviseTx) OpenConflicts(ctx context.Context, recordID string) ([]syncproto.ConflictEntry, error) {
	rows, err := p.query(ctx, `SELECT `+conflictColumns+` FROM conflicts WHERE record_id = ? AND state = ? ORDER BY rowid`,
		recordID, syncproto.StateOpen)
	return collect(rows, err, "open conflicts", func(r rowScanner) (syncproto.ConflictEntry, error) {
		c, _, err := scanConflict(r)
		return c, err
	})
}

func (p *superviseTx) QuarantineEntry(ctx context.Context, id string) (*syncproto.QuarantineEntry, error) {
	q, err := scanQuarantine(p.queryRow(ctx, `SELECT `+quarantineColumns+` FROM quarantine WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("quarantine entry: %w", err)
	}
	return &q.entry, nil
}

func (p *superviseTx) MarkClosed(ctx context.Context, q syncproto.QuarantineEntry) error {
	_, err := p.exec(ctx, `UPDATE quarantine SET state = ?, closed_at = ?, closed_by = ?, close_note = ? WHERE id = ?`,
		q.State, formatTime(q.Closed.At), q.Closed.By, q.Closed.Note, q.ID)
	if err != nil {
		return fmt.Errorf("close quarantine entry: %w", err)
	}
	return nil
}

func (p *superviseTx) Children(ctx context.Context, id string) ([]*syncproto.StoredRecord, error) {
	rows, err := p.query(ctx, recordQuery+` WHERE parent_id = ? ORDER BY seq`, id)
	return collect(rows, err, "children", scanStored)
}

// SimilarHouseholds returns the live households of a village, other than
// id, with the same registration number or the same head name.
func (p *pushTx) SimilarHouseholds(ctx context.Context, village, id, regNo, name string) ([]*syncproto.StoredRecord, error) {
	// Two lookups through the expression indexes of migration 5
	// (households_regno, households_head), not a scan of the village.
	rows, err := p.query(ctx, recordQuery+` WHERE id IN (
		SELECT id FROM records WHERE village = ? AND entity = 'household' AND ? <> ''
			AND json_extract(fields, '$.registration_no') = ?
		UNION ALL
		SELECT id FROM records WHERE village = ? AND entity = 'household' AND ? <> ''
			AND json_extract(fields, '$.head_name') = ?)
		AND id <> ? AND deleted = 0 ORDER BY seq LIMIT 20`, village, regNo, regNo, village, name, name, id)
	return collect(rows, err, "similar households", scanStored)
}

// AddDuplicate records a suspected duplicate, once per pair.
func (p *pushTx) AddDuplicate(ctx context.Context, d syncproto.Duplicate) error {
	_, err := p.exec(ctx, `INSERT INTO duplicates (id, village, household_a, household_b, reason, state, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (household_a, household_b) DO NOTHING`,
		d.ID, d.Village, d.HouseholdA, d.HouseholdB, d.Reason, d.State, formatTime(d.CreatedAt))
	if err != nil {
		return fmt.Errorf("add duplicate: %w", err)
	}
	return nil
}

// write runs fn in one IMMEDIATE write transaction, committed durably; a
// full disk or a lock held too long is EUnavailable (see writeError), and
// so is a write asked for after Close began. op names the operation for
// the write observer. fn's context is ctx without its cancellation: a
// caller that goes away does not cut a decision in half.
func (s *Store) write(ctx context.Context, op string, fn func(context.Context, *superviseTx) error) error {
	return s.whileOpen(func() error { return s.writeNow(context.WithoutCancel(ctx), op, fn) })
}

// writeNow is write once the store is known to be open.
func (s *Store) writeNow(ctx context.Context, op string, fn func(context.Context, *superviseTx) error) error {
	tx, err := s.beginWrite(ctx, op)
	if err != nil {
		return writeError(fmt.Errorf("begin: %w", err))
	}
	defer tx.Rollback()
	stx := &superviseTx{pushTx{tx: tx, book: syncproto.NewSummaryBook(s.summaries.Load())}}
	if err := fn(ctx, stx); err != nil {
		return writeError(err)
	}
	if err := s.keepSummaries(ctx, &stx.pushTx); err != nil {
		return writeError(err)
	}
	if err := s.commit(tx); err != nil {
		return writeError(fmt.Errorf("commit: %w", err))
	}
	return nil
}

var _ syncproto.SupervisionWriter = (*Store)(nil)

// WriteSupervision runs fn, one supervisor's decision of the
// SupervisionService, in one durable write transaction on the single
// writer (see write): an error of fn or of the commit keeps nothing.
func (s *Store) WriteSupervision(ctx context.Context, op string, fn func(context.Context, syncproto.SuperviseTx) error) error {
	return s.write(ctx, op, func(ctx context.Context, tx *superviseTx) error { return fn(ctx, tx) })
}

// ListQuarantine returns the rejected changes in the actor's scope after
// position, optionally of one state. A change whose village could not be
// told (an unknown household) is kept under the pushing user's scope when
// that was a single prefix.
func (s *Store) ListQuarantine(ctx context.Context, actor syncproto.Actor, state string, after int64, limit int) ([]syncproto.QuarantineEntry, int64, error) {
	where, args := scopeClause("village", actor)
	rows, err := s.reader.QueryContext(ctx, `SELECT `+quarantineColumns+` FROM quarantine
		WHERE rowid > ? AND (? = '' OR state = ?) AND `+where+` ORDER BY rowid LIMIT ?`,
		append(append([]any{after, state, state}, args...), limit)...)
	list, err := collect(rows, err, "quarantine", scanQuarantine)
	out, next := unposition(list, after)
	return out, next, err
}

// Devices returns every tablet with its sync state and its user.
func (s *Store) Devices(ctx context.Context) ([]syncproto.DeviceState, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT d.device_id, d.user_id, COALESCE(u.scope, '[]'), COALESCE(u.role, ''),
		d.last_seq, COALESCE(d.last_push_at, ''), COALESCE(d.last_pull_at, ''), d.last_pull_seq, d.applied, d.merged,
		d.conflicts, d.rejected, EXISTS (SELECT 1 FROM revoked_devices r WHERE r.device_id = d.device_id),
		COALESCE(n.name, '')
		FROM devices d LEFT JOIN users u ON u.name = d.user_id LEFT JOIN device_names n ON n.device_id = d.device_id
		ORDER BY d.device_id`)
	return collect(rows, err, "devices", func(r rowScanner) (syncproto.DeviceState, error) {
		var d syncproto.DeviceState
		var scope, push, pull string
		err := r.Scan(&d.DeviceID, &d.UserID, &scope, &d.UserRole, &d.LastSeq, &push, &pull, &d.LastPullSeq,
			&d.Applied, &d.Merged, &d.Conflicts, &d.Rejected, &d.Revoked, &d.Name)
		_ = json.Unmarshal([]byte(scope), &d.UserScope)
		d.LastPushAt, d.LastPullAt = parseTime(push), parseTime(pull)
		return d, err
	})
}

const receiptColumns = `rowid, changeset_id, device_id, device_seq, user_id, content_hash, received_at, applied, merged, conflicts, rejected`

func scanReceipt(row rowScanner) (syncproto.Receipt, int64, error) {
	var r syncproto.Receipt
	var pos int64
	var received string
	err := row.Scan(&pos, &r.ChangesetID, &r.DeviceID, &r.DeviceSeq, &r.UserID, &r.ContentHash, &received,
		&r.Applied, &r.Merged, &r.Conflicts, &r.Rejected)
	r.ReceivedAt = parseTime(received)
	return r, pos, err
}

// Receipts returns a device's receipts, newest first, before position
// (0: from the newest).
func (s *Store) Receipts(ctx context.Context, device string, after int64, limit int) ([]syncproto.Receipt, int64, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+receiptColumns+` FROM receipts
		WHERE device_id = ? AND (? = 0 OR rowid < ?) ORDER BY rowid DESC LIMIT ?`, device, after, after, limit)
	list, err := collect(rows, err, "receipts", func(r rowScanner) (positioned[syncproto.Receipt], error) {
		rc, pos, err := scanReceipt(r)
		return positioned[syncproto.Receipt]{rc, pos}, err
	})
	out, next := unposition(list, after)
	return out, next, err
}

// ReceiptOf returns one change set's receipt, or ENotFound.
func (s *Store) ReceiptOf(ctx context.Context, changesetID string) (*syncproto.Receipt, error) {
	r, _, err := scanReceipt(s.reader.QueryRowContext(ctx, `SELECT `+receiptColumns+` FROM receipts WHERE changeset_id = ?`, changesetID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, syncproto.Errorf(syncproto.ENotFound, "no receipt for change set %s", changesetID)
	}
	if err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	return &r, nil
}

// Head returns the highest position of the change log.
func (s *Store) Head(ctx context.Context) (int64, error) { return head(ctx, s.reader) }

// RecordPulls writes the pull positions of devices in one transaction (one
// fsync however many devices): the server buffers them, a position per
// device, and writes them every few seconds rather than at every pull.
func (s *Store) RecordPulls(ctx context.Context, positions []syncproto.PullPosition) error {
	if len(positions) == 0 {
		return nil
	}
	return s.write(ctx, "record_pull", func(ctx context.Context, tx *superviseTx) error {
		for _, p := range positions {
			if _, err := tx.exec(ctx, `INSERT INTO devices (device_id, user_id, last_seq, last_pull_at, last_pull_seq)
			VALUES (?, ?, 0, ?, ?) ON CONFLICT (device_id) DO UPDATE SET last_pull_at = excluded.last_pull_at,
			last_pull_seq = MAX(last_pull_seq, excluded.last_pull_seq)`, p.Device, p.User, formatTime(p.At), p.Seq); err != nil {
				return err
			}
		}
		return nil
	})
}

const duplicateColumns = `id, village, household_a, household_b, reason, state, created_at, COALESCE(decided_at, ''),
	COALESCE(decided_by, ''), COALESCE(survivor, ''), COALESCE(note, ''),
	COALESCE((SELECT json_extract(fields, '$.head_name') FROM records WHERE id = household_a), ''),
	COALESCE((SELECT json_extract(fields, '$.head_name') FROM records WHERE id = household_b), '')`

func scanDuplicate(row rowScanner) (syncproto.Duplicate, error) {
	var d syncproto.Duplicate
	var created, decided string
	err := row.Scan(&d.ID, &d.Village, &d.HouseholdA, &d.HouseholdB, &d.Reason, &d.State, &created, &decided,
		&d.DecidedBy, &d.Survivor, &d.Note, &d.NameA, &d.NameB)
	d.CreatedAt, d.DecidedAt = parseTime(created), parseTime(decided)
	return d, err
}

// ListDuplicates returns suspected duplicates in the actor's scope,
// optionally of one state, oldest first.
func (s *Store) ListDuplicates(ctx context.Context, actor syncproto.Actor, state string) ([]syncproto.Duplicate, error) {
	where, args := scopeClause("village", actor)
	rows, err := s.reader.QueryContext(ctx, `SELECT `+duplicateColumns+` FROM duplicates WHERE (? = '' OR state = ?) AND `+
		where+` ORDER BY created_at, id LIMIT 10000`, append([]any{state, state}, args...)...)
	return collect(rows, err, "duplicates", scanDuplicate)
}

// unposition splits positioned rows into the entries and the position of
// the last one (after, when there is none).
func unposition[T any](list []positioned[T], after int64) ([]T, int64) {
	out := make([]T, 0, len(list))
	for _, p := range list {
		out = append(out, p.entry)
		after = p.pos
	}
	return out, after
}
