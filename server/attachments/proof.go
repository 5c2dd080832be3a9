package attachments

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// proof is a re-upload under way of a photo the store holds whole, by an
// uploader who may not read it yet: the bytes are hashed as they arrive
// and never written, so that proving possession costs no disk and no
// fsync. Whether the bytes match is told only once all of them have
// arrived (a chunk-by-chunk answer would let a caller guess the photo a
// byte at a time).
type proof struct {
	h       hash.Hash
	offset  int64
	touched time.Time
}

// proofOffset is how far the uploader's re-upload of a photo has come (0
// for none), without a lock.
func (s *Store) proofOffset(u Uploader, partial string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.proofs[u.userKey()][partial]; p != nil {
		return p.offset
	}
	return 0
}

// proofOf returns the uploader's re-upload of the photo whose partial path
// is partial, starting one if there is none. A partial of the uploader's
// (the photo became whole, from another tablet, while they uploaded it)
// goes on as the re-upload: its bytes are hashed and the file removed. The
// caller holds the partial's lock. A user over MaxPartialsPerUser
// re-uploads loses the one untouched the longest.
func (s *Store) proofOf(u Uploader, partial string) (*proof, error) {
	key := u.userKey()
	s.mu.Lock()
	p := s.proofs[key][partial]
	s.mu.Unlock()
	if p == nil {
		p = &proof{h: sha256.New()}
		if f, err := os.Open(partial); err == nil {
			n, err := io.Copy(p.h, f)
			f.Close()
			if err != nil {
				return nil, err
			}
			p.offset = n
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		os.Remove(partial)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	p.touched = now
	mine := s.proofs[key]
	if mine == nil {
		mine = map[string]*proof{}
		s.proofs[key] = mine
	}
	mine[partial] = p
	for len(mine) > MaxPartialsPerUser {
		oldest := ""
		for path, q := range mine {
			if oldest == "" || q.touched.Before(mine[oldest].touched) {
				oldest = path
			}
		}
		delete(mine, oldest)
	}
	return p, nil
}

// dropProof forgets a re-upload.
func (s *Store) dropProof(u Uploader, partial string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := u.userKey()
	delete(s.proofs[key], partial)
	if len(s.proofs[key]) == 0 {
		delete(s.proofs, key)
	}
}

// proving reports whether a re-upload of the photo hash is under way
// (some of its bytes arrived).
func (s *Store) proving(hash string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, mine := range s.proofs {
		for path, p := range mine {
			if p.offset > 0 && strings.HasPrefix(filepath.Base(path), hash+".") {
				return true
			}
		}
	}
	return false
}

// sweepProofs forgets the re-uploads untouched since before cutoff.
func (s *Store) sweepProofs(cutoff time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, mine := range s.proofs {
		for path, p := range mine {
			if p.touched.Before(cutoff) {
				delete(mine, path)
			}
		}
		if len(mine) == 0 {
			delete(s.proofs, key)
		}
	}
}

// prove takes a chunk of a re-upload of a photo held whole with size
// bytes, for an uploader who may not read it: the bytes are hashed, not
// kept. With the last byte, a match is Complete and Proven; a mismatch is
// EInvalid and the re-upload starts again from 0. The caller holds the
// partial's lock.
func (s *Store) prove(ch Chunk, partial string, size int64) (Result, error) {
	p, err := s.proofOf(ch.Uploader, partial)
	if err != nil {
		return Result{}, err
	}
	if ch.Start != p.offset {
		return Result{}, withOffset(&syncproto.Error{Code: syncproto.EConflict, Title: "Wrong offset",
			Message: fmt.Sprintf("the server has received %d bytes of this photo from your device: send the chunk that starts at byte %d (Upload-Offset)", p.offset, p.offset),
			Errors:  []syncproto.FieldError{{Path: PathRange, Message: fmt.Sprintf("START must be %d", p.offset)}}}, p.offset)
	}
	length := ch.End - ch.Start + 1
	done, err := s.admit(ch.Uploader, partial, length, p.offset, false)
	if err != nil {
		return Result{}, err
	}
	n, err := io.CopyN(p.h, ch.Body, length)
	done(n)
	now := s.now()
	s.mu.Lock()
	p.offset += n
	p.touched = now
	s.mu.Unlock()
	if err != nil {
		return Result{}, withOffset(&syncproto.Error{Code: syncproto.EMalformed, Title: "Upload cut",
			Message: fmt.Sprintf("the body ended after %d of the chunk's %d bytes; resume at byte %d (Upload-Offset)", n, length, p.offset),
			Errors:  []syncproto.FieldError{{Path: "body", Message: fmt.Sprintf("must hold the %d bytes of the Content-Range", length)}}}, p.offset)
	}
	var extra [1]byte
	if n, _ := io.ReadFull(ch.Body, extra[:]); n > 0 {
		return Result{}, withOffset(&syncproto.Error{Code: syncproto.EMalformed, Title: "Body too long",
			Message: "the body holds more bytes than its Content-Range; the range's bytes are kept",
			Errors:  []syncproto.FieldError{{Path: "body", Message: fmt.Sprintf("must hold exactly the %d bytes of the Content-Range", length)}}}, p.offset)
	}
	if p.offset < size {
		return Result{Offset: p.offset}, nil
	}
	s.dropProof(ch.Uploader, partial)
	if hex.EncodeToString(p.h.Sum(nil)) != ch.SHA256 {
		return Result{}, withOffset(&syncproto.Error{Code: syncproto.EInvalid, Title: "Photo does not match its hash",
			Message: "the uploaded bytes do not hash to the SHA-256 in the path; upload the photo again from byte 0",
			Errors:  []syncproto.FieldError{{Path: "path.sha256", Message: "is not the SHA-256 of the uploaded bytes"}}}, 0)
	}
	res, err := s.wholeResult(ch.SHA256, false)
	if errors.Is(err, fs.ErrNotExist) {
		// Removed by the sweep of unreferenced photos meanwhile (it skips
		// photos being re-uploaded, so only in a race): send it anew.
		return Result{}, withOffset(&syncproto.Error{Code: syncproto.EConflict, Title: "Photo gone",
			Message: "the server no longer holds this photo: upload it again from byte 0"}, 0)
	}
	res.Proven = err == nil
	return res, err
}
