package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Snapshot streams the records q asks for in the actor's scope from one read
// transaction on the read pool: its first SELECT (the head of the change log)
// fixes the transaction's view, so every later read sees the same committed
// change sets, whole, whatever the writer commits meanwhile.
//
// Records whose last change is at or before the snapshot's point are read as
// they are, village by village through the records_village index. With
// q.AsOf before the head, the records changed after it are then rebuilt one
// by one from the change log: the diffs after AsOf undone, newest first, and
// the version, village and last update of the last change at or before it.
// Memory holds one record (and, with q.Latest, its children) at a time,
// plus, for an AsOf snapshot with q.Latest, the ids of the children that
// moved to another parent after AsOf.
func (s *Store) Snapshot(ctx context.Context, actor syncproto.Actor, q syncproto.SnapshotQuery, sink syncproto.SnapshotSink) error {
	sch := q.Schema
	if sch == nil {
		sch = schema.V1()
	}
	if err := checkSnapshotQuery(sch, q); err != nil {
		return err
	}
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin snapshot: %w", err)
	}
	defer tx.Rollback()
	h, err := head(ctx, tx)
	if err != nil {
		return fmt.Errorf("snapshot head: %w", err)
	}
	at := h
	if q.AsOf != nil {
		if q.AsOf.Seq > h {
			return &syncproto.Error{Code: syncproto.EInvalid, Title: "Cursor ahead of the server",
				Message: "as_of is ahead of this server's change log",
				Errors:  []syncproto.FieldError{{Path: "as_of", Message: "is ahead of the server"}}}
		}
		at = q.AsOf.Seq
	}
	if err := sink.Start(syncproto.Cursor{Seq: at}); err != nil {
		return err
	}
	sn := &snapshotTx{tx: tx, schema: sch, actor: actor, q: q, at: at, head: h, sink: sink}
	defer sn.close()
	for _, entity := range q.Entities {
		if err := sn.unchanged(ctx, entity); err != nil {
			return err
		}
		if at < h {
			if err := sn.changedSince(ctx, entity); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkSnapshotQuery refuses entities sch lacks and a LatestBy that is not
// a field of every Latest entity.
func checkSnapshotQuery(sch *schema.Schema, q syncproto.SnapshotQuery) error {
	invalid := func(path, msg string) error {
		return &syncproto.Error{Code: syncproto.EInvalid, Message: "invalid snapshot query",
			Errors: []syncproto.FieldError{{Path: path, Message: msg}}}
	}
	known := "must be one of " + strings.Join(sch.Entities(), ", ")
	for _, e := range q.Entities {
		if sch.Form(e) == nil {
			return invalid("entities", known)
		}
	}
	for _, e := range q.Latest {
		f := sch.Form(e)
		if f == nil {
			return invalid("latest", known)
		}
		if f.Parent == nil || f.Field(q.LatestField(e)) == nil {
			return invalid("latest_by", "must be a field of "+e+", which must belong to another record")
		}
	}
	return nil
}

// snapshotTx is one snapshot in progress: its transaction, its point in the
// change log and its prepared statements.
type snapshotTx struct {
	tx     *sql.Tx
	schema *schema.Schema
	actor  syncproto.Actor
	q      syncproto.SnapshotQuery
	at     int64 // the point the snapshot shows
	head   int64 // the head of the change log in this transaction
	sink   syncproto.SnapshotSink

	stmts map[string]*sql.Stmt
	// moved maps, per Latest entity, a parent id to the children that
	// belonged to it at the point and belong to another record now
	// (AsOf snapshots only; filled at first use).
	moved map[string]map[string][]string
}

func (sn *snapshotTx) close() {
	for _, st := range sn.stmts {
		st.Close()
	}
}

// stmt prepares a statement once per snapshot: the rebuilding queries run
// once per record.
func (sn *snapshotTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := sn.stmts[query]; ok {
		return st, nil
	}
	st, err := sn.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("snapshot prepare: %w", err)
	}
	if sn.stmts == nil {
		sn.stmts = map[string]*sql.Stmt{}
	}
	sn.stmts[query] = st
	return st, nil
}

const snapshotColumns = `r.id, r.entity, r.version, r.village, COALESCE(r.parent_id, ''), r.fields, r.deleted,
	COALESCE(r.merged_into, ''), r.updated_at, r.updated_by, r.seq`

// scanSnapshotRecord reads snapshotColumns, then extra.
// With raw, the fields stay as stored (RawFields), not decoded.
func scanSnapshotRecord(rows *sql.Rows, raw bool, extra ...any) (syncproto.StoredRecord, int64, error) {
	var r syncproto.StoredRecord
	var updated string
	var fields []byte
	var seq int64
	dest := append([]any{&r.ID, &r.Entity, &r.Version, &r.Village, &r.Parent, &fields, &r.Deleted, &r.MergedInto,
		&updated, &r.UpdatedBy, &seq}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return r, 0, fmt.Errorf("snapshot: %w", err)
	}
	r.UpdatedAt = parseTime(updated)
	if raw {
		r.RawFields = fields
		return r, seq, nil
	}
	if err := json.Unmarshal(fields, &r.Fields); err != nil {
		return r, 0, fmt.Errorf("snapshot %s fields: %w", r.ID, err)
	}
	return r, seq, nil
}

// scopePrefixes returns the actor's prefixes sorted, without empty ones and
// without those inside another; all is true for an actor of every region.
func scopePrefixes(a syncproto.Actor) (all bool, prefixes []string) {
	if a.AllRegions {
		return true, nil
	}
	ps := append([]string(nil), a.Scope...)
	sort.Strings(ps)
	for _, p := range ps {
		if p == "" || len(prefixes) > 0 && strings.HasPrefix(p, prefixes[len(prefixes)-1]) {
			continue
		}
		prefixes = append(prefixes, p)
	}
	return false, prefixes
}

// unchanged emits the records of entity in scope whose last change is at or
// before the snapshot's point, as they are stored: one range of the
// records_village index per scope prefix (a division code starts with p
// exactly when it lies in [p, p+":"), ':' following the digits), so rows
// come ordered by village.
func (sn *snapshotTx) unchanged(ctx context.Context, entity string) error {
	var cols strings.Builder
	cols.WriteString(snapshotColumns)
	var latestArgs []any
	sqlLatest := len(sn.q.Latest) > 0 && sn.at == sn.head
	if sqlLatest {
		// At the head, the latest child of each row is one correlated
		// lookup through the records_parent index.
		for _, e := range sn.q.Latest {
			cols.WriteString(`, (SELECT json_object('id', i.id, 'version', i.version, 'village', i.village,
				'fields', json(i.fields), 'merged_into', i.merged_into, 'updated_at', i.updated_at, 'updated_by', i.updated_by)
				FROM records i WHERE i.parent_id = r.id AND i.entity = ? AND i.deleted = 0
				ORDER BY json_extract(i.fields, ?) DESC, i.updated_at DESC, i.id DESC LIMIT 1)`)
			latestArgs = append(latestArgs, e, "$."+sn.q.LatestField(e))
		}
	}
	where := `r.entity = ? AND r.seq <= ?`
	if !sn.q.Tombstones {
		where += ` AND r.deleted = 0`
	}
	all, prefixes := scopePrefixes(sn.actor)
	var ranges [][]any
	if all {
		ranges = [][]any{nil}
	} else {
		where += ` AND r.village >= ? AND r.village < ?`
		for _, p := range prefixes {
			ranges = append(ranges, []any{p, p + ":"})
		}
	}
	query := `SELECT ` + cols.String() + ` FROM records r WHERE ` + where + ` ORDER BY r.village, r.id`
	for _, rng := range ranges {
		args := append(append(append([]any{}, latestArgs...), entity, sn.at), rng...)
		if err := sn.emitRows(ctx, query, args, sqlLatest); err != nil {
			return err
		}
	}
	return nil
}

// emitRows runs a query of snapshotColumns (followed, with sqlLatest, by one
// JSON column per Latest entity) and emits each row.
func (sn *snapshotTx) emitRows(ctx context.Context, query string, args []any, sqlLatest bool) error {
	rows, err := sn.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer rows.Close()
	var latestCols []sql.NullString
	var extra []any
	if sqlLatest {
		latestCols = make([]sql.NullString, len(sn.q.Latest))
		for i := range latestCols {
			extra = append(extra, &latestCols[i])
		}
	}
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, _, err := scanSnapshotRecord(rows, sn.q.RawFields, extra...)
		if err != nil {
			return err
		}
		row := syncproto.SnapshotRow{Record: rec}
		switch {
		case sqlLatest:
			for i, col := range latestCols {
				if !col.Valid {
					continue
				}
				child, err := decodeLatest(sn.q.Latest[i], rec.ID, col.String)
				if err != nil {
					return err
				}
				if row.Latest == nil {
					row.Latest = map[string]*syncproto.StoredRecord{}
				}
				row.Latest[sn.q.Latest[i]] = child
			}
		case len(sn.q.Latest) > 0:
			if row.Latest, err = sn.latestAt(ctx, rec.ID); err != nil {
				return err
			}
		}
		if err := sn.withParent(ctx, &row); err != nil {
			return err
		}
		if err := sn.sink.Row(row); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// decodeLatest reads the JSON object the latest-child lookup returns.
func decodeLatest(entity, parent, s string) (*syncproto.StoredRecord, error) {
	var v struct {
		ID         string                     `json:"id"`
		Version    int64                      `json:"version"`
		Village    string                     `json:"village"`
		Fields     map[string]json.RawMessage `json:"fields"`
		MergedInto *string                    `json:"merged_into"`
		UpdatedAt  string                     `json:"updated_at"`
		UpdatedBy  string                     `json:"updated_by"`
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("snapshot latest %s of %s: %w", entity, parent, err)
	}
	r := &syncproto.StoredRecord{Entity: entity, ID: v.ID, Version: v.Version, Village: v.Village, Parent: parent,
		Fields: v.Fields, UpdatedAt: parseTime(v.UpdatedAt), UpdatedBy: v.UpdatedBy}
	if v.MergedInto != nil {
		r.MergedInto = *v.MergedInto
	}
	return r, nil
}

// changedSince emits the records of entity changed after the snapshot's
// point that existed at it, rebuilt as they were then, if they were in
// scope then. They come in the order of their last change.
func (sn *snapshotTx) changedSince(ctx context.Context, entity string) error {
	rows, err := sn.tx.QueryContext(ctx, `SELECT `+snapshotColumns+` FROM records r
		WHERE r.seq > ? AND r.entity = ? ORDER BY r.seq`, sn.at, entity)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, _, err := scanSnapshotRecord(rows, false)
		if err != nil {
			return err
		}
		existed, err := sn.rebuild(ctx, &rec)
		if err != nil {
			return err
		}
		if !existed || rec.Deleted && !sn.q.Tombstones || !sn.actor.InScope(rec.Village) {
			continue
		}
		row := syncproto.SnapshotRow{Record: rec}
		if len(sn.q.Latest) > 0 {
			if row.Latest, err = sn.latestAt(ctx, rec.ID); err != nil {
				return err
			}
		}
		if err := sn.withParent(ctx, &row); err != nil {
			return err
		}
		if err := sn.sink.Row(row); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// rebuild turns rec, read as it is now, into the record as it was at the
// snapshot's point, from its change log: the diffs of later changes undone
// newest first (a "before" of null: the field was absent; the _deleted and
// _merged_into pseudo-fields: the deletion and the merge), and the version and village of its last
// change at or before the point, the time and user of its last change that
// was not a rescope. It reports false when the record did not exist then.
func (sn *snapshotTx) rebuild(ctx context.Context, rec *syncproto.StoredRecord) (bool, error) {
	st, err := sn.stmt(ctx, `SELECT seq, version, op, diff, village, server_at, user_id FROM changes
		WHERE record_id = ? ORDER BY seq DESC`)
	if err != nil {
		return false, err
	}
	rows, err := st.QueryContext(ctx, rec.ID)
	if err != nil {
		return false, fmt.Errorf("snapshot history of %s: %w", rec.ID, err)
	}
	defer rows.Close()
	existed := false
	for rows.Next() {
		var seq, version int64
		var op, diff, village, serverAt, user string
		if err := rows.Scan(&seq, &version, &op, &diff, &village, &serverAt, &user); err != nil {
			return false, fmt.Errorf("snapshot history of %s: %w", rec.ID, err)
		}
		if seq > sn.at {
			if err := undo(rec, diff); err != nil {
				return false, err
			}
			continue
		}
		if !existed {
			existed = true
			rec.Version, rec.Village = version, village
		}
		if op != syncproto.OpRescope {
			rec.UpdatedAt, rec.UpdatedBy = parseTime(serverAt), user
			break
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("snapshot history of %s: %w", rec.ID, err)
	}
	if !existed {
		return false, nil
	}
	if form := sn.schema.Form(rec.Entity); form != nil && form.Parent != nil {
		rec.Parent = ""
		if v, ok := rec.Fields[form.Parent.Field]; ok {
			_ = json.Unmarshal(v, &rec.Parent)
		}
	}
	return true, nil
}

// mergedIntoField is the pseudo-field under which a household merge records
// the survivor a tombstone names.
const mergedIntoField = "_merged_into"

// undo reverts one change's diff on rec.
func undo(rec *syncproto.StoredRecord, diff string) error {
	var changes map[string]syncproto.FieldChange
	if err := json.Unmarshal([]byte(diff), &changes); err != nil {
		return fmt.Errorf("snapshot diff of %s: %w", rec.ID, err)
	}
	for name, ch := range changes {
		if strings.HasPrefix(name, "_") {
			// Pseudo-fields (no form field starts with '_'): the deletion
			// and the household merges.
			switch name {
			case syncproto.FieldDeleted:
				rec.Deleted = string(ch.Before) == "true"
			case mergedIntoField:
				rec.MergedInto = ""
				_ = json.Unmarshal(ch.Before, &rec.MergedInto)
			}
			continue
		}
		if len(ch.Before) == 0 || string(ch.Before) == "null" {
			delete(rec.Fields, name)
			continue
		}
		if rec.Fields == nil {
			rec.Fields = map[string]json.RawMessage{}
		}
		rec.Fields[name] = ch.Before
	}
	return nil
}

// latestAt returns, for an AsOf snapshot, the latest live child of each
// Latest entity that belonged to parent at the snapshot's point: the
// children that belong to it now, rebuilt when they changed since, and those
// that belonged to it then but were moved to another record since.
func (sn *snapshotTx) latestAt(ctx context.Context, parent string) (map[string]*syncproto.StoredRecord, error) {
	var out map[string]*syncproto.StoredRecord
	for _, entity := range sn.q.Latest {
		moved, err := sn.movedChildren(ctx, entity)
		if err != nil {
			return nil, err
		}
		st, err := sn.stmt(ctx, `SELECT `+snapshotColumns+` FROM records r WHERE r.parent_id = ? AND r.entity = ?`)
		if err != nil {
			return nil, err
		}
		candidates, err := sn.collect(ctx, st, parent, entity)
		if err != nil {
			return nil, err
		}
		for _, id := range moved[parent] {
			st, err := sn.stmt(ctx, `SELECT `+snapshotColumns+` FROM records r WHERE r.id = ?`)
			if err != nil {
				return nil, err
			}
			more, err := sn.collect(ctx, st, id)
			if err != nil {
				return nil, err
			}
			candidates = append(candidates, more...)
		}
		var best *syncproto.StoredRecord
		seen := map[string]bool{}
		for _, c := range candidates {
			if seen[c.rec.ID] {
				continue
			}
			seen[c.rec.ID] = true
			rec := c.rec
			if c.seq > sn.at {
				existed, err := sn.rebuild(ctx, &rec)
				if err != nil {
					return nil, err
				}
				if !existed {
					continue
				}
			}
			if rec.Deleted || rec.Parent != parent {
				continue
			}
			if best == nil || laterChild(&rec, best, sn.q.LatestField(entity)) {
				r := rec
				best = &r
			}
		}
		if best != nil {
			if out == nil {
				out = map[string]*syncproto.StoredRecord{}
			}
			out[entity] = best
		}
	}
	return out, nil
}

type seqRecord struct {
	rec syncproto.StoredRecord
	seq int64
}

// collect reads the records a statement of snapshotColumns returns; it is
// used for the few children of one record.
func (sn *snapshotTx) collect(ctx context.Context, st *sql.Stmt, args ...any) ([]seqRecord, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("snapshot children: %w", err)
	}
	defer rows.Close()
	var out []seqRecord
	for rows.Next() {
		rec, seq, err := scanSnapshotRecord(rows, false)
		if err != nil {
			return nil, err
		}
		out = append(out, seqRecord{rec: rec, seq: seq})
	}
	return out, rows.Err()
}

// movedChildren returns, for an AsOf snapshot, the records of entity that
// existed at the point and were moved to another parent after it, by their
// parent at the point. Such moves are rare (a re-pointed inspection, a
// merge of duplicate households), so the map stays small.
func (sn *snapshotTx) movedChildren(ctx context.Context, entity string) (map[string][]string, error) {
	if m, ok := sn.moved[entity]; ok {
		return m, nil
	}
	form := sn.schema.Form(entity)
	rows, err := sn.tx.QueryContext(ctx, `SELECT DISTINCT c.record_id FROM changes c
		WHERE c.seq > ? AND c.entity = ? AND json_extract(c.diff, ?) IS NOT NULL
		AND EXISTS (SELECT 1 FROM changes p WHERE p.record_id = c.record_id AND p.seq <= ?)`,
		sn.at, entity, "$."+form.Parent.Field, sn.at)
	if err != nil {
		return nil, fmt.Errorf("snapshot moved children: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("snapshot moved children: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("snapshot moved children: %w", err)
	}
	m := map[string][]string{}
	for _, id := range ids {
		st, err := sn.stmt(ctx, `SELECT `+snapshotColumns+` FROM records r WHERE r.id = ?`)
		if err != nil {
			return nil, err
		}
		recs, err := sn.collect(ctx, st, id)
		if err != nil {
			return nil, err
		}
		for _, c := range recs {
			rec := c.rec
			if existed, err := sn.rebuild(ctx, &rec); err != nil {
				return nil, err
			} else if existed && rec.Parent != "" {
				m[rec.Parent] = append(m[rec.Parent], rec.ID)
			}
		}
	}
	if sn.moved == nil {
		sn.moved = map[string]map[string][]string{}
	}
	sn.moved[entity] = m
	return m, nil
}

// laterChild orders children as the SQL lookup does: by the by field
// (absent first), then the last update, then the id.
func laterChild(a, b *syncproto.StoredRecord, by string) bool {
	av, bv := jsonText(a.Fields[by]), jsonText(b.Fields[by])
	if av != bv {
		return av > bv
	}
	if !a.UpdatedAt.Equal(b.UpdatedAt) {
		return a.UpdatedAt.After(b.UpdatedAt)
	}
	return a.ID > b.ID
}

// jsonText returns a JSON string's text, or "" for anything else.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}
