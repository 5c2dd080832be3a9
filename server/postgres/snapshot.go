package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// snapshotBatch is how many rows a snapshot fetches from its cursor at a
// time: memory holds a batch, not the region.
const snapshotBatch = 64

// Snapshot streams the records q asks for in the actor's scope from one
// read-only REPEATABLE READ transaction: every query of it sees the same
// committed change sets, whole, whatever commits meanwhile on any
// instance (syncproto.SnapshotStore).
//
// It follows the SQLite store's reading: records whose last change is at
// or before the snapshot's point are read as stored, village by village;
// with q.AsOf before the head, the records changed after it are rebuilt
// from the change log (the later diffs undone, newest first). The outer
// reads go through a server-side cursor (DECLARE … FETCH), a batch at a
// time, because a connection cannot run the per-row lookups (the latest
// child, the parent, a rebuild) while a result set is still open on it.
func (s *Store) Snapshot(ctx context.Context, actor syncproto.Actor, q syncproto.SnapshotQuery, sink syncproto.SnapshotSink) error {
	sch := q.Schema
	if sch == nil {
		sch = schema.V1()
	}
	if err := checkSnapshotQuery(sch, q); err != nil {
		return err
	}
	return s.read(ctx, func(tx pgx.Tx) error {
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
	})
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
		if f.Parent == nil || f.Field(q.LatestBy) == nil {
			return invalid("latest_by", "must be a field of "+e+", which must belong to another record")
		}
	}
	return nil
}

// snapshotTx is one snapshot in progress.
type snapshotTx struct {
	tx     pgx.Tx
	schema *schema.Schema
	actor  syncproto.Actor
	q      syncproto.SnapshotQuery
	at     int64 // the point the snapshot shows
	head   int64 // the head of the change log in this transaction
	sink   syncproto.SnapshotSink

	cursors int // cursors declared so far, for their names
	// moved maps, per Latest entity, a parent id to the children that
	// belonged to it at the point and belong to another record now.
	moved map[string]map[string][]string
}

const snapshotColumns = `r.id, r.entity, r.version, r.village, COALESCE(r.parent_id, ''), r.fields, r.deleted,
	COALESCE(r.merged_into, ''), r.updated_at, r.updated_by, r.seq`

// seqRecord is a record with its position in the change log, and the
// extra columns of its row (the latest children as JSON).
type seqRecord struct {
	rec    syncproto.StoredRecord
	seq    int64
	latest []*string
}

// scanSnapshotRecord reads snapshotColumns, then extra text columns. With
// raw, the fields stay as stored (RawFields), not decoded.
func scanSnapshotRecord(row pgx.Row, raw bool, extra int) (seqRecord, error) {
	var out seqRecord
	r := &out.rec
	var updated, fields string
	out.latest = make([]*string, extra)
	dest := []any{&r.ID, &r.Entity, &r.Version, &r.Village, &r.Parent, &fields, &r.Deleted, &r.MergedInto,
		&updated, &r.UpdatedBy, &out.seq}
	for i := range out.latest {
		dest = append(dest, &out.latest[i])
	}
	if err := row.Scan(dest...); err != nil {
		return out, fmt.Errorf("snapshot: %w", err)
	}
	r.UpdatedAt = parseTime(updated)
	if raw {
		r.RawFields = json.RawMessage(fields)
		return out, nil
	}
	if err := json.Unmarshal([]byte(fields), &r.Fields); err != nil {
		return out, fmt.Errorf("snapshot %s fields: %w", r.ID, err)
	}
	return out, nil
}

// each runs query through a server-side cursor and calls fn on every row,
// snapshotBatch rows at a time: between batches the connection is free for
// fn's own queries.
func (sn *snapshotTx) each(ctx context.Context, query string, args []any, raw bool, extra int, fn func(seqRecord) error) error {
	sn.cursors++
	name := fmt.Sprintf("snapshot_%d", sn.cursors)
	if _, err := sn.tx.Exec(ctx, `DECLARE `+name+` NO SCROLL CURSOR FOR `+query, args...); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	for {
		// Described at each fetch, not cached: the same FETCH text returns
		// other columns in another snapshot.
		rows, err := sn.tx.Query(ctx, fmt.Sprintf(`FETCH FORWARD %d FROM %s`, snapshotBatch, name), pgx.QueryExecModeDescribeExec)
		batch, err := collect(rows, err, "snapshot", func(r pgx.Row) (seqRecord, error) { return scanSnapshotRecord(r, raw, extra) })
		if err != nil {
			return err
		}
		for _, r := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(batch) < snapshotBatch {
			break
		}
	}
	if _, err := sn.tx.Exec(ctx, `CLOSE `+name); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// records reads the few records a query of snapshotColumns returns (the
// children of one record, one record by id).
func (sn *snapshotTx) records(ctx context.Context, query string, args ...any) ([]seqRecord, error) {
	rows, err := sn.tx.Query(ctx, query, args...)
	return collect(rows, err, "snapshot children", func(r pgx.Row) (seqRecord, error) { return scanSnapshotRecord(r, false, 0) })
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

// unchanged emits the records of entity in scope whose last change is at
// or before the snapshot's point, as they are stored: one range of the
// records_village index per scope prefix ([p, p+":"), ':' following the
// digits in "C" order), so rows come ordered by village.
func (sn *snapshotTx) unchanged(ctx context.Context, entity string) error {
	var cols strings.Builder
	cols.WriteString(snapshotColumns)
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	sqlLatest := len(sn.q.Latest) > 0 && sn.at == sn.head
	if sqlLatest {
		// At the head, the latest child of each row is one correlated
		// lookup through the records_parent index; absent values sort
		// lowest, as in SQLite.
		by := arg(sn.q.LatestBy)
		for _, e := range sn.q.Latest {
			cols.WriteString(`, (SELECT json_build_object('id', i.id, 'version', i.version, 'village', i.village,
				'fields', i.fields::json, 'merged_into', i.merged_into, 'updated_at', i.updated_at, 'updated_by', i.updated_by)::text
				FROM records i WHERE i.parent_id = r.id AND i.entity = ` + arg(e) + ` AND NOT i.deleted
				ORDER BY ((CASE WHEN strpos(i.fields, E'\\u0000') = 0 THEN i.fields::jsonb END) ->> ` + by + `) COLLATE "C" DESC NULLS LAST, i.updated_at DESC, i.id DESC LIMIT 1)`)
		}
	}
	where := `r.entity = ` + arg(entity) + ` AND r.seq <= ` + arg(sn.at)
	if !sn.q.Tombstones {
		where += ` AND NOT r.deleted`
	}
	all, prefixes := scopePrefixes(sn.actor)
	var ranges [][]any
	lo, hi := "", ""
	if all {
		ranges = [][]any{nil}
	} else {
		lo, hi = arg(""), arg("")
		where += ` AND r.village >= ` + lo + ` AND r.village < ` + hi
		for _, p := range prefixes {
			ranges = append(ranges, []any{p, p + ":"})
		}
	}
	query := `SELECT ` + cols.String() + ` FROM records r WHERE ` + where + ` ORDER BY r.village, r.id`
	extra := 0
	if sqlLatest {
		extra = len(sn.q.Latest)
	}
	for _, rng := range ranges {
		if rng != nil {
			args[len(args)-2], args[len(args)-1] = rng[0], rng[1]
		}
		if err := sn.each(ctx, query, args, sn.q.RawFields, extra, func(r seqRecord) error {
			return sn.emit(ctx, r, sqlLatest)
		}); err != nil {
			return err
		}
	}
	return nil
}

// emit sends one row of unchanged to the sink, with its latest children
// (from the row's own columns at the head, rebuilt for an AsOf snapshot)
// and its parent when asked.
func (sn *snapshotTx) emit(ctx context.Context, r seqRecord, sqlLatest bool) error {
	row := syncproto.SnapshotRow{Record: r.rec}
	switch {
	case sqlLatest:
		for i, col := range r.latest {
			if col == nil {
				continue
			}
			child, err := decodeLatest(sn.q.Latest[i], r.rec.ID, *col)
			if err != nil {
				return err
			}
			if row.Latest == nil {
				row.Latest = map[string]*syncproto.StoredRecord{}
			}
			row.Latest[sn.q.Latest[i]] = child
		}
	case len(sn.q.Latest) > 0:
		var err error
		if row.Latest, err = sn.latestAt(ctx, r.rec.ID); err != nil {
			return err
		}
	}
	if err := sn.withParent(ctx, &row); err != nil {
		return err
	}
	return sn.sink.Row(row)
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
// scope then, in the order of their last change.
func (sn *snapshotTx) changedSince(ctx context.Context, entity string) error {
	return sn.each(ctx, `SELECT `+snapshotColumns+` FROM records r WHERE r.seq > $1 AND r.entity = $2 ORDER BY r.seq`,
		[]any{sn.at, entity}, false, 0, func(r seqRecord) error {
			rec := r.rec
			existed, err := sn.rebuild(ctx, &rec)
			if err != nil {
				return err
			}
			if !existed || rec.Deleted && !sn.q.Tombstones || !sn.actor.InScope(rec.Village) {
				return nil
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
			return sn.sink.Row(row)
		})
}

// logStep is one change of a record's log, as rebuild reads it.
type logStep struct {
	seq, version                    int64
	op, diff, village, serverAt, by string
}

// rebuild turns rec, read as it is now, into the record as it was at the
// snapshot's point, from its change log: the diffs of later changes undone
// newest first, and the version and village of its last change at or
// before the point, the time and user of its last change that was not a
// rescope. It reports false when the record did not exist then.
func (sn *snapshotTx) rebuild(ctx context.Context, rec *syncproto.StoredRecord) (bool, error) {
	rows, err := sn.tx.Query(ctx, `SELECT seq, version, op, diff, village, server_at, user_id FROM changes
		WHERE record_id = $1 ORDER BY seq DESC`, rec.ID)
	steps, err := collect(rows, err, "snapshot history of "+rec.ID, func(r pgx.Row) (logStep, error) {
		var s logStep
		err := r.Scan(&s.seq, &s.version, &s.op, &s.diff, &s.village, &s.serverAt, &s.by)
		return s, err
	})
	if err != nil {
		return false, err
	}
	existed := false
	for _, s := range steps {
		if s.seq > sn.at {
			if err := undo(rec, s.diff); err != nil {
				return false, err
			}
			continue
		}
		if !existed {
			existed = true
			rec.Version, rec.Village = s.version, s.village
		}
		if s.op != syncproto.OpRescope {
			rec.UpdatedAt, rec.UpdatedBy = parseTime(s.serverAt), s.by
			break
		}
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

// mergedIntoField is the pseudo-field under which a household merge
// records the survivor a tombstone names.
const mergedIntoField = "_merged_into"

// undo reverts one change's diff on rec.
func undo(rec *syncproto.StoredRecord, diff string) error {
	var changes map[string]syncproto.FieldChange
	if err := json.Unmarshal([]byte(diff), &changes); err != nil {
		return fmt.Errorf("snapshot diff of %s: %w", rec.ID, err)
	}
	for name, ch := range changes {
		if strings.HasPrefix(name, "_") {
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
// Latest entity that belonged to parent at the snapshot's point.
func (sn *snapshotTx) latestAt(ctx context.Context, parent string) (map[string]*syncproto.StoredRecord, error) {
	var out map[string]*syncproto.StoredRecord
	for _, entity := range sn.q.Latest {
		moved, err := sn.movedChildren(ctx, entity)
		if err != nil {
			return nil, err
		}
		candidates, err := sn.records(ctx, `SELECT `+snapshotColumns+` FROM records r WHERE r.parent_id = $1 AND r.entity = $2`, parent, entity)
		if err != nil {
			return nil, err
		}
		for _, id := range moved[parent] {
			more, err := sn.records(ctx, `SELECT `+snapshotColumns+` FROM records r WHERE r.id = $1`, id)
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
			if best == nil || laterChild(&rec, best, sn.q.LatestBy) {
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

// movedChildren returns, for an AsOf snapshot, the records of entity that
// existed at the point and were moved to another parent after it, by their
// parent at the point.
func (sn *snapshotTx) movedChildren(ctx context.Context, entity string) (map[string][]string, error) {
	if m, ok := sn.moved[entity]; ok {
		return m, nil
	}
	form := sn.schema.Form(entity)
	rows, err := sn.tx.Query(ctx, `SELECT DISTINCT c.record_id FROM changes c
		WHERE c.seq > $1 AND c.entity = $2 AND ((CASE WHEN strpos(c.diff, E'\\u0000') = 0 THEN c.diff::jsonb END) -> $3::text) IS NOT NULL
		AND EXISTS (SELECT 1 FROM changes p WHERE p.record_id = c.record_id AND p.seq <= $1)`,
		sn.at, entity, form.Parent.Field)
	ids, err := collect(rows, err, "snapshot moved children", func(r pgx.Row) (string, error) {
		var id string
		err := r.Scan(&id)
		return id, err
	})
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, id := range ids {
		recs, err := sn.records(ctx, `SELECT `+snapshotColumns+` FROM records r WHERE r.id = $1`, id)
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

// parentAt returns the record id names (a row's parent) as it was at the
// snapshot's point, or nil when it did not exist then.
func (sn *snapshotTx) parentAt(ctx context.Context, id string) (*syncproto.StoredRecord, error) {
	found, err := sn.records(ctx, `SELECT `+snapshotColumns+` FROM records r WHERE r.id = $1`, id)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	p := found[0]
	if p.seq > sn.at {
		existed, err := sn.rebuild(ctx, &p.rec)
		if err != nil || !existed {
			return nil, err
		}
	}
	return &p.rec, nil
}

// withParent adds the row's parent when the query asks for parents.
func (sn *snapshotTx) withParent(ctx context.Context, row *syncproto.SnapshotRow) error {
	if !sn.q.Parents || row.Record.Parent == "" {
		return nil
	}
	var err error
	row.Parent, err = sn.parentAt(ctx, row.Record.Parent)
	return err
}
