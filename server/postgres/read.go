package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/syncproto"
)

const recordQuery = `SELECT id, entity, version, village, COALESCE(parent_id, ''), fields, meta, deleted,
	COALESCE(merged_into, ''), updated_at, updated_by, updated_device FROM records`

// scanStored reads one row of recordQuery for collect.
func scanStored(row pgx.Row) (*syncproto.StoredRecord, error) {
	r, err := scanRecord(row)
	if err == nil && r == nil {
		err = pgx.ErrNoRows
	}
	return r, err
}

// scanRecord reads one row of recordQuery; it returns nil, nil when there is
// no row.
func scanRecord(row pgx.Row) (*syncproto.StoredRecord, error) {
	var r syncproto.StoredRecord
	var fields, meta, updated string
	err := row.Scan(&r.ID, &r.Entity, &r.Version, &r.Village, &r.Parent, &fields, &meta, &r.Deleted,
		&r.MergedInto, &updated, &r.UpdatedBy, &r.UpdatedDevice)
	if errors.Is(err, pgx.ErrNoRows) {
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
// actor's scope, and its arguments (? placeholders, for rebind). A prefix
// match is a LIKE on a "C"-collated column, which the indexes serve.
func scopeClause(column string, a syncproto.Actor) (string, []any) {
	if a.AllRegions {
		return "TRUE", nil
	}
	if len(a.Scope) == 0 {
		return "FALSE", nil
	}
	parts := make([]string, len(a.Scope))
	args := make([]any, 0, len(a.Scope))
	for i, p := range a.Scope {
		parts[i] = column + ` LIKE ?`
		args = append(args, likePrefix(p))
	}
	return "(" + strings.Join(parts, " OR ") + ")", args
}

// likePrefix is the LIKE pattern of the values that start with p.
func likePrefix(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(p) + "%"
}

// pullItem is a record or a removal, at its position in the change log.
type pullItem struct {
	rec syncproto.Record
	seq int64
}

const pullColumns = `id, entity, version, fields, deleted, COALESCE(merged_into, ''), updated_at, updated_by, seq`

func scanPullRecord(rows pgx.Row, extra ...any) (pullItem, error) {
	var it pullItem
	var updated, fields string
	dest := append([]any{&it.rec.ID, &it.rec.Entity, &it.rec.Version, &fields, &it.rec.Deleted, &it.rec.MergedInto,
		&updated, &it.rec.UpdatedBy, &it.seq}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return it, fmt.Errorf("pull: %w", err)
	}
	// The fields go out as stored: the column holds the canonical JSON
	// the push wrote.
	it.rec.RawFields = json.RawMessage(fields)
	it.rec.UpdatedAt = syncproto.FormatTime(parseTime(updated))
	return it, nil
}

// Pull returns up to limit records in the actor's scope whose last change
// is after the cursor, in change order, together with removals (records
// that left the scope after the cursor), all from one snapshot. On the last
// page the cursor moves to the head of the change log that snapshot sees,
// which no change still in flight lies below (see the package
// documentation). A cursor of another scope starts a transition, as in the
// SQLite store.
func (s *Store) Pull(ctx context.Context, actor syncproto.Actor, cur syncproto.Cursor, limit int) (syncproto.PullPage, error) {
	var page syncproto.PullPage
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		page, err = pull(ctx, tx, actor, cur, limit)
		return err
	})
	return page, err
}

func pull(ctx context.Context, tx pgx.Tx, actor syncproto.Actor, cur syncproto.Cursor, limit int) (syncproto.PullPage, error) {
	var page syncproto.PullPage
	h, err := head(ctx, tx)
	if err != nil {
		return page, err
	}
	if cur.Seq > h || cur.Transition > h {
		return page, &syncproto.Error{Code: syncproto.EInvalid, Title: "Cursor ahead of the server",
			Message: "the cursor is ahead of this server's change log (was the server restored from a backup?); pull again from the beginning",
			Errors:  []syncproto.FieldError{{Path: "cursor", Message: "is ahead of the server"}}}
	}
	key := actor.ScopeKey()
	if cur.Seq > 0 && cur.Scope != "" && cur.Scope != key {
		return pullTransition(ctx, tx, actor, cur, limit)
	}

	where, args := scopeClause("village", actor)
	rows, err := tx.Query(ctx, rebind(`SELECT `+pullColumns+` FROM records WHERE seq > ? AND `+where+
		` ORDER BY seq LIMIT ?`), append(append([]any{cur.Seq}, args...), limit+1)...)
	items, err := collect(rows, err, "pull", func(r pgx.Row) (pullItem, error) { return scanPullRecord(r) })
	if err != nil {
		return page, err
	}

	oldWhere, oldArgs := scopeClause("x.old_village", actor)
	curWhere, curArgs := scopeClause("r.village", actor)
	exitArgs := append(append(append([]any{cur.Seq}, oldArgs...), curArgs...), cur.Seq, limit+1)
	rows, err = tx.Query(ctx, rebind(`SELECT x.record_id, x.entity, MAX(x.seq) AS s FROM scope_exits x
		WHERE x.seq > ? AND `+oldWhere+` AND NOT EXISTS (SELECT 1 FROM records r WHERE r.id = x.record_id AND `+curWhere+`)
		AND EXISTS (SELECT 1 FROM changes c WHERE c.record_id = x.record_id AND c.seq <= ?)
		GROUP BY x.record_id, x.entity ORDER BY s LIMIT ?`), exitArgs...)
	removals, err := collect(rows, err, "pull removals", scanRemoval)
	if err != nil {
		return page, err
	}
	page.Cursor = syncproto.Cursor{Seq: cur.Seq, Scope: key}
	var last int64
	page.Records, last, page.HasMore = fillPage(append(items, removals...), limit)
	if page.HasMore {
		page.Cursor.Seq = last
	} else {
		page.Cursor.Seq = h
	}
	return page, nil
}

// scanRemoval reads a row (record_id, entity, seq) of a removal query.
func scanRemoval(row pgx.Row) (pullItem, error) {
	var it pullItem
	err := row.Scan(&it.rec.ID, &it.rec.Entity, &it.seq)
	it.rec.Removed = true
	return it, err
}

// fillPage orders records and removals by their change-log position and
// takes up to limit of them; it returns the position of the last one taken
// and whether more follow.
func fillPage(items []pullItem, limit int) (records []syncproto.Record, last int64, more bool) {
	sort.Slice(items, func(i, j int) bool { return items[i].seq < items[j].seq })
	if len(items) > limit {
		items, more = items[:limit], true
	}
	for _, it := range items {
		records = append(records, it.rec)
		last = it.seq
	}
	return records, last, more
}

// pullTransition delivers a scope change: records in the old scope and not
// the new one as removals, records in the new scope and not the old one,
// changed up to the cursor, in full; later changes follow through the
// normal pull.
func pullTransition(ctx context.Context, tx pgx.Tx, actor syncproto.Actor, cur syncproto.Cursor, limit int) (syncproto.PullPage, error) {
	var page syncproto.PullPage
	old := syncproto.ActorForScopeKey(cur.Scope)
	oldWhere, oldArgs := scopeClause("village", old)
	newWhere, newArgs := scopeClause("village", actor)
	var args []any
	args = append(args, newArgs...)
	args = append(args, cur.Transition)
	args = append(append(args, oldArgs...), newArgs...)
	args = append(append(args, newArgs...), oldArgs...)
	args = append(args, cur.Seq, limit+1)
	rows, err := tx.Query(ctx, rebind(`SELECT `+pullColumns+`, `+newWhere+` AS in_new FROM records
		WHERE seq > ? AND ((`+oldWhere+` AND NOT `+newWhere+`) OR (`+newWhere+` AND NOT `+oldWhere+` AND seq <= ?))
		ORDER BY seq LIMIT ?`), args...)
	items, err := collect(rows, err, "pull transition", func(r pgx.Row) (pullItem, error) {
		var inNew bool
		it, err := scanPullRecord(r, &inNew)
		if !inNew {
			it.rec = syncproto.Record{Entity: it.rec.Entity, ID: it.rec.ID, Removed: true}
		}
		return it, err
	})
	if err != nil {
		return page, err
	}
	after := cur.Transition
	if after < cur.Seq {
		after = cur.Seq
	}
	xOld, xOldArgs := scopeClause("x.old_village", old)
	rNew, rNewArgs := scopeClause("r.village", actor)
	rOld, rOldArgs := scopeClause("r.village", old)
	exitArgs := append(append(append(append([]any{after}, xOldArgs...), rNewArgs...), rOldArgs...), cur.Seq, limit+1)
	rows, err = tx.Query(ctx, rebind(`SELECT x.record_id, x.entity, MAX(x.seq) AS s FROM scope_exits x
		WHERE x.seq > ? AND `+xOld+` AND NOT EXISTS (SELECT 1 FROM records r WHERE r.id = x.record_id AND (`+rNew+` OR `+rOld+`))
		AND EXISTS (SELECT 1 FROM changes c WHERE c.record_id = x.record_id AND c.seq <= ?)
		GROUP BY x.record_id, x.entity ORDER BY s LIMIT ?`), exitArgs...)
	removals, err := collect(rows, err, "pull transition removals", scanRemoval)
	if err != nil {
		return page, err
	}
	page.Cursor = cur
	page.Records, page.Cursor.Transition, page.HasMore = fillPage(append(items, removals...), limit)
	if !page.HasMore {
		page.Cursor = syncproto.Cursor{Seq: cur.Seq, Scope: actor.ScopeKey()}
		page.HasMore = true
	}
	return page, nil
}

// Record returns the stored record with the id, or an ENotFound error.
func (s *Store) Record(ctx context.Context, id string) (*syncproto.StoredRecord, error) {
	r, err := scanRecord(s.pool.QueryRow(ctx, recordQuery+` WHERE id = $1`, id))
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
	rows, err := s.pool.Query(ctx, `SELECT seq, entity, record_id, version, op, COALESCE(c.changeset_id, ''),
		user_id, device_id, device_at, server_at, flags, diff, conflict_ids, COALESCE(note, ''),
		COALESCE(r.replayed_by, ''), COALESCE(r.via_device, ''), COALESCE(r.replayed_at, ''),
		COALESCE(c.schema_version, 0), COALESCE(c.sent, ''), c.department
		FROM changes c LEFT JOIN outbox_replays r ON r.changeset_id = c.changeset_id
		WHERE record_id = $1 ORDER BY seq`, id)
	return collect(rows, err, "history", func(row pgx.Row) (syncproto.LogEntry, error) {
		var e syncproto.LogEntry
		var devAt, srvAt, flags, diff, cids, replayBy, replayVia, replayAt, sent string
		var schemaVersion int32
		if err := row.Scan(&e.Seq, &e.Entity, &e.RecordID, &e.Version, &e.Op, &e.ChangesetID, &e.UserID,
			&e.DeviceID, &devAt, &srvAt, &flags, &diff, &cids, &e.Note, &replayBy, &replayVia, &replayAt,
			&schemaVersion, &sent, &e.Department); err != nil {
			return e, err
		}
		e.SchemaVersion = int(schemaVersion)
		if sent != "" {
			if err := json.Unmarshal([]byte(sent), &e.Sent); err != nil {
				return e, fmt.Errorf("%s: %w", id, err)
			}
		}
		if replayBy != "" {
			e.Replay = &syncproto.Replay{By: replayBy, Device: replayVia, At: parseTime(replayAt)}
		}
		e.DeviceAt, e.ServerAt = parseTime(devAt), parseTime(srvAt)
		if err := errors.Join(json.Unmarshal([]byte(flags), &e.Flags), json.Unmarshal([]byte(diff), &e.Changes),
			json.Unmarshal([]byte(cids), &e.ConflictIDs)); err != nil {
			return e, fmt.Errorf("%s: %w", id, err)
		}
		return e, nil
	})
}

// Conflicts lists the recorded decisions of a record, or of every record
// when recordID is empty, in the order they were made, with their
// resolutions.
func (s *Store) Conflicts(ctx context.Context, recordID string) ([]syncproto.ConflictEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+conflictColumns+` FROM conflicts
		WHERE $1 = '' OR record_id = $1 ORDER BY pos`, recordID)
	return collect(rows, err, "conflicts", func(r pgx.Row) (syncproto.ConflictEntry, error) {
		c, _, err := scanConflict(r)
		return c, err
	})
}

// Quarantined lists the rejected changes of a change set, or all when
// changesetID is empty, in the order they were received.
func (s *Store) Quarantined(ctx context.Context, changesetID string) ([]syncproto.QuarantineEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+quarantineColumns+` FROM quarantine
		WHERE $1 = '' OR changeset_id = $1 ORDER BY pos`, changesetID)
	list, err := collect(rows, err, "quarantine", scanQuarantine)
	out, _ := unposition(list, 0)
	return out, err
}

const quarantineColumns = `pos, id, changeset_id, device_id, user_id, entity, record_id, village, errors, raw, received_at,
	state, COALESCE(closed_at, ''), COALESCE(closed_by, ''), COALESCE(close_note, ''), ` + quarantineHousehold

// quarantineHousehold is the head name of the stored household that a
// quarantined change is (a household) or names (an inspection's
// household_id), ” when none is stored.
const quarantineHousehold = `COALESCE((SELECT (CASE WHEN strpos(h.fields, E'\\u0000') = 0 THEN h.fields::jsonb END) ->> 'head_name' FROM records h
	WHERE h.entity = 'household' AND h.id = CASE WHEN quarantine.entity = 'household' THEN quarantine.record_id
		ELSE (CASE WHEN strpos(quarantine.raw, E'\\u0000') = 0 THEN quarantine.raw::jsonb END) -> 'fields' ->> 'household_id' END), '')`

// positioned is a row with its position in its table.
type positioned[T any] struct {
	entry T
	pos   int64
}

func scanQuarantine(row pgx.Row) (positioned[syncproto.QuarantineEntry], error) {
	var p positioned[syncproto.QuarantineEntry]
	q := &p.entry
	var errs, raw, received, closedAt, closedBy, closeNote string
	if err := row.Scan(&p.pos, &q.ID, &q.ChangesetID, &q.DeviceID, &q.UserID, &q.Entity, &q.RecordID, &q.Village,
		&errs, &raw, &received, &q.State, &closedAt, &closedBy, &closeNote, &q.HouseholdName); err != nil {
		return p, err
	}
	if closedAt != "" {
		q.Closed = &syncproto.QueueDecision{By: closedBy, Note: closeNote, At: parseTime(closedAt)}
	}
	if err := json.Unmarshal([]byte(errs), &q.Errors); err != nil {
		return p, fmt.Errorf("quarantine %s: %w", q.ID, err)
	}
	q.Raw, q.ReceivedAt = json.RawMessage(raw), parseTime(received)
	return p, nil
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

// collect reads every row of a query (whose error is err) with scan and
// closes the rows; what names the query in errors.
func collect[T any](rows pgx.Rows, err error, what string, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
