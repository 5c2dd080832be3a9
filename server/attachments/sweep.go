package attachments

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// Sweep removes the partial uploads untouched for longer than age (a
// tablet lost, or a photo abandoned) and returns how many it removed and
// their bytes. A partial being written is left alone.
func (s *Store) Sweep(age time.Duration) (removed int, bytes int64, err error) {
	entries, err := os.ReadDir(s.partialDir)
	if err != nil {
		return 0, 0, err
	}
	cutoff := s.now().Add(-age)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(s.partialDir, e.Name())
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
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
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, b, err := s.Sweep(age)
		if (n > 0 || err != nil) && logf != nil {
			logf(n, b, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
