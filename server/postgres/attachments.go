package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldsync/fieldsync/syncproto"
)

// indexPhotos makes attachment_refs hold exactly the photos that rec (the
// version being written) references, in rec's village, as the SQLite
// store does: a new digest is recorded as added by rec.UpdatedBy, a kept
// one keeps who added it, a dropped one is recorded as released at now.
func (p *pushTx) indexPhotos(ctx context.Context, rec *syncproto.StoredRecord, now time.Time) error {
	want := map[string]bool{}
	if raw, ok := rec.Fields[syncproto.PhotosField]; ok {
		var hashes []string
		if json.Unmarshal(raw, &hashes) == nil {
			for _, h := range hashes {
				if syncproto.ValidSHA256(h) {
					want[h] = true
				}
			}
		}
	}
	rows, err := p.query(ctx, `SELECT hash FROM attachment_refs WHERE record_id = ?`, rec.ID)
	have, err := hashSet(rows, err, "photo references")
	if err != nil {
		return err
	}
	at := formatTime(now)
	for h := range have {
		if want[h] {
			continue
		}
		if _, err := p.exec(ctx, `DELETE FROM attachment_refs WHERE hash = ? AND record_id = ?`, h, rec.ID); err != nil {
			return fmt.Errorf("photo references: %w", err)
		}
		if _, err := p.exec(ctx, `INSERT INTO attachment_released (hash, at) VALUES (?, ?)
			ON CONFLICT (hash) DO UPDATE SET at = excluded.at`, h, at); err != nil {
			return fmt.Errorf("photo references: %w", err)
		}
	}
	for h := range want {
		if have[h] {
			continue
		}
		if _, err := p.exec(ctx, `INSERT INTO attachment_refs (hash, record_id, village, added_by) VALUES (?, ?, ?, ?)`,
			h, rec.ID, rec.Village, rec.UpdatedBy); err != nil {
			return fmt.Errorf("photo references: %w", err)
		}
	}
	if len(have) > 0 {
		if err := p.movePhotos(ctx, rec.ID, rec.Village); err != nil {
			return err
		}
	}
	return nil
}

// hashSet is the set of the digests that rows (of one column) hold.
func hashSet(rows pgx.Rows, err error, what string) (map[string]bool, error) {
	list, err := collect(rows, err, what, func(r pgx.Row) (string, error) {
		var h string
		err := r.Scan(&h)
		return h, err
	})
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(list))
	for _, h := range list {
		set[h] = true
	}
	return set, nil
}

// movePhotos moves the photo references of a record to another village.
func (p *pushTx) movePhotos(ctx context.Context, recordID, village string) error {
	if _, err := p.exec(ctx, `UPDATE attachment_refs SET village = ? WHERE record_id = ? AND village <> ?`, village, recordID, village); err != nil {
		return fmt.Errorf("photo references of %s: %w", recordID, err)
	}
	return nil
}

// photoRefsQuery lists, for an array of digests ($1) and a user ($2),
// every reference with its village and whether it grants (legacy, or its
// maker proved possession), and, once per digest, whether the user proved
// possession (a row with a NULL village).
const photoRefsQuery = `
	SELECT r.hash, r.village, r.legacy OR EXISTS (SELECT 1 FROM attachment_uploads u
		WHERE u.hash = r.hash AND u.user_id = r.added_by)
	FROM attachment_refs r WHERE r.hash = ANY($1::text[])
	UNION ALL
	SELECT DISTINCT u.hash, NULL, TRUE FROM attachment_uploads u
	WHERE u.hash = ANY($1::text[]) AND u.user_id = $2`

// photoAccess answers PhotoAccess for several digests in one query.
func (s *Store) photoAccess(ctx context.Context, actor syncproto.Actor, hashes []string) (map[string]syncproto.PhotoAccess, error) {
	rows, err := s.pool.Query(ctx, photoRefsQuery, nonNil(hashes), actor.UserID)
	if err != nil {
		return nil, fmt.Errorf("photo access: %w", err)
	}
	defer rows.Close()
	out := map[string]syncproto.PhotoAccess{}
	for rows.Next() {
		var hash string
		var village *string
		var grants bool
		if err := rows.Scan(&hash, &village, &grants); err != nil {
			return nil, fmt.Errorf("photo access: %w", err)
		}
		a := out[hash]
		switch {
		case village == nil:
			a.Uploaded = true
		case !actor.InScope(*village):
			a.Referenced = true
		default:
			a.Referenced = true
			a.InScope = a.InScope || grants
			a.Pending = !a.InScope
		}
		out[hash] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("photo access: %w", err)
	}
	return out, nil
}

// PhotoAccess tells whether the actor may read the photo, through a
// granting reference in scope or an own upload, and whether any record
// references it (syncproto.AttachmentStore).
func (s *Store) PhotoAccess(ctx context.Context, actor syncproto.Actor, hash string) (syncproto.PhotoAccess, error) {
	all, err := s.photoAccess(ctx, actor, []string{hash})
	return all[hash], err
}

// ReadablePhotos returns the digests of hashes the actor may read
// (syncproto.AttachmentStore).
func (s *Store) ReadablePhotos(ctx context.Context, actor syncproto.Actor, hashes []string) (map[string]bool, error) {
	all, err := s.photoAccess(ctx, actor, hashes)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for h, a := range all {
		if a.Readable() {
			out[h] = true
		}
	}
	return out, nil
}

// PhotoUploaded records the actor's proof of possession of a photo, at
// the store's clock (syncproto.AttachmentStore).
func (s *Store) PhotoUploaded(ctx context.Context, actor syncproto.Actor, hash string) error {
	if !syncproto.ValidSHA256(hash) {
		return fmt.Errorf("photo upload: %q is not a SHA-256 digest", hash)
	}
	return s.write(ctx, "photo_upload", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO attachment_uploads (hash, user_id, device_id, at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (hash, user_id, device_id) DO UPDATE SET at = excluded.at`,
			hash, actor.UserID, actor.DeviceID, formatTime(s.now())); err != nil {
			return fmt.Errorf("photo upload: %w", err)
		}
		return nil
	})
}

// photosInUseQuery lists, of an array of digests ($1), those that a
// record's current fields reference, or that were uploaded or released at
// $2 or later.
const photosInUseQuery = `
	SELECT hash FROM attachment_refs WHERE hash = ANY($1::text[])
	UNION SELECT hash FROM attachment_uploads WHERE hash = ANY($1::text[]) AND at >= $2
	UNION SELECT hash FROM attachment_released WHERE hash = ANY($1::text[]) AND at >= $2`

// RemoveUnreferencedPhotos calls remove for each of hashes that no
// record's current fields reference and that was neither uploaded nor
// released at since or later, inside a transaction holding the write
// lock: no push of any instance can add a reference between the check and
// the removal; one that comes after finds the photo gone
// (syncproto.AttachmentStore).
func (s *Store) RemoveUnreferencedPhotos(ctx context.Context, hashes []string, since time.Time,
	remove func(sha256 string) (bool, error)) ([]string, error) {
	var removed []string
	err := s.write(ctx, "photo_sweep", func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, photosInUseQuery, nonNil(hashes), formatTime(since))
		inUse, err := hashSet(rows, err, "photos in use")
		if err != nil {
			return err
		}
		for _, h := range hashes {
			if inUse[h] {
				continue
			}
			ok, err := remove(h)
			if err != nil {
				return err
			}
			if ok {
				removed = append(removed, h)
			}
		}
		return nil
	})
	return removed, err
}
