package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldsync/fieldsync/syncproto"
)

// pushTx implements syncproto.PushTx on one write transaction (holding the
// write lock).
type pushTx struct {
	tx pgx.Tx
	// read holds the records read in this transaction since their last
	// write (nil: known absent), as in the SQLite store: one change reads
	// its record up to three times. Every write forgets the records it
	// touches; a rolled-back savepoint forgets all (forget).
	read map[string]*syncproto.StoredRecord
	// pending holds the writes whose answer nothing needs (a record's
	// row, the checksum sums, a receipt…), queued by later and sent
	// together, in order, in one round trip (flush) before the next
	// statement that is sent at once and before the change set ends. A
	// change of a few statements then costs one or two round trips to
	// the database instead of five or more. An error of a queued write is
	// returned by the flush, and fails the change set as it would have
	// at once: its writes are rolled back whole either way.
	pending *pgx.Batch
	// book is the summaries' bookkeeping (syncproto.SummaryBook), as in
	// the SQLite store (summaries.go).
	book syncproto.SummaryBook
	// marked holds the households this transaction marked for a new
	// verdict (verdicts.go), so that each is marked once.
	marked map[string]bool
}

// forget drops the records read so far and the writes not yet sent (after
// a rollback to a savepoint), and the inspections appended so far: their
// households' summaries are made from what the transaction holds at the
// end instead.
func (p *pushTx) forget() {
	p.read, p.pending, p.marked = nil, nil, nil
	p.book.Forget()
}

// run runs fn, one change set's (or decision's) work, on p, and sends the
// writes it left queued: when run returns nil, all of fn's writes are
// made.
func (p *pushTx) run(ctx context.Context, fn func(context.Context, syncproto.PushTx) error) error {
	if err := fn(ctx, p); err != nil {
		return err
	}
	return p.flush(ctx)
}

// later queues a write to be sent with the next flush.
func (p *pushTx) later(query string, args ...any) {
	if p.pending == nil {
		p.pending = &pgx.Batch{}
	}
	p.pending.Queue(rebind(query), args...)
}

// flush sends the queued writes in one round trip and returns the first
// error among them.
func (p *pushTx) flush(ctx context.Context) error {
	b := p.pending
	if b == nil || b.Len() == 0 {
		return nil
	}
	p.pending = nil
	if err := p.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("queued writes: %w", err)
	}
	return nil
}

func (p *pushTx) exec(ctx context.Context, query string, args ...any) (pgconn.CommandTag, error) {
	if err := p.flush(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return p.tx.Exec(ctx, rebind(query), args...)
}

func (p *pushTx) query(ctx context.Context, query string, args ...any) (pgx.Rows, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.tx.Query(ctx, rebind(query), args...)
}

func (p *pushTx) queryRow(ctx context.Context, query string, args ...any) pgx.Row {
	if err := p.flush(ctx); err != nil {
		return errRow{err}
	}
	return p.tx.QueryRow(ctx, rebind(query), args...)
}

// errRow is a row whose query was not sent: Scan returns why.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

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

var _ syncproto.PushTx = (*pushTx)(nil)

func (p *pushTx) Receipt(ctx context.Context, id string) (*syncproto.Receipt, error) {
	var r syncproto.Receipt
	var resp, received string
	err := p.queryRow(ctx, `SELECT changeset_id, device_id, device_seq, user_id, content_hash, response,
		received_at, applied, merged, conflicts, rejected FROM receipts WHERE changeset_id = ?`, id).
		Scan(&r.ChangesetID, &r.DeviceID, &r.DeviceSeq, &r.UserID, &r.ContentHash, &resp, &received,
			&r.Applied, &r.Merged, &r.Conflicts, &r.Rejected)
	if errors.Is(err, pgx.ErrNoRows) {
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
	if errors.Is(err, pgx.ErrNoRows) {
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
	prior, known := p.read[rec.ID]
	delete(p.read, rec.ID)
	diff, err := json.Marshal(e.Changes)
	if err != nil {
		return 0, err
	}
	flags, _ := json.Marshal(nonNil(e.Flags))
	cids, _ := json.Marshal(nonNil(e.ConflictIDs))
	var sent any
	if e.Sent != nil {
		b, err := json.Marshal(e.Sent)
		if err != nil {
			return 0, err
		}
		sent = string(b)
	}
	var seq int64
	err = p.queryRow(ctx, `INSERT INTO changes (entity, record_id, version, op, changeset_id, user_id,
		device_id, device_at, server_at, flags, diff, conflict_ids, village, note, schema_version, sent, department)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
		e.Entity, e.RecordID, e.Version, e.Op, nullString(e.ChangesetID), e.UserID, e.DeviceID,
		formatTime(e.DeviceAt), formatTime(e.ServerAt), string(flags), string(diff), string(cids), rec.Village,
		nullString(e.Note), nullVersion(e.SchemaVersion), sent, e.Department).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("append change: %w", err)
	}
	var oldVillage, oldParent *string
	var oldVersion int64
	hadPhotos := true // unless known otherwise
	switch {
	case known && prior == nil:
		hadPhotos = false
	case known:
		v, parent := prior.Village, prior.Parent
		oldVillage, oldVersion, oldParent = &v, prior.Version, &parent
		_, hadPhotos = prior.Fields[syncproto.PhotosField]
	default:
		var v string
		err := p.queryRow(ctx, `SELECT village, version, parent_id FROM records WHERE id = ?`, rec.ID).Scan(&v, &oldVersion, &oldParent)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("read village: %w", err)
		}
		if err == nil {
			oldVillage = &v
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
	p.later(`INSERT INTO records (id, entity, version, village, parent_id, fields, meta,
		deleted, merged_into, seq, created_at, updated_at, updated_by, updated_device)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, village = excluded.village,
		parent_id = excluded.parent_id, fields = excluded.fields, meta = excluded.meta, deleted = excluded.deleted,
		merged_into = excluded.merged_into, seq = excluded.seq, updated_at = excluded.updated_at,
		updated_by = excluded.updated_by, updated_device = excluded.updated_device`,
		rec.ID, rec.Entity, rec.Version, rec.Village, nullString(rec.Parent), string(fields), string(meta),
		rec.Deleted, nullString(rec.MergedInto), seq, formatTime(rec.UpdatedAt), formatTime(rec.UpdatedAt),
		rec.UpdatedBy, rec.UpdatedDevice)
	from := ""
	if oldVillage != nil {
		from = *oldVillage
	}
	if err := p.moveSum(ctx, rec.ID, oldVillage != nil, from, oldVersion, rec.Village, rec.Version); err != nil {
		return 0, err
	}
	var left string
	if oldParent != nil {
		left = *oldParent
	}
	p.markVerdicts(rec.ID, rec.Parent, left)
	p.book.NoteWrite(rec, e, seq, oldVillage == nil, left, parseTime(formatTime(rec.UpdatedAt)))
	if _, hasPhotos := rec.Fields[syncproto.PhotosField]; hasPhotos || hadPhotos {
		if err := p.indexPhotos(ctx, rec, e.ServerAt); err != nil {
			return 0, err
		}
	}
	if oldVillage != nil && from != rec.Village {
		p.scopeExit(seq, rec.ID, rec.Entity, from, rec.Village)
	}
	return seq, nil
}

// scopeExit records that a record left a village at seq, so that pulls in
// the old village's scope return it as removed.
func (p *pushTx) scopeExit(seq int64, id, entity, from, to string) {
	p.later(`INSERT INTO scope_exits (seq, record_id, entity, old_village, new_village)
		VALUES (?, ?, ?, ?, ?)`, seq, id, entity, from, to)
}

// ChildPlacements returns where the records whose parent is id stand, in
// the order of their creation (their first position in the change log).
func (p *pushTx) ChildPlacements(ctx context.Context, id string) ([]syncproto.Placement, error) {
	rows, err := p.query(ctx, `SELECT r.id, r.entity, r.version, r.village FROM records r WHERE r.parent_id = ?
		ORDER BY (SELECT MIN(c.seq) FROM changes c WHERE c.record_id = r.id), r.id`, id)
	return collect(rows, err, "children", func(r pgx.Row) (syncproto.Placement, error) {
		var c syncproto.Placement
		err := r.Scan(&c.ID, &c.Entity, &c.Version, &c.Village)
		return c, err
	})
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
	p.scopeExit(seq, c.ID, c.Entity, c.Village, village)
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
	p.later(`UPDATE records SET meta = ? WHERE id = ?`, string(b), id)
	return nil
}

func (p *pushTx) AddConflict(ctx context.Context, c syncproto.ConflictEntry) error {
	p.later(`INSERT INTO conflicts (id, entity, record_id, village, field, policy, stored,
		incoming, kept, state, changeset_id, device_id, user_id, device_at, created_at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Entity, c.RecordID, c.Village, c.Field, c.Policy, string(c.Stored), string(c.Incoming),
		string(c.Kept), c.State, c.ChangesetID, c.DeviceID, c.UserID, formatTime(c.DeviceAt),
		formatTime(c.CreatedAt), c.Version)
	return nil
}

func (p *pushTx) AddQuarantine(ctx context.Context, q syncproto.QuarantineEntry) error {
	errs, err := json.Marshal(q.Errors)
	if err != nil {
		return err
	}
	p.later(`INSERT INTO quarantine (id, changeset_id, device_id, user_id, entity, record_id,
		village, errors, raw, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		q.ID, q.ChangesetID, q.DeviceID, q.UserID, q.Entity, q.RecordID, q.Village, string(errs), string(q.Raw),
		formatTime(q.ReceivedAt))
	return nil
}

func (p *pushTx) SaveReceipt(ctx context.Context, r syncproto.Receipt) error {
	p.later(`INSERT INTO receipts (changeset_id, device_id, device_seq, user_id, content_hash,
		response, received_at, applied, merged, conflicts, rejected) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ChangesetID, r.DeviceID, r.DeviceSeq, r.UserID, r.ContentHash, string(r.Response),
		formatTime(r.ReceivedAt), r.Applied, r.Merged, r.Conflicts, r.Rejected)
	p.later(`INSERT INTO devices AS d (device_id, user_id, last_seq, last_push_at, applied, merged,
		conflicts, rejected, schema_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id, last_seq = excluded.last_seq,
		last_push_at = excluded.last_push_at, applied = d.applied + excluded.applied, merged = d.merged + excluded.merged,
		conflicts = d.conflicts + excluded.conflicts, rejected = d.rejected + excluded.rejected,
		schema_version = COALESCE(excluded.schema_version, d.schema_version)`,
		r.DeviceID, r.UserID, r.DeviceSeq, formatTime(r.ReceivedAt), r.Applied, r.Merged, r.Conflicts, r.Rejected, nullVersion(r.SchemaVersion))
	return nil
}

func (p *pushTx) Head(ctx context.Context) (int64, error) {
	if err := p.flush(ctx); err != nil {
		return 0, err
	}
	return head(ctx, p.tx)
}

// head is the highest position of the change log that tx sees. Under the
// write lock, or in a read snapshot, every lower position is committed or
// was rolled back (see the package documentation: positions are taken in
// commit order).
func head(ctx context.Context, tx pgx.Tx) (int64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM changes`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("head: %w", err)
	}
	return seq, nil
}
