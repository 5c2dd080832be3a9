package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"

	"github.com/fieldsync/fieldsync/syncproto"
)

// ErrNothingPending: ExportOutbox found no pending edit to export.
var ErrNothingPending = errors.New("client: no pending edits: nothing to export")

// ExportOutbox returns every pending edit of this device as an exported
// outbox (syncproto.OutboxFile), without the network and without a token:
// for a tablet a supervisor revoked, whose work would otherwise be
// stranded. It first seals the outbox into change sets, in one local
// transaction: each gets its device_seq and changeset_id for good, the
// ones this device sends if it ever pushes again, so that the file and the
// device can never apply the same edits twice (a second export carries the
// same change sets again, and the edits made since in new ones). The
// photos the changes reference that were taken here and never uploaded
// are carried with their bytes; those that cannot be (refused by the
// server, or their file gone) are listed in PhotosMissing with the reason.
// It returns ErrNothingPending when there is nothing to export.
func (c *Client) ExportOutbox(ctx context.Context) (*syncproto.OutboxFile, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	f := &syncproto.OutboxFile{Format: syncproto.OutboxFormat, Version: syncproto.OutboxVersion, DeviceID: c.device,
		ExportedAt: syncproto.FormatTime(c.opts.Now()), Changesets: []json.RawMessage{}}
	var sets []syncproto.Changeset
	err := c.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if f.User, err = c.meta(ctx, tx, "user"); err != nil {
			return err
		}
		if f.Server, err = c.meta(ctx, tx, "server"); err != nil {
			return err
		}
		for {
			set, err := c.seal(ctx, tx)
			if err != nil {
				return err
			}
			if set == nil {
				break
			}
		}
		var bodies []string
		bodies, sets, err = sealedSets(ctx, tx)
		if err != nil {
			return err
		}
		for _, body := range bodies {
			f.Changesets = append(f.Changesets, json.RawMessage(body))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		return nil, ErrNothingPending
	}
	if f.User == "" {
		return nil, errors.New("client: this device never signed in: its outbox names no user")
	}
	if err := c.exportPhotos(ctx, f, sets); err != nil {
		return nil, err
	}
	return f, nil
}

// exportPhotos adds to f the photos that sets reference and this device
// holds but the server does not.
func (c *Client) exportPhotos(ctx context.Context, f *syncproto.OutboxFile, sets []syncproto.Changeset) error {
	var changes []syncproto.Change
	for _, cs := range sets {
		changes = append(changes, cs.Changes...)
	}
	hashes := photoHashes(changes)
	sort.Strings(hashes)
	for _, h := range hashes {
		var state, reason string
		err := c.db.QueryRowContext(ctx, `SELECT state, reason FROM photos WHERE hash = ?`, h).Scan(&state, &reason)
		if errors.Is(err, sql.ErrNoRows) {
			continue // not taken here: another tablet's photo, on the server already
		}
		if err != nil {
			return err
		}
		switch state {
		case photoUploaded:
			continue
		case photoRefused:
			f.PhotosMissing = append(f.PhotosMissing, syncproto.MissingPhoto{SHA256: h, Reason: "the server refused it: " + reason})
			continue
		}
		data, err := os.ReadFile(c.photoPath(h))
		if err != nil {
			f.PhotosMissing = append(f.PhotosMissing, syncproto.MissingPhoto{SHA256: h, Reason: "its file on this device cannot be read"})
			continue
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != h {
			f.PhotosMissing = append(f.PhotosMissing, syncproto.MissingPhoto{SHA256: h, Reason: "its file on this device is damaged"})
			continue
		}
		f.Photos = append(f.Photos, syncproto.OutboxPhoto{SHA256: h, Size: int64(len(data)), Data: data})
	}
	return nil
}

// ReplayedSet is what the server did with one change set of a replayed
// outbox.
type ReplayedSet struct {
	ChangesetID string `json:"changeset_id"`
	DeviceSeq   int64  `json:"device_seq"`
	// Status is applied (applied now), replayed (the server held it
	// already: nothing applied twice) or refused (Problem says why).
	Status  string                   `json:"status"`
	Results []syncproto.ChangeResult `json:"results"`
	Problem *Problem                 `json:"problem"`
}

// ReplayReport is what ReplayOutbox did.
type ReplayReport struct {
	Sets           []ReplayedSet
	PhotosUploaded int                      // photos of the file the server lacked, uploaded
	PhotosMissing  []syncproto.MissingPhoto // photos the file names but does not carry
	// PhotosWaiting counts the file's photos the server put off (507
	// below its free-space floor, 429 over a quota): the change sets are
	// replayed all the same, and this device's later syncs send them.
	PhotosWaiting    int
	PhotosWaitReason string
}

// replayBudget bounds the change sets' bytes in one replay request (the
// server's default body limit is 8 MiB).
const replayBudget = 4 << 20

// ReplayOutbox sends an exported outbox of another device (a revoked
// tablet) to the server, from this device, which must be signed in as a
// supervisor or admin whose scope covers that device's user: first the
// photos it carries that the server lacks (kept on this device too, like
// AddPhoto), then its change sets (POST /v1/devices/{id}/outbox), which
// the server applies as the first device. Sending the same file again
// applies nothing new. A *Problem is the server's refusal of the whole
// file (not a supervisor, out of scope, the device not revoked, a
// malformed file): nothing was applied.
func (c *Client) ReplayOutbox(ctx context.Context, f *syncproto.OutboxFile) (ReplayReport, error) {
	var rep ReplayReport
	if f.Format != syncproto.OutboxFormat || f.Version != syncproto.OutboxVersion {
		return rep, fmt.Errorf("client: not an exported outbox of version %d (format %q, version %d)",
			syncproto.OutboxVersion, f.Format, f.Version)
	}
	if _, err := c.server(ctx); err != nil {
		return rep, err
	}
	rep.PhotosMissing = f.PhotosMissing
	var hashes []string
	for i, p := range f.Photos {
		if sum := sha256.Sum256(p.Data); hex.EncodeToString(sum[:]) != p.SHA256 {
			return rep, fmt.Errorf("client: photos[%d] is damaged: its bytes do not hash to %s", i, p.SHA256)
		}
		h, err := c.AddPhoto(ctx, bytes.NewReader(p.Data))
		if err != nil {
			return rep, fmt.Errorf("client: photos[%d]: %w", i, err)
		}
		hashes = append(hashes, h)
	}
	if len(hashes) > 0 {
		var set inflightSet
		for _, h := range hashes {
			photos, _ := json.Marshal([]string{h})
			set.cs.Changes = append(set.cs.Changes, syncproto.Change{Fields: map[string]json.RawMessage{syncproto.PhotosField: photos}})
		}
		var up Report
		var round photoRound
		c.syncMu.Lock()
		err := c.uploadPhotos(ctx, &set, &up, &round)
		c.syncMu.Unlock()
		if err != nil {
			return rep, err
		}
		rep.PhotosUploaded = up.Photos
		if round.later != nil {
			rep.PhotosWaitReason = round.later.Error()
			for _, h := range hashes {
				var state string
				if err := c.db.QueryRowContext(ctx, `SELECT state FROM photos WHERE hash = ?`, h).Scan(&state); err == nil && state == photoWaiting {
					rep.PhotosWaiting++
				}
			}
		}
	}
	for start := 0; start < len(f.Changesets); {
		end, size := start, 0
		for end < len(f.Changesets) && end-start < syncproto.MaxOutboxSets &&
			(end == start || size+len(f.Changesets[end]) <= replayBudget) {
			size += len(f.Changesets[end])
			end++
		}
		part := *f
		part.Changesets, part.Photos, part.PhotosMissing = f.Changesets[start:end], nil, nil
		body, err := json.Marshal(part)
		if err != nil {
			return rep, err
		}
		var answer struct {
			Changesets []ReplayedSet `json:"changesets"`
		}
		if err := c.retry(ctx, func(ctx context.Context) error {
			return c.call(ctx, http.MethodPost, "/v1/devices/"+f.DeviceID+"/outbox", body, &answer)
		}); err != nil {
			return rep, err
		}
		rep.Sets = append(rep.Sets, answer.Changesets...)
		start = end
	}
	return rep, nil
}
