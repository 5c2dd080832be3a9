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
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// Chunk is one PUT of a resumable upload: the bytes Start..End (inclusive)
// of a photo of Total bytes whose SHA-256 is SHA256, from one uploader.
type Chunk struct {
	SHA256 string
	// Uploader identifies who uploads (the device): each uploader has a
	// partial of its own.
	Uploader          string
	Start, End, Total int64
	// Body yields the chunk's bytes; the store reads End-Start+1 of them,
	// then checks that no more follow.
	Body io.Reader
	// Preempt, when not nil, makes a read of Body that is blocked fail at
	// once. The store calls it when a newer chunk from the same uploader
	// for the same photo arrives while this one is still being read (the
	// tablet's connection broke and it resumed, but the server had not
	// noticed yet).
	Preempt func()
}

// Result is the outcome of a chunk.
type Result struct {
	// Offset is the bytes held after the chunk: where the next chunk
	// starts, or the photo's size when Complete.
	Offset int64
	// Complete: the photo is held whole.
	Complete bool
	// Created: this chunk completed the photo. A chunk for a photo that was
	// already whole (sent by another tablet, or a retry) is Complete but
	// not Created.
	Created bool
	// ContentType is the photo's media type, once Complete.
	ContentType string
}

func withOffset(e *syncproto.Error, offset int64) *syncproto.Error {
	e.UploadOffset = &offset
	return e
}

func rangeError(msg string) *syncproto.Error {
	return &syncproto.Error{Code: syncproto.EMalformed, Title: "Invalid Content-Range", Message: msg,
		Errors: []syncproto.FieldError{{Path: "header.Content-Range", Message: msg}}}
}

// Write appends a chunk to the uploader's partial of the photo and, with
// the photo's last byte, verifies it and moves it into the store. The
// chunk must start where the partial ends. Bytes received before a broken
// connection are kept (and fsynced), so the upload resumes from them.
//
// Errors, all *syncproto.Error carrying UploadOffset where the upload
// stands: EMalformed for an invalid hash or range, or a body that ends
// before (or runs past) the range; ETooLarge for a Total above MaxBytes;
// EConflict when Start is not the held offset, or when an earlier chunk of
// the same uploader and photo is still being received after LockWait
// (RetryAfter set); EUnsupported when the first bytes are not a JPEG, PNG,
// WebP or HEIC/HEIF image (the partial is removed); EInvalid when the
// complete bytes do not hash to SHA256 (the partial is removed), or when
// the photo is already held whole with another size; EUnavailable when the
// disk is full. Other errors are the file system's.
func (s *Store) Write(ctx context.Context, ch Chunk) (Result, error) {
	if !syncproto.ValidSHA256(ch.SHA256) {
		return Result{}, invalidHash()
	}
	if ch.Start < 0 || ch.End < ch.Start || ch.Total <= ch.End {
		return Result{}, rangeError("must be bytes START-END/TOTAL with START ≤ END < TOTAL")
	}
	if ch.Total > s.maxBytes {
		return Result{}, &syncproto.Error{Code: syncproto.ETooLarge, Title: "Photo too large",
			Message: fmt.Sprintf("a photo may have at most %d bytes; this one has %d", s.maxBytes, ch.Total),
			Errors:  []syncproto.FieldError{{Path: "header.Content-Range", Message: fmt.Sprintf("TOTAL must be at most %d", s.maxBytes)}}}
	}
	partial := s.partialPath(ch.SHA256, ch.Uploader)
	release, ok := s.acquire(ctx, "partial:"+partial, ch.Preempt, s.lockWait)
	if !ok {
		held, _ := s.Held(ch.SHA256, ch.Uploader)
		return Result{}, withOffset(&syncproto.Error{Code: syncproto.EConflict, Title: "Upload in progress",
			Message:    "an earlier chunk of this photo from your device is still being received; retry in a few seconds",
			RetryAfter: 2}, held.Offset)
	}
	defer release()

	final := PhotoPath(s.dir, ch.SHA256)
	if fi, err := os.Stat(final); err == nil {
		os.Remove(partial)
		if fi.Size() != ch.Total {
			return Result{}, withOffset(&syncproto.Error{Code: syncproto.EInvalid, Title: "Wrong photo size",
				Message: fmt.Sprintf("the photo with this SHA-256 is held whole and has %d bytes, not %d", fi.Size(), ch.Total),
				Errors:  []syncproto.FieldError{{Path: "header.Content-Range", Message: fmt.Sprintf("TOTAL must be %d", fi.Size())}}}, fi.Size())
		}
		return s.wholeResult(ch.SHA256, false)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Result{}, err
	}

	f, created, err := openPartial(partial)
	if err != nil {
		return Result{}, storageError(err, 0)
	}
	defer func() {
		if f != nil {
			// A partial that never received a byte is no upload.
			if fi, err := f.Stat(); err == nil && fi.Size() == 0 {
				os.Remove(partial)
			}
			f.Close()
		}
	}()
	if created {
		if err := syncDir(s.partialDir); err != nil {
			return Result{}, err
		}
	}
	fi, err := f.Stat()
	if err != nil {
		return Result{}, err
	}
	held := fi.Size()
	discard := func() {
		f.Close()
		f = nil
		os.Remove(partial)
	}
	if held >= ch.Total {
		// Every byte arrived but the server stopped before it checked them
		// (held == Total), or the partial belongs to a photo of another
		// size: check it now; keep nothing that does not match.
		if held == ch.Total {
			if ok, err := hashMatches(f, ch.SHA256); err != nil {
				return Result{}, err
			} else if ok {
				if err := f.Sync(); err != nil {
					return Result{}, err
				}
				f.Close()
				f = nil
				return s.finish(ch.SHA256, partial)
			}
		}
		if err := f.Truncate(0); err != nil {
			return Result{}, err
		}
		held = 0
	}
	if ch.Start != held {
		return Result{}, withOffset(&syncproto.Error{Code: syncproto.EConflict, Title: "Wrong offset",
			Message: fmt.Sprintf("the server holds %d bytes of this photo from your device: send the chunk that starts at byte %d (Upload-Offset)", held, held),
			Errors:  []syncproto.FieldError{{Path: "header.Content-Range", Message: fmt.Sprintf("START must be %d", held)}}}, held)
	}
	if _, err := f.Seek(held, io.SeekStart); err != nil {
		return Result{}, err
	}

	length := ch.End - ch.Start + 1
	w := &countingWriter{w: f}
	var readErr error
	// The type is judged from the first bytes, before they are kept: a file
	// that is not a photo is refused at its first chunk, not after 20 MiB.
	if sniffTo := min(int64(SniffLen), ch.Total); held < sniffTo {
		want := min(sniffTo-held, length)
		head := make([]byte, sniffTo)
		if _, err := f.ReadAt(head[:held], 0); err != nil && held > 0 {
			return Result{}, err
		}
		n, err := io.ReadFull(ch.Body, head[held:held+want])
		if err != nil {
			readErr = err
		}
		if held+int64(n) == sniffTo && Sniff(head[:sniffTo]) == "" {
			discard()
			return Result{}, withOffset(&syncproto.Error{Code: syncproto.EUnsupported, Title: "Not a photo",
				Message: "the bytes are not a JPEG, PNG, WebP or HEIC image; nothing was kept",
				Errors:  []syncproto.FieldError{{Path: "body", Message: "must be a JPEG, PNG, WebP or HEIC image"}}}, 0)
		}
		if _, err := w.Write(head[held : held+int64(n)]); err != nil {
			return Result{}, s.keep(f, held+w.n, storageError(err, held+w.n))
		}
	}
	if readErr == nil {
		_, err := io.CopyN(w, readerFunc(func(p []byte) (int, error) {
			n, err := ch.Body.Read(p)
			if err != nil && err != io.EOF {
				readErr = err
			}
			return n, err
		}), length-w.n)
		switch {
		case err != nil && readErr == nil && w.err != nil:
			return Result{}, s.keep(f, held+w.n, storageError(w.err, held+w.n))
		case err != nil && readErr == nil:
			readErr = err // io.EOF: the body ended early
		}
	}
	offset := held + w.n
	if readErr != nil {
		return Result{}, s.keep(f, offset, withOffset(&syncproto.Error{Code: syncproto.EMalformed, Title: "Upload cut",
			Message: fmt.Sprintf("the body ended after %d of the chunk's %d bytes; they are kept: resume at byte %d (Upload-Offset)", w.n, length, offset),
			Errors:  []syncproto.FieldError{{Path: "body", Message: fmt.Sprintf("must hold the %d bytes of the Content-Range", length)}}}, offset))
	}
	var extra [1]byte
	if n, _ := io.ReadFull(ch.Body, extra[:]); n > 0 {
		return Result{}, s.keep(f, offset, withOffset(&syncproto.Error{Code: syncproto.EMalformed, Title: "Body too long",
			Message: "the body holds more bytes than its Content-Range; the range's bytes are kept",
			Errors:  []syncproto.FieldError{{Path: "body", Message: fmt.Sprintf("must hold exactly the %d bytes of the Content-Range", length)}}}, offset))
	}
	if err := f.Sync(); err != nil {
		return Result{}, storageError(err, offset)
	}
	if offset < ch.Total {
		if _, err := os.Stat(final); err == nil {
			// Another tablet finished this photo meanwhile.
			discard()
			return s.wholeResult(ch.SHA256, false)
		}
		return Result{Offset: offset}, nil
	}

	ok, err = hashMatches(f, ch.SHA256)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		discard()
		return Result{}, withOffset(&syncproto.Error{Code: syncproto.EInvalid, Title: "Photo does not match its hash",
			Message: "the uploaded bytes do not hash to the SHA-256 in the path; they were discarded: upload the photo again from byte 0",
			Errors:  []syncproto.FieldError{{Path: "path.sha256", Message: "is not the SHA-256 of the uploaded bytes"}}}, 0)
	}
	f.Close()
	f = nil
	return s.finish(ch.SHA256, partial)
}

// keep fsyncs the bytes a chunk wrote before it failed, so that the upload
// resumes from them, and returns err.
func (s *Store) keep(f *os.File, offset int64, err error) error {
	if serr := f.Sync(); serr != nil {
		return storageError(serr, offset)
	}
	return err
}

// finish moves a verified, fsynced partial into the store. When another
// uploader finished the same photo first, the partial is dropped and the
// result is Complete without Created.
func (s *Store) finish(hash, partial string) (Result, error) {
	release, _ := s.acquire(context.Background(), "photo:"+hash, nil, 0)
	defer release()
	final := PhotoPath(s.dir, hash)
	if _, err := os.Stat(final); err == nil {
		os.Remove(partial)
		return s.wholeResult(hash, false)
	}
	shard := filepath.Dir(final)
	if err := mkdirSynced(s.dir, shard); err != nil {
		return Result{}, storageError(err, 0)
	}
	if err := os.Rename(partial, final); err != nil {
		return Result{}, err
	}
	if err := syncDir(shard); err != nil {
		return Result{}, err
	}
	// The partial's name left its directory; losing that in a power cut
	// leaves a stale partial for the sweep, never a wrong photo.
	s.dropPartials(hash)
	res, err := s.wholeResult(hash, true)
	if err == nil {
		s.photos.Add(1)
		s.bytes.Add(res.Offset)
	}
	return res, err
}

// dropPartials removes the other uploaders' partials of a photo now held
// whole: their tablets learn from HEAD or their next chunk that it is
// complete. A partial being written is left to its chunk, which finds the
// photo whole and removes it.
func (s *Store) dropPartials(hash string) {
	others, _ := filepath.Glob(filepath.Join(s.partialDir, hash+".*"))
	for _, path := range others {
		if release, ok := s.tryAcquire("partial:" + path); ok {
			os.Remove(path)
			release()
		}
	}
}

func (s *Store) wholeResult(hash string, created bool) (Result, error) {
	p, err := s.OpenPhoto(hash)
	if err != nil {
		return Result{}, err
	}
	p.Close()
	return Result{Offset: p.Size, Complete: true, Created: created, ContentType: p.ContentType}, nil
}

// acquire takes the lock named key, waiting up to wait (forever when 0)
// or until ctx is done; on success it returns the release function. A
// holder that registered a preempt function is preempted first.
func (s *Store) acquire(ctx context.Context, key string, preempt func(), wait time.Duration) (func(), bool) {
	s.mu.Lock()
	l := s.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		s.locks[key] = l
	}
	l.refs++
	if l.preempt != nil {
		l.preempt()
		l.preempt = nil
	}
	s.mu.Unlock()
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	unref := func() {
		s.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(s.locks, key)
		}
		s.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
	case <-timeout:
		unref()
		return nil, false
	case <-ctx.Done():
		unref()
		return nil, false
	}
	s.mu.Lock()
	l.preempt = preempt
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		l.preempt = nil
		s.mu.Unlock()
		<-l.ch
		unref()
	}, true
}

// tryAcquire takes the lock named key if nobody holds or awaits it.
func (s *Store) tryAcquire(key string) (func(), bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks[key] != nil {
		return nil, false
	}
	l := &keyLock{ch: make(chan struct{}, 1), refs: 1}
	l.ch <- struct{}{}
	s.locks[key] = l
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		<-l.ch
		l.refs--
		if l.refs == 0 {
			delete(s.locks, key)
		}
	}, true
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

// WalkPhotos calls fn for every whole photo under dir (a store's directory
// or a backup's copy of one), in no particular order, skipping partials and
// any file that is not a photo at its place.
func WalkPhotos(dir string, fn func(hash, path string, size int64) error) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == dir {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			if path != dir && d.Name() == partialDirName && filepath.Dir(path) == dir {
				return fs.SkipDir
			}
			return nil
		}
		name := d.Name()
		if !d.Type().IsRegular() || !syncproto.ValidSHA256(name) || PhotoPath(dir, name) != path {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(name, path, fi.Size())
	})
}

// ErrDamaged is wrapped by Install's error for bytes that do not hash to
// the photo's name.
var ErrDamaged = errors.New("the bytes do not hash to the photo's name")

// Install puts a photo into the store directory dir (a server's, stopped
// or not) from r, verifying that its bytes hash to hash and fsyncing it
// before it appears, through a temporary file in dir's partial directory.
// A photo already there is left as it is. It reports whether it wrote the
// photo; a mismatch is an error and leaves nothing behind.
func Install(dir, hash string, r io.Reader) (bool, error) {
	if !syncproto.ValidSHA256(hash) {
		return false, fmt.Errorf("%q is not a SHA-256 digest", hash)
	}
	final := PhotoPath(dir, hash)
	if _, err := os.Stat(final); err == nil {
		return false, nil
	}
	partials := filepath.Join(dir, partialDirName)
	if err := os.MkdirAll(partials, 0o700); err != nil {
		return false, err
	}
	f, err := os.CreateTemp(partials, hash+".install-*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		return false, fmt.Errorf("photo %s: %w (they hash to %s)", hash, ErrDamaged, got)
	}
	shard := filepath.Dir(final)
	if err := mkdirSynced(dir, shard); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return false, err
	}
	return true, syncDir(shard)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// mkdirSynced creates dir's missing ancestors below root, and leaf, each
// 0700, fsyncing the parent of each directory it creates.
func mkdirSynced(root, leaf string) error {
	rel, err := filepath.Rel(root, leaf)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("%s is not inside %s", leaf, root)
	}
	parent := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		dir := filepath.Join(parent, part)
		if err := os.Mkdir(dir, 0o700); err == nil {
			if err := syncDir(parent); err != nil {
				return err
			}
		} else if !errors.Is(err, fs.ErrExist) {
			return err
		}
		parent = dir
	}
	return nil
}

// openPartial opens (creating) a partial for reading and writing.
func openPartial(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, err
	}
	f, err = os.OpenFile(path, os.O_RDWR, 0)
	return f, false, err
}

// hashMatches reads f from its start and reports whether its SHA-256 is
// hash.
func hashMatches(f *os.File, hash string) (bool, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62)); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == hash, nil
}

// storageError turns a full disk into EUnavailable (with Retry-After and
// where the upload stands) and passes other errors on.
func storageError(err error, offset int64) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return withOffset(&syncproto.Error{Code: syncproto.EUnavailable, Title: "Storage full",
			Message: "the server has no room for photos now; retry later", RetryAfter: 60}, offset)
	}
	return err
}

// countingWriter counts the bytes written and keeps the first write error.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
