package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fieldsync/fieldsync/syncproto"
)

// indexPhotos makes attachment_refs hold exactly the photos that rec (the
// version being written) references, in rec's village. WriteVersion calls
// it for every version, inside the push, resolution or merge transaction.
func (p *pushTx) indexPhotos(ctx context.Context, rec *syncproto.StoredRecord) error {
	if _, err := p.exec(ctx, `DELETE FROM attachment_refs WHERE record_id = ?`, rec.ID); err != nil {
		return fmt.Errorf("photo references: %w", err)
	}
	raw, ok := rec.Fields[syncproto.PhotosField]
	if !ok {
		return nil
	}
	var hashes []string
	if json.Unmarshal(raw, &hashes) != nil {
		return nil // null: the field was cleared
	}
	for _, h := range hashes {
		if !syncproto.ValidSHA256(h) {
			continue // the schema stores digests in lower case; anything else names no photo
		}
		if _, err := p.exec(ctx, `INSERT INTO attachment_refs (hash, record_id, village) VALUES (?, ?, ?)
			ON CONFLICT (hash, record_id) DO UPDATE SET village = excluded.village`, h, rec.ID, rec.Village); err != nil {
			return fmt.Errorf("photo references: %w", err)
		}
	}
	return nil
}

// movePhotos moves the photo references of a record to another village
// (an inspection whose household moved: rescopeChildren).
func (p *pushTx) movePhotos(ctx context.Context, recordID, village string) error {
	if _, err := p.exec(ctx, `UPDATE attachment_refs SET village = ? WHERE record_id = ?`, village, recordID); err != nil {
		return fmt.Errorf("photo references of %s: %w", recordID, err)
	}
	return nil
}

// PhotoAccess tells whether a record in the actor's scope references the
// photo, and whether any record does (syncproto.AttachmentStore).
func (s *Store) PhotoAccess(ctx context.Context, actor syncproto.Actor, hash string) (syncproto.PhotoAccess, error) {
	var out syncproto.PhotoAccess
	rows, err := s.reader.QueryContext(ctx, `SELECT village FROM attachment_refs WHERE hash = ?`, hash)
	if err != nil {
		return out, fmt.Errorf("photo access: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var village string
		if err := rows.Scan(&village); err != nil {
			return out, fmt.Errorf("photo access: %w", err)
		}
		out.Referenced = true
		if actor.InScope(village) {
			out.InScope = true
			return out, nil
		}
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("photo access: %w", err)
	}
	return out, nil
}
