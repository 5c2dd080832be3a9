// Package attachments is fieldsync's photo store: files named by the
// SHA-256 of their bytes, kept under the data directory and uploaded in
// resumable chunks. It knows files, not HTTP or SQL: the HTTP adapter
// parses requests into Chunks, and which records reference a photo is the
// database's business (syncproto.AttachmentStore).
//
// Layout, under the directory given to Open (DATA/attachments):
//
//	ab/cd/abcd…        a whole photo, verified: its name is the SHA-256 of its bytes
//	partial/HASH.UPL   the bytes received so far of the photo HASH from one uploader
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

// partialDirName is the directory of partial uploads inside the store.
const partialDirName = "partial"

// Options configure a Store.
type Options struct {
	// MaxBytes is the largest photo accepted; DefaultMaxBytes when 0.
	MaxBytes int64
	// LockWait is how long a chunk waits for the previous chunk of the
	// same uploader and photo; DefaultLockWait when 0.
	LockWait time.Duration
	// Now is the clock of the sweep; time.Now when nil.
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

	mu    sync.Mutex
	locks map[string]*keyLock

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
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: abs, partialDir: filepath.Join(abs, partialDirName), maxBytes: opts.MaxBytes,
		lockWait: opts.LockWait, now: opts.Now, locks: map[string]*keyLock{}}
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

// uploaderKey names an uploader (a device id) in partial file names: a
// digest, so that whatever the id holds never reaches the file system.
func uploaderKey(uploader string) string {
	sum := sha256.Sum256([]byte("fieldsync uploader\x00" + uploader))
	return hex.EncodeToString(sum[:8])
}

func (s *Store) partialPath(hash, uploader string) string {
	return filepath.Join(s.partialDir, hash+"."+uploaderKey(uploader))
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

// Held tells how much of the photo hash the store holds for uploader. A
// whole photo counts for every uploader (and the uploader's partial of it,
// now useless, is removed).
func (s *Store) Held(hash, uploader string) (Held, error) {
	if !syncproto.ValidSHA256(hash) {
		return Held{}, invalidHash()
	}
	if fi, err := os.Stat(PhotoPath(s.dir, hash)); err == nil {
		// A partial of the uploader's left from a race with another
		// tablet's last chunk is of no use any more.
		partial := s.partialPath(hash, uploader)
		if release, ok := s.tryAcquire("partial:" + partial); ok {
			os.Remove(partial)
			release()
		}
		return Held{Offset: fi.Size(), Complete: true}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Held{}, err
	}
	fi, err := os.Stat(s.partialPath(hash, uploader))
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
	entries, err := os.ReadDir(s.partialDir)
	if err != nil {
		return st, err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil {
			st.Partials++
			st.PartialBytes += fi.Size()
		}
	}
	return st, nil
}
