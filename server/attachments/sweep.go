package attachments

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Sweep removes the partial uploads untouched for longer than age (a
// tablet lost, or a photo abandoned), and forgets the re-uploads of held
// photos untouched as long; it returns how many partials it removed and
// their bytes. A partial being written is left alone.
func (s *Store) Sweep(age time.Duration) (removed int, bytes int64, err error) {
	cutoff := s.now().Add(-age)
	s.sweepProofs(cutoff)
	var stale []string
	err = s.walkPartials(func(path string, fi fs.FileInfo) {
		if fi.ModTime().Before(cutoff) {
			stale = append(stale, path)
		}
	})
	if err != nil {
		return 0, 0, err
	}
	for _, path := range stale {
		release, ok := s.tryAcquire("partial:" + path)
		if !ok {
			continue
		}
		// Stat again under the lock: a chunk may have arrived meanwhile.
		if fi, err := os.Stat(path); err == nil && fi.ModTime().Before(cutoff) && os.Remove(path) == nil {
			removed++
			bytes += fi.Size()
		}
		release()
	}
	return removed, bytes, nil
}

// RunSweeper sweeps every interval until ctx is done, logging through
// logf what it removed.
func (s *Store) RunSweeper(ctx context.Context, age, interval time.Duration, logf func(removed int, bytes int64, err error)) {
	every(ctx, interval, func() {
		n, b, err := s.Sweep(age)
		if (n > 0 || err != nil) && logf != nil {
			logf(n, b, err)
		}
	})
}

// every runs fn at once, then every interval until ctx is done.
func every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PhotoFile is a whole photo as the store lists it.
type PhotoFile struct {
	SHA256  string
	Size    int64
	ModTime time.Time
}

// Photos calls fn for every whole photo the store holds, in no particular
// order, with its size and the time it was stored.
func (s *Store) Photos(fn func(PhotoFile) error) error {
	return walkPhotoFiles(s.dir, func(hash, _ string, fi fs.FileInfo) error {
		return fn(PhotoFile{SHA256: hash, Size: fi.Size(), ModTime: fi.ModTime()})
	})
}

// RemovePhoto removes a whole photo stored before cutoff, unless a
// re-upload of it is under way, its lock is held (it is being stored or
// removed right now) or it was stored since; it reports whether it removed
// the photo. The caller decided that no record needs it, and holds the
// store's write lock so that no push can reference it meanwhile (the
// sweep of unreferenced photos): it never waits for the photo's lock.
func (s *Store) RemovePhoto(hash string, cutoff time.Time) (bool, error) {
	if !syncproto.ValidSHA256(hash) {
		return false, invalidHash()
	}
	release, ok := s.tryAcquire("photo:" + hash)
	if !ok {
		return false, nil
	}
	defer release()
	if s.proving(hash) {
		return false, nil
	}
	path := PhotoPath(s.dir, hash)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.ModTime().Before(cutoff) {
		return false, nil
	}
	if err := os.Remove(path); err != nil {
		return false, err
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return true, err
	}
	s.photos.Add(-1)
	s.bytes.Add(-fi.Size())
	return true, nil
}
