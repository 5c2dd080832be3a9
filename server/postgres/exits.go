package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync/syncproto"
)

// FlaggedVersions returns the versions of the change log in the actor's
// scope that carry any of flags, in log order after position after,
// through the partial index changes_flagged (migration 00005).
func (s *Store) FlaggedVersions(ctx context.Context, actor syncproto.Actor, flags []string, after int64, limit int) ([]syncproto.FlaggedVersion, int64, error) {
	if len(flags) == 0 || limit <= 0 {
		return nil, after, nil
	}
	where, args := scopeClause("village", actor)
	args = append(append([]any{after}, args...), flags, limit)
	rows, err := s.pool.Query(ctx, rebind(`SELECT seq, entity, record_id, version, op, COALESCE(changeset_id, ''),
		user_id, device_id, device_at, server_at, flags, diff, conflict_ids, COALESCE(note, ''), village
		FROM changes WHERE flags <> '[]' AND seq > ? AND `+where+` AND jsonb_exists_any(flags::jsonb, ?::text[])
		ORDER BY seq LIMIT ?`), args...)
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
