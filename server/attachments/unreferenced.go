package attachments

import (
	"context"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// DefaultUnreferencedPhotoAge is how long a photo that no record
// references is kept unless configured: 30 days. A tablet uploads its
// photos before the push that references them and may lose coverage in
// between, for a team's days or weeks out of coverage; the Go client asks
// again before every push and re-sends a photo the server removed, but a
// tablet that does not may push a reference to a photo the server no
// longer holds, so the age is generous.
const DefaultUnreferencedPhotoAge = 30 * 24 * time.Hour

// photoSweepBatch is how many photos one write transaction of the sweep
// covers: pushes wait for it (a removal and a directory fsync each), so it
// is kept small.
const photoSweepBatch = 64

// SweepUnreferenced removes the photos that no record's current
// fields reference (tombstones included), stored before now-age, that
// nobody uploaded (or re-uploaded) since then, and that no version
// dropped since then; it returns how many it removed and their bytes.
// What only the history of a record names does not count: the download
// of such a photo is refused anyway (a reference is a record's current
// photos field).
// refs is the record store, which knows the references.
func (photos *Store) SweepUnreferenced(ctx context.Context, refs syncproto.AttachmentStore,
	age time.Duration, now time.Time) (removed int, bytes int64, err error) {
	cutoff := now.Add(-age)
	var batch []PhotoFile
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		hashes := make([]string, len(batch))
		size := make(map[string]int64, len(batch))
		for i, p := range batch {
			hashes[i] = p.SHA256
			size[p.SHA256] = p.Size
		}
		// The store checks the references and calls RemovePhoto while it
		// holds its write lock: a push cannot add a reference in between.
		gone, err := refs.RemoveUnreferencedPhotos(ctx, hashes, cutoff, func(hash string) (bool, error) {
			return photos.RemovePhoto(hash, cutoff)
		})
		for _, h := range gone {
			removed++
			bytes += size[h]
		}
		if err != nil {
			return err
		}
		batch = batch[:0]
		return ctx.Err()
	}
	err = photos.Photos(func(p PhotoFile) error {
		if !p.ModTime.Before(cutoff) {
			return nil
		}
		batch = append(batch, p)
		if len(batch) < photoSweepBatch {
			return nil
		}
		return flush()
	})
	if err == nil {
		err = flush()
	}
	return removed, bytes, err
}

// RunUnreferencedSweeper sweeps unreferenced photos every interval until
// ctx is done, logging what it removed (counts and bytes: no digest, no
// user).
func (photos *Store) RunUnreferencedSweeper(ctx context.Context, refs syncproto.AttachmentStore,
	age, interval time.Duration, log *slog.Logger) {
	every(ctx, interval, func() {
		n, b, err := photos.SweepUnreferenced(ctx, refs, age, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("sweeping unreferenced photos", "err", err)
		case n > 0:
			log.Info("removed unreferenced photos", "photos", n, "bytes", b, "older_than", age.String())
		}
	})
}
