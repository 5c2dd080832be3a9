package syncproto

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// An exported outbox is the pending work of one tablet, written to a file
// so that it is not stranded when the tablet can no longer sync (a revoked
// tablet): its change sets exactly as the tablet would have pushed them
// (their changeset_id and device_seq), and the photos they reference that
// the server never received. After a supervisor's decision the file is
// replayed, by another device, as the first one (PushService.ReplayOutbox).

// OutboxFormat and OutboxVersion name the file's format; a reader refuses
// another format or a later version.
const (
	OutboxFormat  = "fieldsync-outbox"
	OutboxVersion = 1
)

// MaxOutboxSets bounds the change sets of one replay request.
const MaxOutboxSets = 100

// OutboxFile is an exported outbox, as written to the file (the JSON
// members are the documented format, docs/protocol.md).
type OutboxFile struct {
	Format     string `json:"format"`
	Version    int    `json:"version"`
	DeviceID   string `json:"device_id"`
	User       string `json:"user"`
	Server     string `json:"server,omitempty"`
	ExportedAt string `json:"exported_at,omitempty"`
	// Changesets are push bodies (POST /v1/sync/push), byte for byte as the
	// tablet sends them, in device_seq order.
	Changesets []json.RawMessage `json:"changesets"`
	// Photos are the photos the change sets reference, taken on the
	// tablet and not yet on the server, with their bytes.
	Photos []OutboxPhoto `json:"photos,omitempty"`
	// PhotosMissing are such photos whose bytes could not be included,
	// with the reason.
	PhotosMissing []MissingPhoto `json:"photos_missing,omitempty"`
}

// OutboxPhoto is a photo carried in an exported outbox.
type OutboxPhoto struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Data is the photo's bytes (base64 in the JSON).
	Data []byte `json:"data"`
}

// MissingPhoto is a photo an exported change references whose bytes the
// file does not carry.
type MissingPhoto struct {
	SHA256 string `json:"sha256"`
	Reason string `json:"reason"`
}

// ReplayRequest is the decoded body of POST /v1/devices/{id}/outbox: the
// file's envelope and its change sets, checked and in device_seq order.
type ReplayRequest struct {
	DeviceID string
	User     string
	Sets     []Changeset
}

// DecodeOutbox decodes and checks an outbox file (or a replay request,
// which is the file without its photos) for device: its format and
// version, its device, and each change set as a push would (DecodeChangeset),
// with every path prefixed by the set's place in the file
// (changesets[2].changes[0].entity). It returns EMalformed or EInvalid with
// the paths, or ETooLarge past maxSets change sets.
func DecodeOutbox(body []byte, sch *schema.Schema, device string, maxChanges, maxSets int) (ReplayRequest, error) {
	var req ReplayRequest
	var env struct {
		Format        json.RawMessage   `json:"format"`
		Version       json.RawMessage   `json:"version"`
		DeviceID      json.RawMessage   `json:"device_id"`
		User          json.RawMessage   `json:"user"`
		Server        json.RawMessage   `json:"server"`
		ExportedAt    json.RawMessage   `json:"exported_at"`
		Changesets    []json.RawMessage `json:"changesets"`
		Photos        json.RawMessage   `json:"photos"`
		PhotosMissing json.RawMessage   `json:"photos_missing"`
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '{' {
		return req, &Error{Code: EMalformed, Title: "Malformed outbox", Message: "the body must be a JSON object",
			Errors: []FieldError{{Path: "$", Message: "must be a JSON object"}}}
	}
	// Repeated keys and long lists, as in every body, before decoding:
	// the change sets' own lists bounded as a push bounds them.
	inSet := ChangesetItemLimit(sch, maxChanges)
	if err := CheckJSON(body, func(p []PathElem) int {
		switch {
		case len(p) == 1 && strings.EqualFold(p[0].Key, "changesets"):
			return maxSets
		case len(p) > 2 && strings.EqualFold(p[0].Key, "changesets"):
			return inSet(p[2:])
		}
		return DefaultMaxItems
	}); err != nil {
		return req, err
	}
	if err := strictUnmarshal(body, &env); err != nil {
		return req, malformed("", err)
	}
	format, err := decodeString(env.Format, "format")
	if err != nil {
		return req, err
	}
	version, err := decodeInt(env.Version, "version")
	if err != nil {
		return req, err
	}
	if format != OutboxFormat {
		return req, &Error{Code: EInvalid, Title: "Not an exported outbox",
			Message: "this is not a file written by 'fieldsync device outbox export'",
			Errors:  []FieldError{{Path: "format", Message: "must be " + OutboxFormat}}}
	}
	if version != OutboxVersion {
		return req, &Error{Code: EInvalid, Title: "Unsupported outbox version",
			Message: fmt.Sprintf("this server reads version %d of the outbox format", OutboxVersion),
			Errors:  []FieldError{{Path: "version", Message: fmt.Sprintf("must be %d", OutboxVersion)}}}
	}
	if req.DeviceID, err = decodeString(env.DeviceID, "device_id"); err != nil {
		return req, err
	}
	if req.User, err = decodeString(env.User, "user"); err != nil {
		return req, err
	}
	var errs []FieldError
	req.DeviceID = strings.ToLower(req.DeviceID)
	if req.DeviceID != device {
		errs = append(errs, FieldError{Path: "device_id", Message: "must be the device of the path, " + device})
	}
	if req.User == "" {
		errs = append(errs, FieldError{Path: "user", Message: "is required: the user the tablet was signed in as"})
	}
	if len(env.Photos) > 0 && string(env.Photos) != "null" && string(bytes.TrimSpace(env.Photos)) != "[]" {
		errs = append(errs, FieldError{Path: "photos",
			Message: "upload photos through /v1/attachments first and send the file without them ('fieldsync device outbox replay' does)"})
	}
	if len(env.Changesets) == 0 {
		errs = append(errs, FieldError{Path: "changesets", Message: "must hold at least one change set"})
	}
	if maxSets > 0 && len(env.Changesets) > maxSets {
		return req, &Error{Code: ETooLarge, Title: "Too many change sets",
			Message: fmt.Sprintf("a replay holds at most %d change sets; send the rest in another request", maxSets),
			Errors:  []FieldError{{Path: "changesets", Message: fmt.Sprintf("has %d change sets, more than %d", len(env.Changesets), maxSets)}}}
	}
	code := EInvalid
	seqs := map[int64]int{}
	ids := map[string]int{}
	for i, raw := range env.Changesets {
		at := fmt.Sprintf("changesets[%d]", i)
		cs, err := DecodeChangeset(raw, sch, maxChanges)
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				return req, err
			}
			if e.Code != EInvalid {
				code = e.Code // malformed or too large outranks invalid
			}
			if len(e.Errors) == 0 {
				errs = append(errs, FieldError{Path: at, Message: e.Message})
			}
			for _, fe := range e.Errors {
				errs = append(errs, FieldError{Path: joinOutboxPath(at, fe.Path), Message: fe.Message})
			}
			continue
		}
		if cs.DeviceID != device {
			errs = append(errs, FieldError{Path: at + ".device_id", Message: "must be the device of the path, " + device})
		}
		if j, dup := seqs[cs.DeviceSeq]; dup {
			errs = append(errs, FieldError{Path: at + ".device_seq", Message: fmt.Sprintf("repeats changesets[%d].device_seq", j)})
		}
		if j, dup := ids[cs.ChangesetID]; dup {
			errs = append(errs, FieldError{Path: at + ".changeset_id", Message: fmt.Sprintf("repeats changesets[%d].changeset_id", j)})
		}
		seqs[cs.DeviceSeq], ids[cs.ChangesetID] = i, i
		req.Sets = append(req.Sets, cs)
	}
	if len(errs) > 0 {
		title := "Invalid outbox"
		if code == EMalformed {
			title = "Malformed outbox"
		}
		return ReplayRequest{}, &Error{Code: code, Title: title, Message: plural(len(errs), "problem") + " in the outbox", Errors: errs}
	}
	sort.SliceStable(req.Sets, func(a, b int) bool { return req.Sets[a].DeviceSeq < req.Sets[b].DeviceSeq })
	return req, nil
}

func joinOutboxPath(prefix, path string) string {
	switch {
	case path == "" || path == "$":
		return prefix
	case strings.HasPrefix(path, "$."):
		return prefix + "." + path[2:]
	case strings.HasPrefix(path, "["):
		return prefix + path
	}
	return prefix + "." + path
}

// Replay says who replayed a change set from an exported outbox: the
// supervisor, the device that carried the file, and when. The change set
// itself was applied as its original device and user.
type Replay struct {
	By     string    // the supervisor (or admin) who decided and sent it
	Device string    // the device the file was sent from
	At     time.Time // when the server applied it
}

// ReplayTx is PushTx with the record of a replay.
type ReplayTx interface {
	PushTx
	// RecordReplay notes that the change set was applied from an exported
	// outbox by r.By through r.Device.
	RecordReplay(ctx context.Context, changesetID string, r Replay) error
	// CarryPhotoProofs lets the original actor's references to photos
	// that the replayer uploaded grant downloads, as if the original
	// device had uploaded them (the bytes came from its export).
	CarryPhotoProofs(ctx context.Context, hashes []string, replayer, original Actor) error
}

// replayChangeset applies a change set of an exported outbox as its
// original device (apply with original as the actor): a change set the
// server already holds is a replay and applies nothing, one out of order
// or outside the original user's scope is refused as a push would be. A
// change set applied now is recorded as replayed by replayer.
func (p *PushService) replayChangeset(ctx context.Context, tx ReplayTx, original, replayer Actor, cs Changeset, now time.Time) (PushResponse, error) {
	if hashes := referencedPhotos(cs); len(hashes) > 0 {
		if err := tx.CarryPhotoProofs(ctx, hashes, replayer, original); err != nil {
			return PushResponse{}, err
		}
	}
	resp, err := p.apply(ctx, tx, original, cs, p.prepare(cs, now), now)
	if err != nil || resp.Replayed {
		return resp, err
	}
	return resp, tx.RecordReplay(ctx, cs.ChangesetID, Replay{By: replayer.UserID, Device: replayer.DeviceID, At: now.UTC()})
}

// referencedPhotos lists the digests the change set's photos fields name.
func referencedPhotos(cs Changeset) []string {
	var out []string
	seen := map[string]bool{}
	for _, ch := range cs.Changes {
		var list []string
		if json.Unmarshal(ch.Fields[PhotosField], &list) != nil {
			continue
		}
		for _, h := range list {
			if ValidSHA256(h) && !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ReplayedSet is the outcome of one change set of a replay: its push
// response, or the error that refused it (nothing of it was written).
type ReplayedSet struct {
	ChangesetID string
	DeviceSeq   int64
	Response    PushResponse
	Err         error
}

// OutboxStore is the write an outbox replay needs of a store.
type OutboxStore interface {
	// WriteReplay calls fn(tx, i) for every i from 0 to n-1, in order,
	// inside one durable write transaction, each call in its own
	// savepoint: when a call returns an *Error its writes are rolled back
	// alone and the others go on; any other error fails the whole
	// transaction, nothing is kept and WriteReplay returns it, as it
	// returns a failed commit. fn must use the context it is given, which
	// the caller's going away does not cancel. After the store began to
	// close, WriteReplay refuses with EUnavailable without calling fn.
	WriteReplay(ctx context.Context, n int, fn func(ctx context.Context, tx ReplayTx, i int) error) error
}
