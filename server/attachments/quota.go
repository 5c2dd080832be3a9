package attachments

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/time/rate"

	"github.com/fieldsync/fieldsync/syncproto"
)

// quota is what one user may make the store hold or receive, and the
// free space the store leaves on its disk.
type quota struct {
	partialBytes, hourlyBytes, minFree int64
}

// floorRetryAfter is the Retry-After of a 507: an operator has to free
// space or add disk, which takes a while.
const floorRetryAfter = 300

// partialRetryAfter is the Retry-After of a refusal for the partial
// quota: the user's other uploads go on meanwhile and may finish.
const partialRetryAfter = 60

// FreeBytes is the free space left on the store's disk for this process,
// and whether it could be told.
func (s *Store) FreeBytes() (int64, bool) { return diskFree(s.dir) }

// checkFloor refuses to write length more bytes when that would leave
// less free disk than the floor (EInsufficientStorage, 507): the last
// space belongs to the database, so that pushes go on when photos stop.
func (s *Store) checkFloor(length, offset int64) error {
	if s.quota.minFree < 0 {
		return nil
	}
	free, ok := diskFree(s.dir)
	if !ok || free-length >= s.quota.minFree {
		return nil
	}
	return withOffset(&syncproto.Error{Code: syncproto.EInsufficientStorage, Title: "Server storage low",
		Message: "the server is keeping its remaining disk space for records and stores no photos for now; push your records, and upload the photo later",
		RetryIn: floorRetryAfter * time.Second}, offset)
}

// admit checks a chunk of length bytes from u against the user's hourly
// bucket and, when it is to be written to the partial, against the
// free-space floor and the user's partial quota; ERateLimited (429, with
// Retry-After) or EInsufficientStorage (507) when it is over one. On
// success the caller calls done with the bytes it actually received,
// which are what the bucket is charged.
func (s *Store) admit(u Uploader, partial string, length, offset int64, writes bool) (done func(received int64), err error) {
	key := u.userKey()
	var used int64
	if writes {
		if err := s.checkFloor(length, offset); err != nil {
			return nil, err
		}
		var count int
		exists := false
		entries, err := os.ReadDir(s.userPartialDir(u))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range entries {
			if fi, err := e.Info(); err == nil && e.Type().IsRegular() {
				used += fi.Size()
				count++
				exists = exists || e.Name() == filepath.Base(partial)
			}
		}
		if !exists && count >= MaxPartialsPerUser {
			return nil, withOffset(&syncproto.Error{Code: syncproto.ERateLimited, Title: "Too many unfinished uploads",
				Message: fmt.Sprintf("you have %d unfinished photo uploads: finish those before starting another", count),
				RetryIn: partialRetryAfter * time.Second}, offset)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	lim := s.hourly[key]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(float64(s.quota.hourlyBytes)/3600), int(s.quota.hourlyBytes))
		s.hourly[key] = lim
	}
	now := s.now()
	if tokens := lim.TokensAt(now); tokens < float64(length) {
		wait := math.Ceil((float64(length) - tokens) / float64(lim.Limit()))
		return nil, withOffset(&syncproto.Error{Code: syncproto.ERateLimited, Title: "Hourly photo quota used",
			Message: fmt.Sprintf("you may send at most %d photo bytes per hour; retry in %.0f seconds", s.quota.hourlyBytes, wait),
			RetryIn: time.Duration(min(wait, 3600)) * time.Second}, offset)
	}
	if writes && used+s.reserved[key]+length > s.quota.partialBytes {
		return nil, withOffset(&syncproto.Error{Code: syncproto.ERateLimited, Title: "Unfinished uploads quota used",
			Message: fmt.Sprintf("your unfinished photo uploads may hold at most %d bytes: finish those before sending more", s.quota.partialBytes),
			RetryIn: partialRetryAfter * time.Second}, offset)
	}
	if writes {
		s.reserved[key] += length
	}
	return func(received int64) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if received > 0 {
			lim.ReserveN(s.now(), int(received))
		}
		if writes {
			if s.reserved[key] -= length; s.reserved[key] <= 0 {
				delete(s.reserved, key)
			}
		}
	}, nil
}
