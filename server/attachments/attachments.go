// Package attachments is fieldsync's photo store: files named by the
// SHA-256 of their bytes, kept under the data directory and uploaded in
// resumable chunks. It knows files, not HTTP or SQL: the HTTP adapter
// parses requests into Chunks, and which records reference a photo is the
// database's business (syncproto.AttachmentStore).
//
// Layout, under the directory given to Open (DATA/attachments):
//
//	ab/cd/abcd…        a whole photo, verified: its name is the SHA-256 of its bytes
//	partial/USR/HASH.DEV  the bytes received so far of the photo HASH from one
//	                      device (DEV) of one user (USR); both are digests of
//	                      the ids, so that no id reaches the file system
//
// A whole photo appears only by an atomic rename of a partial that was
// complete, matched its hash and was fsynced; so a crash leaves a photo
// whole or absent, and a partial that resumes from its length.
package attachments

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/fieldsync/fieldsync/syncproto"
)

// DefaultMaxBytes is the largest photo accepted unless configured: 20 MiB.
const DefaultMaxBytes = 20 << 20

// DefaultOrphanAge is how long a partial upload may stay untouched before
// the sweep removes it unless configured: 7 days, longer than a survey
// team stays out of coverage.
const DefaultOrphanAge = 7 * 24 * time.Hour

// DefaultLockWait is how long a chunk waits for an earlier chunk of the
// same uploader and photo that is still being received.
const DefaultLockWait = 10 * time.Second

// DefaultUserPartialBytes is how many bytes of unfinished uploads one user
// may hold unless configured: 64 MiB, three photos of the largest size
// (a tablet uploads one photo at a time).
const DefaultUserPartialBytes = 64 << 20

// DefaultUserHourlyBytes is how many photo bytes one user may send per
// hour unless configured: 512 MiB, a day's photos of a busy team member
// at once, but not a disk in an afternoon.
const DefaultUserHourlyBytes = 512 << 20

// DefaultMinFreeBytes is the free disk space below which no photo bytes
// are stored unless configured: 1 GiB, kept for the database's pushes.
const DefaultMinFreeBytes = 1 << 30

// MaxPartialsPerUser bounds the unfinished uploads (and the re-uploads of
// photos the server holds, which cost memory) that one user may have open
// at once: a honest tablet has one.
const MaxPartialsPerUser = 32

// partialDirName is the directory of partial uploads inside the store.
const partialDirName = "partial"

// Options configure a Store.
type Options struct {
	// MaxBytes is the largest photo accepted; DefaultMaxBytes when 0.
	MaxBytes int64
	// LockWait is how long a chunk waits for the previous chunk of the
	// same uploader and photo; DefaultLockWait when 0.
	LockWait time.Duration
	// UserPartialBytes bounds the bytes of one user's unfinished uploads;
	// DefaultUserPartialBytes when 0, and never less than MaxBytes (as
	// UserHourlyBytes).
	UserPartialBytes int64
	// UserHourlyBytes bounds the photo bytes one user may send per hour
	// (a bucket that holds an hour's worth and refills evenly);
	// DefaultUserHourlyBytes when 0.
	UserHourlyBytes int64
	// MinFreeBytes is the free disk space below which no photo bytes are
	// written (507); DefaultMinFreeBytes when 0, none when negative.
	MinFreeBytes int64
	// Now is the clock of the sweep and of the hourly quota; time.Now when
	// nil.
	Now func() time.Time
}

// Store is the photo store in one directory. Its methods are safe for
// concurrent use by the goroutines of one process; two processes must not
// serve the same directory (the database allows one server per data
// directory anyway).
type Store struct {
	dir, partialDir string
	maxBytes        int64
	lockWait        time.Duration
	now             func() time.Time
	quota           quota

	mu    sync.Mutex
	locks map[string]*keyLock
	// proofs are the re-uploads under way of photos held whole, by user
	// key and then partial path (proof.go).
	proofs map[string]map[string]*proof
	// reserved is the bytes of the chunks being written, by user key, so
	// that concurrent chunks of one user share the partial quota.
	reserved map[string]int64
	// hourly is each user's bucket of photo bytes, by user key.
	hourly map[string]*rate.Limiter

	photos, bytes atomic.Int64
}

// keyLock serialises the writers of one partial (or the finishers of one
// photo). ch holds a token while the lock is held; refs counts holders and
// waiters, so that the entry leaves the map with the last of them.
type keyLock struct {
	ch      chan struct{}
	refs    int
	preempt func()
}

// Open opens the store in dir (DATA/attachments), creating it and its
// partial directory if needed, and counts the photos it holds.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.LockWait <= 0 {
		opts.LockWait = DefaultLockWait
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.UserPartialBytes <= 0 {
		opts.UserPartialBytes = DefaultUserPartialBytes
	}
	if opts.UserHourlyBytes <= 0 {
		opts.UserHourlyBytes = DefaultUserHourlyBytes
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = DefaultMinFreeBytes
	}
	// A quota below the largest photo would refuse every large photo for
	// good: the quotas hold at least one.
	opts.UserPartialBytes = max(opts.UserPartialBytes, opts.MaxBytes)
	opts.UserHourlyBytes = max(opts.UserHourlyBytes, opts.MaxBytes)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: abs, partialDir: filepath.Join(abs, partialDirName), maxBytes: opts.MaxBytes,
		lockWait: opts.LockWait, now: opts.Now, locks: map[string]*keyLock{},
		quota:  quota{partialBytes: opts.UserPartialBytes, hourlyBytes: opts.UserHourlyBytes, minFree: opts.MinFreeBytes},
		proofs: map[string]map[string]*proof{}, reserved: map[string]int64{}, hourly: map[string]*rate.Limiter{}}
	if err := os.MkdirAll(s.partialDir, 0o700); err != nil {
		return nil, fmt.Errorf("attachments: %w", err)
	}
	err = WalkPhotos(abs, func(hash, path string, size int64) error {
		s.photos.Add(1)
		s.bytes.Add(size)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("attachments: counting photos: %w", err)
	}
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// MaxBytes is the largest photo the store accepts.
func (s *Store) MaxBytes() int64 { return s.maxBytes }

// PhotoPath is where the whole photo with the given digest lives under dir:
// dir/ab/cd/abcd…. The digest must be valid (syncproto.ValidSHA256).
func PhotoPath(dir, hash string) string {
	return filepath.Join(dir, hash[0:2], hash[2:4], hash)
}

// Uploader is who sends a photo: the user, whose quotas the bytes count
// against, and the device, which has a partial of its own.
type Uploader struct {
	User, Device string
}

// userKey names a user in partial paths: a digest, so that whatever the
// id holds never reaches the file system.
func (u Uploader) userKey() string {
	sum := sha256.Sum256([]byte("fieldsync user\x00" + u.User))
	return hex.EncodeToString(sum[:8])
}

// deviceKey names the uploader's device in partial file names.
func (u Uploader) deviceKey() string {
	sum := sha256.Sum256([]byte("fieldsync uploader\x00" + u.User + "/" + u.Device))
	return hex.EncodeToString(sum[:8])
}

func (s *Store) userPartialDir(u Uploader) string { return filepath.Join(s.partialDir, u.userKey()) }

func (s *Store) partialPath(hash string, u Uploader) string {
	return filepath.Join(s.userPartialDir(u), hash+"."+u.deviceKey())
}

func invalidHash() error {
	return &syncproto.Error{Code: syncproto.EMalformed, Title: "Invalid photo hash",
		Message: "a photo is named by the SHA-256 of its bytes: 64 lowercase hexadecimal digits",
		Errors:  []syncproto.FieldError{{Path: "path.sha256", Message: "must be 64 lowercase hexadecimal digits"}}}
}

// Held is what the store holds of a photo for one uploader.
type Held struct {
	// Offset is the bytes held: the photo's size when Complete, otherwise
	// the length of the uploader's partial (0 when none).
	Offset int64
	// Complete: the photo is held whole (from whichever uploader).
	Complete bool
}

// Held tells how much of the photo hash the store holds for the
// uploader. A whole photo counts for every uploader who may read it
// (canRead; the uploader's partial of it, now useless, is removed); for
// one who may not, what counts is how far their re-upload of it (the
// proof that they have its bytes) has come, or their partial of it; asking
// starts no re-upload.
func (s *Store) Held(hash string, u Uploader, canRead bool) (Held, error) {
	if !syncproto.ValidSHA256(hash) {
		return Held{}, invalidHash()
	}
	partial := s.partialPath(hash, u)
	if fi, err := os.Stat(PhotoPath(s.dir, hash)); err == nil {
		if !canRead {
			// Only asking starts no re-upload: a proof under way keeps
			// the photo from the sweep of unreferenced photos, and a
			// caller who knows just the digest must not keep it so. What
			// counts is the re-upload's progress, or else the uploader's
			// partial, which the first chunk turns into the re-upload.
			if off := s.proofOffset(u, partial); off > 0 {
				return Held{Offset: off}, nil
			}
			if pfi, err := os.Stat(partial); err == nil {
				return Held{Offset: pfi.Size()}, nil
			}
			return Held{}, nil
		}
		// A partial of the uploader's left from a race with another
		// tablet's last chunk is of no use any more as a partial.
		if release, ok := s.tryAcquire("partial:" + partial); ok {
			os.Remove(partial)
			release()
		}
		return Held{Offset: fi.Size(), Complete: true}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Held{}, err
	}
	fi, err := os.Stat(partial)
	if errors.Is(err, fs.ErrNotExist) {
		return Held{}, nil
	}
	if err != nil {
		return Held{}, err
	}
	return Held{Offset: fi.Size()}, nil
}

// Has reports whether the photo is held whole.
func (s *Store) Has(hash string) (bool, error) {
	if !syncproto.ValidSHA256(hash) {
		return false, invalidHash()
	}
	_, err := os.Stat(PhotoPath(s.dir, hash))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Photo is a whole photo opened for reading.
type Photo struct {
	*os.File
	Size        int64
	ContentType string
	ModTime     time.Time
}

// OpenPhoto opens a whole photo for reading, with its size and its media
// type sniffed from its bytes. A photo not held whole is an error wrapping
// fs.ErrNotExist. The caller closes it.
func (s *Store) OpenPhoto(hash string) (*Photo, error) {
	if !syncproto.ValidSHA256(hash) {
		return nil, invalidHash()
	}
	f, err := os.Open(PhotoPath(s.dir, hash))
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	head := make([]byte, SniffLen)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, err
	}
	ct := Sniff(head[:n])
	if ct == "" {
		ct = "application/octet-stream"
	}
	return &Photo{File: f, Size: fi.Size(), ContentType: ct, ModTime: fi.ModTime()}, nil
}

// Stats counts what the store holds.
type Stats struct {
	Photos       int64 // whole photos
	Bytes        int64 // their bytes
	Partials     int64 // partial uploads
	PartialBytes int64 // their bytes
}

// Stats returns the store's counts: whole photos from counters kept since
// Open (which counted the directory), partials by listing their
// directory.
func (s *Store) Stats() (Stats, error) {
	st := Stats{Photos: s.photos.Load(), Bytes: s.bytes.Load()}
	err := s.walkPartials(func(path string, fi fs.FileInfo) {
		st.Partials++
		st.PartialBytes += fi.Size()
	})
	return st, err
}

// walkPartials calls fn for every partial upload: those of each user's
// directory, and those of the directory itself (temporary files of
// Install, and partials of the layout before per-user directories).
func (s *Store) walkPartials(fn func(path string, fi fs.FileInfo)) error {
	entries, err := os.ReadDir(s.partialDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		path := filepath.Join(s.partialDir, e.Name())
		if e.IsDir() {
			sub, err := os.ReadDir(path)
			if err != nil {
				continue // removed meanwhile
			}
			for _, f := range sub {
				if fi, err := f.Info(); err == nil && f.Type().IsRegular() {
					fn(filepath.Join(path, f.Name()), fi)
				}
			}
			continue
		}
		if fi, err := e.Info(); err == nil && e.Type().IsRegular() {
			fn(path, fi)
		}
	}
	return nil
}
