package client

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/fieldsync/fieldsync/syncproto"
)

// AddPhoto keeps a copy of a photo on the device, named by the SHA-256 of
// its bytes, and returns that digest: put it in a record's "photos" field.
// The photo is uploaded by Sync before the change set that references it,
// in chunks that resume where a broken upload stopped, and only if the
// server does not hold it already (another tablet may have sent it).
// Bytes that are no photo the server takes (syncproto.PhotoType: JPEG,
// PNG, WebP, HEIC/HEIF) are refused at once with ErrNotAPhoto and nothing
// is kept: the server would refuse them at upload, after the record that
// names them was queued.
func (c *Client) AddPhoto(ctx context.Context, r io.Reader) (string, error) {
	br := bufio.NewReaderSize(r, max(4096, syncproto.PhotoSniffLen))
	head, err := br.Peek(syncproto.PhotoSniffLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("client: reading the photo: %w", err)
	}
	if len(head) == 0 {
		return "", errors.New("client: the photo is empty")
	}
	if syncproto.PhotoType(head) == "" {
		return "", ErrNotAPhoto
	}
	r = br
	if err := os.MkdirAll(c.opts.PhotoDir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(c.opts.PhotoDir, ".incoming-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("client: keeping the photo: %w", err)
	}
	if size == 0 {
		return "", errors.New("client: the photo is empty")
	}
	hash := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), c.photoPath(hash)); err != nil {
		return "", err
	}
	if d, err := os.Open(c.opts.PhotoDir); err == nil {
		d.Sync()
		d.Close()
	}
	_, err = c.db.ExecContext(ctx, `INSERT INTO photos (hash, size, state, added_at) VALUES (?, ?, 'pending', ?)
		ON CONFLICT (hash) DO NOTHING`, hash, size, syncproto.FormatTime(c.opts.Now()))
	return hash, err
}

// AddPhotoFile is AddPhoto of a file.
func (c *Client) AddPhotoFile(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return c.AddPhoto(ctx, f)
}

func (c *Client) photoPath(hash string) string { return filepath.Join(c.opts.PhotoDir, hash) }

// photoRound is what one push learned about the server's photo uploads:
// once it answered 507 (short of disk) or 429 (over the user's quotas),
// no more photos are tried until a later push.
type photoRound struct {
	later *Problem // the answer that put the photos off, if any
}

// A photo's states in the local photos table: pending until the server
// holds it; waiting when its change was pushed without it (the server
// put it off, 507 or 429) and it goes with a later push; uploaded; or
// refused for good (with the reason).
const (
	photoPending  = "pending"
	photoWaiting  = "waiting"
	photoUploaded = "uploaded"
	photoRefused  = "refused"
)

// photoLater is uploadPhoto's error when the server cannot take the
// photo now (507 below its free-space floor, 429 over the user's quotas):
// the photo stays queued, and the push goes on without it.
type photoLater struct{ p *Problem }

func (e *photoLater) Error() string { return "the server put the photo off: " + e.p.Error() }

// putOff reports whether an upload's answer puts the photo off for later,
// rather than refusing it or being worth an immediate retry.
func putOff(err error) (*Problem, bool) {
	var p *Problem
	if errors.As(err, &p) && (p.Status == http.StatusInsufficientStorage || p.Status == http.StatusTooManyRequests) {
		return p, true
	}
	return nil, false
}

// uploadPhotos sends the server the photos that the change set references
// and that it lacks, before each push of the change set: one question
// (/missing) covers every photo of the set that this device holds, pending
// or uploaded before, so that a photo the server removed since (unreferenced
// for longer than its sweep's age) is sent again. A photo the server
// cannot take now (round.later) waits for a later push: the change set
// is pushed all the same, since pushes must never stall behind photos.
func (c *Client) uploadPhotos(ctx context.Context, set *inflightSet, rep *Report, round *photoRound) error {
	var hashes []string
	for _, h := range photoHashes(set.cs.Changes) {
		var state string
		err := c.db.QueryRowContext(ctx, `SELECT state FROM photos WHERE hash = ?`, h).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			continue // not taken here: another tablet's photo
		}
		if err != nil {
			return err
		}
		// An uploaded photo is asked about again: the push that
		// references it may come long after its upload (a push that
		// failed, weeks out of coverage), and the server removes a
		// photo no record references once it is old enough.
		if state != photoPending && state != photoUploaded {
			continue
		}
		if _, err := os.Stat(c.photoPath(h)); err != nil {
			continue // no longer on this device: nothing to send
		}
		hashes = append(hashes, h)
	}
	return c.sendPhotos(ctx, hashes, rep, round)
}

// photoHashes returns the digests the changes' photos fields name, each
// once, in the order they first appear.
func photoHashes(changes []syncproto.Change) []string {
	var hashes []string
	seen := map[string]bool{}
	for _, ch := range changes {
		var list []string
		if json.Unmarshal(ch.Fields[syncproto.PhotosField], &list) != nil {
			continue
		}
		for _, h := range list {
			if !seen[h] {
				seen[h] = true
				hashes = append(hashes, h)
			}
		}
	}
	return hashes
}

// uploadWaiting sends the photos whose changes were pushed without them,
// oldest first, unless the server put photos off in this push already.
func (c *Client) uploadWaiting(ctx context.Context, rep *Report, round *photoRound) error {
	if round.later != nil {
		return nil
	}
	hashes, err := queryStrings(ctx, c.db, `SELECT hash FROM photos WHERE state = ? ORDER BY added_at, hash`, photoWaiting)
	if err != nil {
		return err
	}
	return c.sendPhotos(ctx, hashes, rep, round)
}

// sendPhotos asks the server which of hashes it lacks and uploads those.
// Once the server puts a photo off, it and every later one wait.
func (c *Client) sendPhotos(ctx context.Context, hashes []string, rep *Report, round *photoRound) error {
	for len(hashes) > 0 {
		if round.later != nil {
			for _, h := range hashes {
				if err := c.setPhotoState(ctx, h, photoWaiting, round.later.Error()); err != nil {
					return err
				}
			}
			return nil
		}
		batch := hashes[:min(len(hashes), syncproto.MaxMissingHashes)]
		hashes = hashes[len(batch):]
		body, _ := json.Marshal(map[string][]string{"hashes": batch})
		var answer struct {
			Missing []string `json:"missing"`
		}
		if err := c.retry(ctx, func(ctx context.Context) error {
			return c.call(ctx, http.MethodPost, "/v1/attachments/missing", body, &answer)
		}); err != nil {
			return err
		}
		missing := map[string]bool{}
		for _, h := range answer.Missing {
			missing[h] = true
		}
		for _, h := range batch {
			if missing[h] {
				if round.later != nil {
					if err := c.setPhotoState(ctx, h, photoWaiting, round.later.Error()); err != nil {
						return err
					}
					continue
				}
				if err := c.uploadPhoto(ctx, h); err != nil {
					var later *photoLater
					if errors.As(err, &later) {
						round.later = later.p
						if err := c.setPhotoState(ctx, h, photoWaiting, later.p.Error()); err != nil {
							return err
						}
						continue
					}
					var p *Problem
					if !errors.As(err, &p) {
						return err
					}
					// The server will never take it (not an image, too
					// large): keep it, say why, and push the change.
					if err := c.setPhotoState(ctx, h, photoRefused, p.Error()); err != nil {
						return err
					}
					rep.Refused++
					continue
				}
				rep.Photos++
			}
			if err := c.setPhotoState(ctx, h, photoUploaded, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Client) setPhotoState(ctx context.Context, hash, state, reason string) error {
	err := c.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE photos SET state = ?, reason = ? WHERE hash = ?`, state, reason, hash); err != nil {
			return err
		}
		if state != photoRefused {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO refused (changeset_id, entity, record_id, reason, change, reported_at)
			VALUES ('', 'photo', ?, ?, '{}', ?)`, hash, reason, syncproto.FormatTime(c.opts.Now()))
		return err
	})
	return err
}

// uploadPhoto sends one photo from the offset the server holds, a chunk at
// a time; a transient failure asks the server again where it stands.
// A *Problem other than a transient one means the server refuses it.
func (c *Client) uploadPhoto(ctx context.Context, hash string) error {
	f, err := os.Open(c.photoPath(hash))
	if err != nil {
		return fmt.Errorf("client: photo %s: %w", hash, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	path := "/v1/attachments/" + hash
	offset := int64(-1) // unknown: ask
	fails := 0          // transient failures in a row
	buf := make([]byte, c.opts.PhotoChunk)
	for {
		if offset < 0 {
			var hdr http.Header
			if err := c.retry(ctx, func(ctx context.Context) error {
				var err error
				_, hdr, _, err = c.callRaw(ctx, http.MethodHead, path, nil, nil)
				return err
			}); err != nil {
				return err
			}
			if hdr.Get("Upload-Complete") == "?1" {
				return nil
			}
			if offset, err = strconv.ParseInt(hdr.Get("Upload-Offset"), 10, 64); err != nil || offset < 0 || offset > size {
				offset = 0
			}
		}
		if offset >= size {
			// The server holds every byte but has not checked them (it
			// stopped between the last byte and its check): send the last
			// chunk again, which it checks the held bytes against first.
			offset = max(0, size-int64(len(buf)))
		}
		end := min(offset+int64(len(buf)), size)
		n, err := f.ReadAt(buf[:end-offset], offset)
		if err != nil && !(errors.Is(err, io.EOF) && int64(n) == end-offset) {
			return err
		}
		hdr := http.Header{"Content-Type": {"application/octet-stream"},
			"Content-Range": {fmt.Sprintf("bytes %d-%d/%d", offset, end-1, size)}}
		status, answer, _, err := c.callRaw(ctx, http.MethodPut, path, hdr, buf[:n])
		if p, later := putOff(err); later {
			// Short of disk (507) or over a quota (429): not now. Waiting
			// here for its Retry-After (minutes, an hour) would hold back
			// the pushes; the photo goes with a later sync instead.
			return &photoLater{p}
		}
		var p *Problem
		switch {
		case err == nil && (status == http.StatusCreated || status == http.StatusOK):
			return nil
		case err == nil:
			fails = 0
			if offset, err = strconv.ParseInt(answer.Get("Upload-Offset"), 10, 64); err != nil {
				offset = -1
			}
		case errors.As(err, &p) && p.Status == http.StatusConflict && p.UploadOffset != nil:
			offset = *p.UploadOffset // the server holds another offset: go on from there
		case errors.As(err, &p) && p.Status == http.StatusUnprocessableEntity:
			// The bytes did not match the name: the local copy is damaged.
			return p
		case retryable(ctx, err) || errors.As(err, &p) && p.Status == http.StatusConflict:
			// Lost on the way, or an earlier chunk still being received:
			// wait, then ask where the server stands.
			if werr := c.wait(ctx, fails, err); werr != nil {
				return werr
			}
			fails++
			offset = -1
		default:
			return err
		}
	}
}
