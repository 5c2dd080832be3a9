package client

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Report is what one Sync did.
type Report struct {
	Pushed    int  // change sets acknowledged
	Changes   int  // changes in them
	Replayed  int  // change sets acknowledged as replays: an earlier answer was lost
	Conflicts int  // concurrent-edit decisions reported
	Refused   int  // changes (and photos) the server did not take (see Refused)
	Photos    int  // photos uploaded
	Pulled    int  // records received (removals included)
	Verified  bool // the copy matched the server's checksum
	Repaired  bool // it did not, and the scope was pulled again

	// PhotosWaiting counts photos whose changes were pushed without them:
	// the server could not take them yet (507, short of disk; 429, over
	// the user's quotas). They stay queued and go with a later sync; until
	// their bytes arrive, other tablets cannot download them.
	PhotosWaiting int
	// PhotosWaitReason is the server's answer that put photos off in this
	// sync, when it did.
	PhotosWaitReason string
}

// Sync pushes every pending edit, pulls every change, and checks the copy
// against the server. It retries transient failures until ctx ends; it
// returns ErrLoginRequired, ErrAccountDisabled or ErrDeviceRevoked when the server no longer
// accepts this device's tokens. An interrupted Sync loses nothing: the
// next one resends the same change set and pulls from the last page kept.
func (c *Client) Sync(ctx context.Context) (Report, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	var rep Report
	if err := c.push(ctx, &rep, 0); err != nil {
		return rep, err
	}
	if err := c.pull(ctx, &rep, false); err != nil {
		return rep, err
	}
	if err := c.verify(ctx, &rep); err != nil {
		return rep, err
	}
	if err := c.refreshConflicts(ctx); err != nil {
		return rep, err
	}
	return rep, setMeta(ctx, c.db, "last_sync", c.opts.Now().UTC().Format(time.RFC3339Nano))
}

// Push only pushes the outbox (each change set until it is acknowledged
// or refused), without pulling. Sync does both.
func (c *Client) Push(ctx context.Context) (Report, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	var rep Report
	return rep, c.push(ctx, &rep, 0)
}

// PushNext pushes one change set, the next of the outbox (the one in
// flight first), until it is acknowledged or refused, and leaves the rest
// for later: for an app that spreads its pushes out, on a metered link or
// in short moments of coverage. Report.Pushed and Refused say what became
// of it; the photos earlier pushes left behind (Report.PhotosWaiting) are
// sent after it, or alone when the outbox is empty.
func (c *Client) PushNext(ctx context.Context) (Report, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	var rep Report
	return rep, c.push(ctx, &rep, 1)
}

// Pull only pulls: the server's changes since the last pull, laid under
// the pending edits (which it never touches). Sync pushes first.
func (c *Client) Pull(ctx context.Context) (Report, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	var rep Report
	return rep, c.pull(ctx, &rep, false)
}

// inflightSet is the change set being pushed.
type inflightSet struct {
	id   string
	seq  int64
	body []byte
	cs   syncproto.Changeset
}

// push sends the outbox, one change set at a time, each until it is
// acknowledged or refused: at most sets of them when sets > 0. Then it
// sends the photos that earlier pushes had to leave behind, and counts
// those still waiting in rep.
func (c *Client) push(ctx context.Context, rep *Report, sets int) error {
	var round photoRound
	err := c.pushSets(ctx, rep, sets, &round)
	if err == nil {
		err = c.uploadWaiting(ctx, rep, &round)
	}
	if cerr := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM photos WHERE state = ?`, photoWaiting).Scan(&rep.PhotosWaiting); err == nil {
		err = cerr
	}
	if round.later != nil && rep.PhotosWaiting > 0 {
		rep.PhotosWaitReason = round.later.Error()
	}
	return err
}

// pushSets is push without the photos left behind.
func (c *Client) pushSets(ctx context.Context, rep *Report, sets int, round *photoRound) error {
	renumbered := 0
	for done := 0; sets <= 0 || done < sets; {
		set, err := c.nextChangeset(ctx)
		if err != nil || set == nil {
			return err
		}
		if err := c.uploadPhotos(ctx, set, rep, round); err != nil {
			return err
		}
		var resp syncproto.PushResponse
		err = c.retry(ctx, func(ctx context.Context) error {
			return c.call(ctx, http.MethodPost, "/v1/sync/push", set.body, &resp)
		})
		var p *Problem
		switch {
		case err == nil:
			if err := c.acknowledge(ctx, set, resp, rep); err != nil {
				return err
			}
			done++
		case errors.As(err, &p) && p.Status == http.StatusConflict && p.LastDeviceSeq != nil && renumbered < 3:
			// The server accepted a later device_seq from this device id
			// than this database knows (a restored tablet): this change
			// set was not applied (it is not a replay), so number it anew.
			renumbered++
			if err := c.renumber(ctx, set, *p.LastDeviceSeq); err != nil {
				return err
			}
		case errors.As(err, &p) && p.Status >= 400 && p.Status < 500 && p.Status != http.StatusUnauthorized:
			if err := c.refuse(ctx, set, p, rep); err != nil {
				return err
			}
			done++
		default:
			return err
		}
	}
	return nil
}

// nextChangeset returns the change set in flight (the sealed one of the
// lowest device_seq: an exported outbox seals them all), or makes one from
// the oldest edits of the outbox (nil when the outbox is empty). Making it
// moves the edits out of the outbox and takes the next device_seq in one
// local transaction, so that it is sent with the same id and body however
// often it must be retried, across restarts.
func (c *Client) nextChangeset(ctx context.Context) (*inflightSet, error) {
	var set *inflightSet
	err := c.tx(ctx, func(tx *sql.Tx) error {
		var s inflightSet
		err := tx.QueryRowContext(ctx, `SELECT changeset_id, device_seq, body FROM inflight ORDER BY device_seq LIMIT 1`).
			Scan(&s.id, &s.seq, &s.body)
		if err == nil {
			set = &s
			return json.Unmarshal(s.body, &s.cs)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		set, err = c.seal(ctx, tx)
		return err
	})
	return set, err
}

// seal makes a change set of the oldest edits of the outbox (at most
// BatchSize), with the next device_seq and a new UUIDv7 id, stamped with
// the schema version the device is on (the one the edits were validated
// in: a switch of version seals the outbox first), and keeps it in the
// inflight table, in tx. It returns nil when the outbox is empty.
func (c *Client) seal(ctx context.Context, tx *sql.Tx) (*inflightSet, error) {
	rows, err := tx.QueryContext(ctx, `SELECT record_id, entity, op, base_version, fields, at FROM outbox
		ORDER BY pos LIMIT ?`, c.opts.BatchSize)
	if err != nil {
		return nil, err
	}
	var changes []syncproto.Change
	for rows.Next() {
		var ch syncproto.Change
		var fields string
		if err := rows.Scan(&ch.ID, &ch.Entity, &ch.Op, &ch.BaseVersion, &fields, &ch.At); err != nil {
			rows.Close()
			return nil, err
		}
		if err := json.Unmarshal([]byte(fields), &ch.Fields); err != nil {
			rows.Close()
			return nil, err
		}
		if ch.Op == "delete" {
			ch.Fields = nil
		}
		changes = append(changes, ch)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(changes) == 0 {
		return nil, err
	}
	last, err := c.metaInt(ctx, tx, "device_seq")
	if err != nil {
		return nil, err
	}
	version, err := sealVersion(ctx, tx)
	if err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	s := inflightSet{id: id.String(), seq: last + 1}
	s.cs = syncproto.Changeset{ChangesetID: s.id, DeviceID: c.device, DeviceSeq: s.seq, SchemaVersion: version, Changes: changes}
	if s.body, err = json.Marshal(s.cs); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO inflight (changeset_id, device_seq, body) VALUES (?, ?, ?)`,
		s.id, s.seq, string(s.body)); err != nil {
		return nil, err
	}
	for _, ch := range changes {
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE record_id = ?`, ch.ID); err != nil {
			return nil, err
		}
	}
	return &s, setMeta(ctx, tx, "device_seq", fmt.Sprint(s.seq))
}

// renumber gives the change sets in flight (set first, then any others
// sealed after it, in order) new ids and device_seqs after the server's
// last accepted one.
func (c *Client) renumber(ctx context.Context, set *inflightSet, serverLast int64) error {
	return c.tx(ctx, func(tx *sql.Tx) error {
		last, err := c.metaInt(ctx, tx, "device_seq")
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT changeset_id, body FROM inflight ORDER BY device_seq`)
		if err != nil {
			return err
		}
		type sealed struct{ id, body string }
		var all []sealed
		for rows.Next() {
			var s sealed
			if err := rows.Scan(&s.id, &s.body); err != nil {
				rows.Close()
				return err
			}
			all = append(all, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		next := max(last, serverLast)
		for _, s := range all {
			var cs syncproto.Changeset
			if err := json.Unmarshal([]byte(s.body), &cs); err != nil {
				return err
			}
			id, err := uuid.NewV7()
			if err != nil {
				return err
			}
			next++
			cs.ChangesetID, cs.DeviceSeq = id.String(), next
			body, err := json.Marshal(cs)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE inflight SET changeset_id = ?, device_seq = ?, body = ? WHERE changeset_id = ?`,
				cs.ChangesetID, cs.DeviceSeq, string(body), s.id); err != nil {
				return err
			}
			if s.id == set.id {
				set.id, set.seq, set.body, set.cs = cs.ChangesetID, cs.DeviceSeq, body, cs
			}
		}
		return setMeta(ctx, tx, "device_seq", fmt.Sprint(next))
	})
}

// acknowledge records the server's answer to the change set in flight:
// the conflicts it reports, the changes it rejected, and, for the rest, an
// overlay that stays until a pull brings the new versions.
func (c *Client) acknowledge(ctx context.Context, set *inflightSet, resp syncproto.PushResponse, rep *Report) error {
	byID := make(map[string]syncproto.Change, len(set.cs.Changes))
	for _, ch := range set.cs.Changes {
		byID[ch.ID] = ch
	}
	now := syncproto.FormatTime(c.opts.Now())
	vc, err := c.chain(ctx)
	if err != nil {
		return err
	}
	err = c.tx(ctx, func(tx *sql.Tx) error {
		for _, res := range resp.Results {
			ch, ok := byID[res.ID]
			if !ok {
				continue
			}
			for _, cf := range res.Conflicts {
				if _, err := tx.ExecContext(ctx, `INSERT INTO conflicts (conflict_id, changeset_id, entity, record_id,
					field, policy, state, kept, incoming, stored, reported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
					ON CONFLICT (conflict_id) DO NOTHING`, cf.ConflictID, set.id, ch.Entity, ch.ID, cf.Field, cf.Policy,
					cf.State, rawOrNull(cf.Kept), rawOrNull(cf.Incoming), rawOrNull(cf.Stored), now); err != nil {
					return err
				}
				rep.Conflicts++
			}
			if res.Status == "rejected" {
				reason, _ := json.Marshal(res.Errors)
				if err := insertRefused(ctx, tx, set.id, ch, "rejected: "+string(reason), now); err != nil {
					return err
				}
				rep.Refused++
				continue
			}
			// Laid over an earlier acknowledged change of the record, if
			// any (a null, which clears a field, is kept as a value).
			// Both in the version the device is on.
			merged := map[string]json.RawMessage{}
			var prior string
			var priorVersion int
			if err := tx.QueryRowContext(ctx, `SELECT fields, schema_version FROM acked WHERE record_id = ?`, ch.ID).Scan(&prior, &priorVersion); err == nil {
				if err := json.Unmarshal([]byte(prior), &merged); err != nil {
					return err
				}
				merged = vc.up(priorVersion, ch.Entity, merged, false)
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			for k, v := range vc.up(set.cs.SchemaVersion, ch.Entity, ch.Fields, ch.BaseVersion == 0) {
				merged[k] = v
			}
			fields, _ := json.Marshal(merged)
			if _, err := tx.ExecContext(ctx, `INSERT INTO acked (record_id, entity, op, version, fields, schema_version) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (record_id) DO UPDATE SET op = excluded.op, version = excluded.version, fields = excluded.fields,
				schema_version = excluded.schema_version`,
				ch.ID, ch.Entity, ch.Op, res.Version, string(fields), max(vc.current, 1)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM inflight WHERE changeset_id = ?`, set.id)
		return err
	})
	if err != nil {
		return err
	}
	rep.Pushed++
	rep.Changes += len(set.cs.Changes)
	if resp.Replayed {
		rep.Replayed++
	}
	return nil
}

func rawOrNull(r json.RawMessage) string {
	if len(r) == 0 {
		return "null"
	}
	return string(r)
}

func insertRefused(ctx context.Context, tx *sql.Tx, setID string, ch syncproto.Change, reason, now string) error {
	raw, _ := json.Marshal(ch)
	_, err := tx.ExecContext(ctx, `INSERT INTO refused (changeset_id, entity, record_id, reason, change, reported_at)
		VALUES (?, ?, ?, ?, ?, ?)`, setID, ch.Entity, ch.ID, reason, string(raw), now)
	return err
}

// refuse keeps a change set the server refused as a whole (out of scope,
// invalid) with the reason, and takes it out of flight so that the next
// one can go.
func (c *Client) refuse(ctx context.Context, set *inflightSet, p *Problem, rep *Report) error {
	now := syncproto.FormatTime(c.opts.Now())
	return c.tx(ctx, func(tx *sql.Tx) error {
		for _, ch := range set.cs.Changes {
			if err := insertRefused(ctx, tx, set.id, ch, p.Error(), now); err != nil {
				return err
			}
			rep.Refused++
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM inflight WHERE changeset_id = ?`, set.id)
		return err
	})
}

// pull follows the cursor until has_more is false, applying each page in
// one local transaction with the cursor after it. With fresh set it pulls
// the scope from the beginning and, at the end, drops every record the
// server did not send (the repair of a diverged copy).
func (c *Client) pull(ctx context.Context, rep *Report, fresh bool) error {
	gen, err := c.metaInt(ctx, c.db, "gen")
	if err != nil {
		return err
	}
	cursor := ""
	if fresh {
		gen++
	} else if cursor, err = c.meta(ctx, c.db, "cursor"); err != nil {
		return err
	}
	// In the device's version: the server down-converts what it stores
	// in a newer one (and flags what this version cannot hold).
	version, err := c.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	inVersion := ""
	if version > 0 {
		inVersion = fmt.Sprintf("&schema_version=%d", version)
	}
	for {
		var page syncproto.PullResponse
		path := fmt.Sprintf("/v1/sync/pull?limit=%d&cursor=%s%s", c.opts.PullLimit, url.QueryEscape(cursor), inVersion)
		err := c.retry(ctx, func(ctx context.Context) error { return c.call(ctx, http.MethodGet, path, nil, &page) })
		var p *Problem
		if !fresh && errors.As(err, &p) && p.Status == http.StatusUnprocessableEntity && len(p.Errors) > 0 && p.Errors[0].Path == "cursor" {
			// The server no longer knows our position (restored from
			// a backup): pull the scope again.
			return c.pull(ctx, rep, true)
		}
		if err != nil {
			return err
		}
		last := !page.HasMore
		err = c.tx(ctx, func(tx *sql.Tx) error {
			if err := c.applyPage(ctx, tx, page.Records, gen); err != nil {
				return err
			}
			if fresh && !last {
				return nil // the position is kept only when the repair is whole
			}
			if err := setMeta(ctx, tx, "cursor", page.Cursor); err != nil {
				return err
			}
			if !last {
				return nil
			}
			if fresh {
				if _, err := tx.ExecContext(ctx, `DELETE FROM records WHERE gen < ?`, gen); err != nil {
					return err
				}
				if err := setMeta(ctx, tx, "gen", fmt.Sprint(gen)); err != nil {
					return err
				}
			}
			// Every acknowledged change is now in the copy (or left the
			// scope): the overlays of acknowledged changes can go.
			_, err := tx.ExecContext(ctx, `DELETE FROM acked`)
			return err
		})
		if err != nil {
			return err
		}
		rep.Pulled += len(page.Records)
		cursor = page.Cursor
		if last {
			return nil
		}
	}
}

func (c *Client) applyPage(ctx context.Context, tx *sql.Tx, records []syncproto.Record, gen int64) error {
	for _, r := range records {
		if r.Removed {
			if _, err := tx.ExecContext(ctx, `DELETE FROM records WHERE id = ?`, r.ID); err != nil {
				return err
			}
			continue
		}
		fields, err := json.Marshal(r.Fields)
		if err != nil {
			return err
		}
		flags := ""
		if len(r.Flags) > 0 {
			b, _ := json.Marshal(r.Flags)
			flags = string(b)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO records (id, entity, version, fields, deleted, merged_into,
			updated_at, updated_by, gen, flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET entity = excluded.entity, version = excluded.version, fields = excluded.fields,
			deleted = excluded.deleted, merged_into = excluded.merged_into, updated_at = excluded.updated_at,
			updated_by = excluded.updated_by, gen = excluded.gen, flags = excluded.flags`,
			r.ID, r.Entity, r.Version, string(fields), r.Deleted, r.MergedInto, r.UpdatedAt, r.UpdatedBy, gen, flags); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM acked WHERE record_id = ? AND version <= ?`, r.ID, r.Version); err != nil {
			return err
		}
		if err := c.observe(ctx, tx, r.UpdatedAt); err != nil {
			return err
		}
	}
	return nil
}

// LocalChecksum is the checksum of the server's records as this device
// holds them (see syncproto.Checksum).
func (c *Client) LocalChecksum(ctx context.Context) (syncproto.Checksum, error) {
	var sum syncproto.Checksum
	rows, err := c.db.QueryContext(ctx, `SELECT id, version FROM records`)
	if err != nil {
		return sum, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return sum, err
		}
		sum.Add(id, v)
	}
	return sum, rows.Err()
}

// verify compares the copy with the server's checksum at the same
// position; on a mismatch it pulls the scope again (the outbox was pushed
// first, and pending edits are never touched). When the server moves on
// between the pull and the checksum, it pulls again, a few times.
func (c *Client) verify(ctx context.Context, rep *Report) error {
	for attempt := 0; attempt < 4; attempt++ {
		var sum syncproto.ChecksumResponse
		if err := c.retry(ctx, func(ctx context.Context) error {
			return c.call(ctx, http.MethodGet, "/v1/sync/checksum", nil, &sum)
		}); err != nil {
			return err
		}
		cursor, err := c.meta(ctx, c.db, "cursor")
		if err != nil {
			return err
		}
		if sum.Cursor != cursor {
			if err := c.pull(ctx, rep, false); err != nil {
				return err
			}
			continue
		}
		local, err := c.LocalChecksum(ctx)
		if err != nil {
			return err
		}
		if local.String() == sum.Checksum && local.Count == sum.Count {
			rep.Verified = true
			return setMeta(ctx, c.db, "last_verified", c.opts.Now().UTC().Format(time.RFC3339Nano))
		}
		if rep.Repaired {
			return fmt.Errorf("client: the copy differs from the server's after a repair (%d records, server %d)", local.Count, sum.Count)
		}
		rep.Repaired = true
		if err := c.pull(ctx, rep, true); err != nil {
			return err
		}
	}
	return nil // the server kept moving: not verified this time
}

// refreshConflicts asks the server about the conflicts still open here
// (GET /v1/sync/conflicts), so that a supervisor's decision shows on the
// tablet as resolved, with the value decided.
func (c *Client) refreshConflicts(ctx context.Context) error {
	open, err := queryStrings(ctx, c.db, `SELECT conflict_id FROM conflicts WHERE state = 'open' ORDER BY conflict_id`)
	if err != nil {
		return err
	}
	for len(open) > 0 {
		batch := open[:min(len(open), 100)]
		open = open[len(batch):]
		var answer struct {
			Conflicts []struct {
				ConflictID string          `json:"conflict_id"`
				State      string          `json:"state"`
				Kept       json.RawMessage `json:"kept"`
				Resolution *struct {
					Value json.RawMessage `json:"value"`
				} `json:"resolution"`
			} `json:"conflicts"`
		}
		path := "/v1/sync/conflicts?ids=" + url.QueryEscape(strings.Join(batch, ","))
		err := c.retry(ctx, func(ctx context.Context) error { return c.call(ctx, http.MethodGet, path, nil, &answer) })
		var p *Problem
		if errors.As(err, &p) && p.Status == http.StatusNotFound {
			return nil // a server without the endpoint: states stay as reported
		}
		if err != nil {
			return err
		}
		err = c.tx(ctx, func(tx *sql.Tx) error {
			for _, cf := range answer.Conflicts {
				kept := cf.Kept
				if cf.Resolution != nil {
					kept = cf.Resolution.Value
				}
				if _, err := tx.ExecContext(ctx, `UPDATE conflicts SET state = ?, kept = ? WHERE conflict_id = ?`,
					cf.State, rawOrNull(kept), cf.ConflictID); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
