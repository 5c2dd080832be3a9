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
	"syscall"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Chunk is one PUT of a resumable upload: the bytes Start..End (inclusive)
// of a photo of Total bytes whose SHA-256 is SHA256, from one uploader.
type Chunk struct {
	SHA256 string
	// Uploader identifies who uploads: each device has a partial of its
	// own, and the bytes count against the user's quotas.
	Uploader Uploader
	// CanRead tells that the uploader may read the photo already (a
	// granting reference in their scope, or an earlier proven upload):
	// then a photo held whole is answered at once. For an uploader who may
	// not, the chunks of a photo held whole are a re-upload that proves
	// they have its bytes (hashed, not kept).
	CanRead bool
	// Start, End and Total are the chunk's range: bytes Start to End
	// (inclusive) of a photo of Total bytes.
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
	// Proven: the uploader sent every byte of the photo and they hashed
	// to its digest (a new upload, or a re-upload of a photo held whole):
	// the proof of possession that lets their references grant reads.
	Proven bool
}

// PathRange is the path of the errors about a chunk's range (Start, End,
// Total); the HTTP adapter names it after the header the range came in.
const PathRange = "range"

// withOffset sets on e how many bytes of the photo the uploader holds.
func withOffset(e *syncproto.Error, offset int64) *syncproto.Error {
	e.PhotoBytesHeld = &offset
	return e
}

func rangeError(msg string) *syncproto.Error {
	return &syncproto.Error{Code: syncproto.EMalformed, Title: "Invalid Content-Range", Message: msg,
		Errors: []syncproto.FieldError{{Path: PathRange, Message: msg}}}
}

// Write appends a chunk to the uploader's partial of the photo and, with
// the photo's last byte, verifies it and moves it into the store. The
// chunk must start where the partial ends. Bytes received before a broken
// connection are kept (and fsynced), so the upload resumes from them.
//
// Errors, all *syncproto.Error carrying PhotoBytesHeld where the upload
// stands: EMalformed for an invalid hash or range, or a body that ends
// before (or runs past) the range; ETooLarge for a Total above MaxBytes;
// EConflict when Start is not the held offset, or when an earlier chunk of
// the same uploader and photo is still being received after LockWait
// (RetryIn set); ERateLimited (RetryIn set) over the user's hourly
// or partial quota; EInsufficientStorage when writing the chunk would
// leave less free disk than the floor; EUnsupported when the first bytes are not a JPEG, PNG,
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
			Errors:  []syncproto.FieldError{{Path: PathRange, Message: fmt.Sprintf("TOTAL must be at most %d", s.maxBytes)}}}
	}
	partial := s.partialPath(ch.SHA256, ch.Uploader)
	release, ok := s.acquire(ctx, "partial:"+partial, ch.Preempt, s.lockWait)
	if !ok {
		held, _ := s.Held(ch.SHA256, ch.Uploader, ch.CanRead)
		return Result{}, withOffset(&syncproto.Error{Code: syncproto.EConflict, Title: "Upload in progress",
			Message: "an earlier chunk of this photo from your device is still being received; retry in a few seconds",
			RetryIn: 2 * time.Second}, held.Offset)
	}
	defer release()

	final := PhotoPath(s.dir, ch.SHA256)
	if fi, err := os.Stat(final); err == nil {
		if fi.Size() == ch.Total && !ch.CanRead {
			return s.prove(ch, partial, fi.Size())
		}
		os.Remove(partial)
		if fi.Size() != ch.Total {
			return Result{}, withOffset(&syncproto.Error{Code: syncproto.EInvalid, Title: "Wrong photo size",
				Message: fmt.Sprintf("the photo with this SHA-256 is held whole and has %d bytes, not %d", fi.Size(), ch.Total),
				Errors:  []syncproto.FieldError{{Path: PathRange, Message: fmt.Sprintf("TOTAL must be %d", fi.Size())}}}, fi.Size())
		}
		return s.wholeResult(ch.SHA256, false)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Result{}, err
	}

	var heldBefore int64
	if fi, err := os.Stat(partial); err == nil {
		heldBefore = fi.Size()
	}
	length := ch.End - ch.Start + 1
	done, err := s.admit(ch.Uploader, partial, length, heldBefore, true)
	if err != nil {
		return Result{}, err
	}
	received := int64(0)
	defer func() { done(received) }()
	if err := mkdirSynced(s.dir, s.userPartialDir(ch.Uploader)); err != nil {
		return Result{}, storageError(err, heldBefore)
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
		if err := SyncDir(s.userPartialDir(ch.Uploader)); err != nil {
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
			Errors:  []syncproto.FieldError{{Path: PathRange, Message: fmt.Sprintf("START must be %d", held)}}}, held)
	}
	if _, err := f.Seek(held, io.SeekStart); err != nil {
		return Result{}, err
	}

	w := &countingWriter{w: f}
	defer func() { received = w.n }()
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
			if !ch.CanRead {
				// This one's bytes go on as a re-upload: they prove
				// possession once all have arrived.
				f.Close()
				f = nil
				return s.proveFrom(ch, partial)
			}
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
// result is Complete without Created. Either way the uploader's bytes
// matched: the result is Proven.
func (s *Store) finish(hash, partial string) (Result, error) {
	res, err := s.finishPartial(hash, partial)
	res.Proven = err == nil
	return res, err
}

// proveFrom turns the uploader's partial of a photo that became whole
// meanwhile into a re-upload and answers where it stands.
func (s *Store) proveFrom(ch Chunk, partial string) (Result, error) {
	p, err := s.proofOf(ch.Uploader, partial)
	if err != nil {
		return Result{}, err
	}
	return Result{Offset: p.offset}, nil
}

func (s *Store) finishPartial(hash, partial string) (Result, error) {
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
	if err := SyncDir(shard); err != nil {
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
	others, _ := filepath.Glob(filepath.Join(s.partialDir, "*", hash+".*"))
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
			Message: "the server has no room for photos now; retry later", RetryIn: time.Minute}, offset)
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
