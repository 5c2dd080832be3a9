package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync/syncproto"
)

// pushTx implements syncproto.PushTx on one write transaction. Its
// statements are prepared on the transaction at first use, so that SQLite
// parses each once per change set, not once per change (parsing was a
// third of a push's CPU time).
type pushTx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	// read holds the records read in this transaction since their last
	// write (nil: known absent). One change reads its record up to three
	// times (scope, references, merge) and the inspections of a change set
	// their households again and again; decoding a record's JSON was the
	// largest cost of a push after SQLite itself. Every write forgets the
	// records it touches; a rolled-back savepoint forgets all (forget).
	read map[string]*syncproto.StoredRecord
	// book is the summaries' bookkeeping (syncproto.SummaryBook): the
	// households whose summaries keepSummaries brings up to date before
	// the commit, and what the store keeps them with (summaries.go).
	book syncproto.SummaryBook
	// marked holds the households this transaction marked for a new
	// verdict (verdicts.go), so that each is marked once.
	marked map[string]bool
}

// forget drops the records read so far (after a rollback to a savepoint),
// and the inspections appended so far: their households' summaries are
// made from what the transaction holds at the end instead.
func (p *pushTx) forget() {
	p.read = nil
	p.marked = nil
	p.book.Forget()
}

// cloneRecord copies a record deeply enough that the caller may change its
// maps.
func cloneRecord(r *syncproto.StoredRecord) *syncproto.StoredRecord {
	if r == nil {
		return nil
	}
	c := *r
	c.Fields = make(map[string]json.RawMessage, len(r.Fields))
	for k, v := range r.Fields {
		c.Fields[k] = v
	}
	c.Meta = make(map[string]syncproto.FieldMeta, len(r.Meta))
	for k, v := range r.Meta {
		c.Meta[k] = v
	}
	return &c
}

// stmt returns the transaction's handle of a prepared statement.
func (p *pushTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := p.stmts[query]; ok {
		return st, nil
	}
	st, err := p.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if p.stmts == nil {
		p.stmts = map[string]*sql.Stmt{}
	}
	p.stmts[query] = st
	return st, nil
}

func (p *pushTx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := p.stmt(ctx, query)
	if err != nil {
		// A *sql.Row carries its error only to Scan, so run the query
		// unprepared on the transaction: its Scan then reports why (the
		// same failure, or a cancelled context) instead of a nil Row.
		return p.tx.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (p *pushTx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (p *pushTx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

var _ syncproto.PushTx = (*pushTx)(nil)

func (p *pushTx) Receipt(ctx context.Context, id string) (*syncproto.Receipt, error) {
	var r syncproto.Receipt
	var resp, received string
	err := p.queryRow(ctx, `SELECT changeset_id, device_id, device_seq, user_id, content_hash, response,
		received_at, applied, merged, conflicts, rejected FROM receipts WHERE changeset_id = ?`, id).
		Scan(&r.ChangesetID, &r.DeviceID, &r.DeviceSeq, &r.UserID, &r.ContentHash, &resp, &received,
			&r.Applied, &r.Merged, &r.Conflicts, &r.Rejected)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	r.Response, r.ReceivedAt = []byte(resp), parseTime(received)
	return &r, nil
}

func (p *pushTx) LastDeviceSeq(ctx context.Context, deviceID string) (int64, error) {
	var last int64
	err := p.queryRow(ctx, `SELECT last_seq FROM devices WHERE device_id = ?`, deviceID).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return last, err
}

func (p *pushTx) Record(ctx context.Context, id string) (*syncproto.StoredRecord, error) {
	if r, ok := p.read[id]; ok {
		return cloneRecord(r), nil
	}
	r, err := scanRecord(p.queryRow(ctx, recordQuery+` WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	if p.read == nil {
		p.read = map[string]*syncproto.StoredRecord{}
	}
	p.read[id] = cloneRecord(r)
	return r, nil
}

func (p *pushTx) WriteVersion(ctx context.Context, rec *syncproto.StoredRecord, e syncproto.LogEntry) (int64, error) {
	// What the record was: from this transaction's reads when it was read
	// (it nearly always was, by the merge), else from the table.
	prior, known := p.read[rec.ID]
	delete(p.read, rec.ID)
	diff, err := json.Marshal(e.Changes)
	if err != nil {
		return 0, err
	}
	flags, _ := json.Marshal(nonNil(e.Flags))
	cids, _ := json.Marshal(nonNil(e.ConflictIDs))
	// seq is the row's rowid (INTEGER PRIMARY KEY): taken from the insert
	// itself, not through RETURNING, which costs a result set per change.
	var sent any
	if e.Sent != nil {
		b, err := json.Marshal(e.Sent)
		if err != nil {
			return 0, err
		}
		sent = string(b)
	}
	res, err := p.exec(ctx, `INSERT INTO changes (entity, record_id, version, op, changeset_id, user_id,
		device_id, device_at, server_at, flags, diff, conflict_ids, village, note, schema_version, sent, department)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Entity, e.RecordID, e.Version, e.Op, nullString(e.ChangesetID), e.UserID, e.DeviceID,
		formatTime(e.DeviceAt), formatTime(e.ServerAt), string(flags), string(diff), string(cids), rec.Village,
		nullString(e.Note), nullVersion(e.SchemaVersion), sent, e.Department)
	if err != nil {
		return 0, fmt.Errorf("append change: %w", err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("append change: %w", err)
	}
	var oldVillage, oldParent sql.NullString
	var oldVersion int64
	hadPhotos := true // unless known otherwise
	switch {
	case known && prior == nil:
		hadPhotos = false
	case known:
		oldVillage, oldVersion = sql.NullString{String: prior.Village, Valid: true}, prior.Version
		oldParent = nullString(prior.Parent)
		_, hadPhotos = prior.Fields[syncproto.PhotosField]
	default:
		err := p.queryRow(ctx, `SELECT village, version, parent_id FROM records WHERE id = ?`, rec.ID).Scan(&oldVillage, &oldVersion, &oldParent)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("read village: %w", err)
		}
	}
	fields, err := json.Marshal(rec.Fields)
	if err != nil {
		return 0, err
	}
	meta, err := json.Marshal(rec.Meta)
	if err != nil {
		return 0, err
	}
	_, err = p.exec(ctx, `INSERT INTO records (id, entity, version, village, parent_id, fields, meta,
		deleted, merged_into, seq, created_at, updated_at, updated_by, updated_device)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, village = excluded.village,
		parent_id = excluded.parent_id, fields = excluded.fields, meta = excluded.meta, deleted = excluded.deleted,
		merged_into = excluded.merged_into, seq = excluded.seq, updated_at = excluded.updated_at,
		updated_by = excluded.updated_by, updated_device = excluded.updated_device`,
		rec.ID, rec.Entity, rec.Version, rec.Village, nullString(rec.Parent), string(fields), string(meta),
		rec.Deleted, nullString(rec.MergedInto), seq, formatTime(rec.UpdatedAt), formatTime(rec.UpdatedAt),
		rec.UpdatedBy, rec.UpdatedDevice)
	if err != nil {
		return 0, fmt.Errorf("write record: %w", err)
	}
	if err := p.moveSum(ctx, rec.ID, oldVillage.Valid, oldVillage.String, oldVersion, rec.Village, rec.Version); err != nil {
		return 0, err
	}
	if err := p.markVerdicts(ctx, rec.ID, rec.Parent, oldParent.String); err != nil {
		return 0, err
	}
	// The household written, or the household of the inspection written
	// (and the one it left, when it moved); a new inspection of a
	// household is appended to its summary.
	p.book.NoteWrite(rec, e, seq, (known && prior == nil) || (!known && !oldVillage.Valid), oldParent.String,
		parseTime(formatTime(rec.UpdatedAt)))
	if _, hasPhotos := rec.Fields[syncproto.PhotosField]; hasPhotos || hadPhotos {
		if err := p.indexPhotos(ctx, rec, e.ServerAt); err != nil {
			return 0, err
		}
	}
	if oldVillage.Valid && oldVillage.String != rec.Village {
		if err := p.scopeExit(ctx, seq, rec.ID, rec.Entity, oldVillage.String, rec.Village); err != nil {
			return 0, err
		}
	}
	return seq, nil
}

// scopeExit records that a record left a village at seq, so that pulls in
// the old village's scope return it as removed.
func (p *pushTx) scopeExit(ctx context.Context, seq int64, id, entity, from, to string) error {
	_, err := p.exec(ctx, `INSERT INTO scope_exits (seq, record_id, entity, old_village, new_village)
		VALUES (?, ?, ?, ?, ?)`, seq, id, entity, from, to)
	if err != nil {
		return fmt.Errorf("scope exit: %w", err)
	}
	return nil
}

// ChildPlacements returns where the records whose parent is id stand, in
// the order of the records_parent index (their creation).
func (p *pushTx) ChildPlacements(ctx context.Context, id string) ([]syncproto.Placement, error) {
	rows, err := p.query(ctx, `SELECT id, entity, version, village FROM records WHERE parent_id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("children: %w", err)
	}
	defer rows.Close()
	var out []syncproto.Placement
	for rows.Next() {
		var c syncproto.Placement
		if err := rows.Scan(&c.ID, &c.Entity, &c.Version, &c.Village); err != nil {
			return nil, fmt.Errorf("children: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("children: %w", err)
	}
	return out, nil
}

// Rescope moves a record to village under a new sequence: the log entry,
// the record's village and sequence, its scope exit, the checksum sums and
// the village of its photos.
func (p *pushTx) Rescope(ctx context.Context, c syncproto.Placement, village string, e syncproto.LogEntry) error {
	var seq int64
	err := p.queryRow(ctx, `INSERT INTO changes (entity, record_id, version, op, changeset_id, user_id,
		device_id, device_at, server_at, diff, village) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', ?) RETURNING seq`,
		e.Entity, e.RecordID, e.Version, e.Op, nullString(e.ChangesetID), e.UserID, e.DeviceID, formatTime(e.DeviceAt),
		formatTime(e.ServerAt), village).Scan(&seq)
	if err != nil {
		return fmt.Errorf("rescope %s: %w", c.ID, err)
	}
	delete(p.read, c.ID)
	if err := p.book.NoteRescope(ctx, c, p.parentOf); err != nil {
		return err
	}
	if _, err := p.exec(ctx, `UPDATE records SET village = ?, seq = ? WHERE id = ?`, village, seq, c.ID); err != nil {
		return fmt.Errorf("rescope %s: %w", c.ID, err)
	}
	if err := p.scopeExit(ctx, seq, c.ID, c.Entity, c.Village, village); err != nil {
		return err
	}
	if err := p.moveSum(ctx, c.ID, true, c.Village, c.Version, village, c.Version); err != nil {
		return err
	}
	return p.movePhotos(ctx, c.ID, village)
}

func (p *pushTx) UpdateMeta(ctx context.Context, id string, meta map[string]syncproto.FieldMeta) error {
	delete(p.read, id)
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if _, err := p.exec(ctx, `UPDATE records SET meta = ? WHERE id = ?`, string(b), id); err != nil {
		return fmt.Errorf("update meta: %w", err)
	}
	return nil
}

func (p *pushTx) AddConflict(ctx context.Context, c syncproto.ConflictEntry) error {
	_, err := p.exec(ctx, `INSERT INTO conflicts (id, entity, record_id, village, field, policy, stored,
		incoming, kept, state, changeset_id, device_id, user_id, device_at, created_at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Entity, c.RecordID, c.Village, c.Field, c.Policy, string(c.Stored), string(c.Incoming),
		string(c.Kept), c.State, c.ChangesetID, c.DeviceID, c.UserID, formatTime(c.DeviceAt),
		formatTime(c.CreatedAt), c.Version)
	if err != nil {
		return fmt.Errorf("add conflict: %w", err)
	}
	return nil
}

func (p *pushTx) AddQuarantine(ctx context.Context, q syncproto.QuarantineEntry) error {
	errs, err := json.Marshal(q.Errors)
	if err != nil {
		return err
	}
	_, err = p.exec(ctx, `INSERT INTO quarantine (id, changeset_id, device_id, user_id, entity, record_id,
		village, errors, raw, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		q.ID, q.ChangesetID, q.DeviceID, q.UserID, q.Entity, q.RecordID, q.Village, string(errs), string(q.Raw),
		formatTime(q.ReceivedAt))
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

func (p *pushTx) SaveReceipt(ctx context.Context, r syncproto.Receipt) error {
	_, err := p.exec(ctx, `INSERT INTO receipts (changeset_id, device_id, device_seq, user_id, content_hash,
		response, received_at, applied, merged, conflicts, rejected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ChangesetID, r.DeviceID, r.DeviceSeq, r.UserID, r.ContentHash, string(r.Response),
		formatTime(r.ReceivedAt), r.Applied, r.Merged, r.Conflicts, r.Rejected)
	if err != nil {
		return fmt.Errorf("save receipt: %w", err)
	}
	_, err = p.exec(ctx, `INSERT INTO devices (device_id, user_id, last_seq, last_push_at, applied, merged,
		conflicts, rejected, schema_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id, last_seq = excluded.last_seq,
		last_push_at = excluded.last_push_at, applied = applied + excluded.applied, merged = merged + excluded.merged,
		conflicts = conflicts + excluded.conflicts, rejected = rejected + excluded.rejected,
		schema_version = COALESCE(excluded.schema_version, schema_version)`,
		r.DeviceID, r.UserID, r.DeviceSeq, formatTime(r.ReceivedAt), r.Applied, r.Merged, r.Conflicts, r.Rejected, nullVersion(r.SchemaVersion))
	if err != nil {
		return fmt.Errorf("save device: %w", err)
	}
	return nil
}

func (p *pushTx) Head(ctx context.Context) (int64, error) {
	return head(ctx, p.tx)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func head(ctx context.Context, q queryer) (int64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM changes`).Scan(&seq)
	return seq, err
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// nullVersion is a schema version as stored: NULL when unknown (0).
func nullVersion(v int) sql.NullInt64 { return sql.NullInt64{Int64: int64(v), Valid: v > 0} }

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
