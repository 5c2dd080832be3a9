package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fieldsync/fieldsync/syncproto"
)

// FlaggedVersions returns the versions of the change log in the actor's
// scope that carry any of flags, in log order after position after. It
// reads the partial index changes_flagged (migration 00018), so its cost
// is the flagged versions', not the log's.
func (s *Store) FlaggedVersions(ctx context.Context, actor syncproto.Actor, flags []string, after int64, limit int) ([]syncproto.FlaggedVersion, int64, error) {
	if len(flags) == 0 || limit <= 0 || (!actor.AllRegions && len(actor.Scope) == 0) {
		// Nothing to read (and SQLite, seeing a WHERE that is always
		// false, would find no plan through the index it is told to use).
		return nil, after, nil
	}
	where, args := scopeClause("village", actor)
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(flags)), ", ")
	args = append([]any{after}, args...)
	for _, f := range flags {
		args = append(args, f)
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT seq, entity, record_id, version, op, COALESCE(changeset_id, ''),
		user_id, device_id, device_at, server_at, flags, diff, conflict_ids, COALESCE(note, ''), village
		FROM changes INDEXED BY changes_flagged
		WHERE flags <> '[]' AND seq > ? AND `+where+`
		AND EXISTS (SELECT 1 FROM json_each(changes.flags) WHERE json_each.value IN (`+marks+`))
		ORDER BY seq LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, after, fmt.Errorf("flagged versions: %w", err)
	}
	defer rows.Close()
	var out []syncproto.FlaggedVersion
	for rows.Next() {
		var v syncproto.FlaggedVersion
		var devAt, srvAt, fl, diff, cids string
		if err := rows.Scan(&v.Seq, &v.Entity, &v.RecordID, &v.Version, &v.Op, &v.ChangesetID, &v.UserID, &v.DeviceID,
			&devAt, &srvAt, &fl, &diff, &cids, &v.Note, &v.Village); err != nil {
			return nil, after, fmt.Errorf("flagged versions: %w", err)
		}
		v.DeviceAt, v.ServerAt = parseTime(devAt), parseTime(srvAt)
		if err := errors.Join(json.Unmarshal([]byte(fl), &v.Flags), json.Unmarshal([]byte(diff), &v.Changes),
			json.Unmarshal([]byte(cids), &v.ConflictIDs)); err != nil {
			return nil, after, fmt.Errorf("flagged version %d: %w", v.Seq, err)
		}
		out = append(out, v)
		after = v.Seq
	}
	return out, after, rows.Err()
}
