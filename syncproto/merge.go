package syncproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// MergedDevice stands, in FieldMeta.Device, for a value made by a
// concurrent decision rather than by one device: every device's later stale
// edit of it is concurrent.
const MergedDevice = "*merged*"

// FieldMeta is what the server keeps of the last write of one field: the
// record version that wrote it, the device, and the device time (after
// clamping). "Changed after base_version" and lww are judged by it.
type FieldMeta struct {
	Version int64     `json:"v"`
	Device  string    `json:"d"`
	At      time.Time `json:"a"`
}

// StoredRecord is a record as the store holds it, with per-field metadata.
// Meta[FieldDeleted] describes the last write of the deletion flag.
type StoredRecord struct {
	Entity     string
	ID         string
	Version    int64
	Fields     map[string]json.RawMessage
	Meta       map[string]FieldMeta
	Deleted    bool
	MergedInto string
	// Village is the division code that scopes the record: a household's
	// own village, an inspection's household's village.
	Village string
	// Parent is the id of the record this one belongs to (an inspection's
	// household), empty for households.
	Parent        string
	UpdatedAt     time.Time
	UpdatedBy     string
	UpdatedDevice string
	// RawFields, when set instead of Fields, is the fields object as
	// stored; only a snapshot whose SnapshotQuery.RawFields asks for it
	// reads records so (WireRecord passes it on).
	RawFields json.RawMessage
}

// Incoming is a validated change as Merge sees it: canonical field values
// and the device time after clamping.
type Incoming struct {
	Op          string
	BaseVersion int64
	Fields      map[string]json.RawMessage
	At          time.Time
	Device      string
}

// Decision is one concurrent edit decided by a field's policy (or left open
// for a supervisor when the policy is manual).
type Decision struct {
	Field    string
	Policy   schema.Policy
	Stored   json.RawMessage
	Incoming json.RawMessage
	Kept     json.RawMessage
	State    string
}

// FieldChange is the before and after of one field in a new version.
type FieldChange struct {
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	// DerivedFrom, when set, names the field the server derived this value
	// from (a derive step of a newer schema version, after the merge of a
	// change sent in an older one): the server's derivation, not a value a
	// device sent.
	DerivedFrom string `json:"derived_from,omitempty"`
}

// Outcome is the result of merging one change into a stored record. When
// Changes is empty nothing was altered and no new version is made.
type Outcome struct {
	Status    string
	Version   int64
	Fields    map[string]json.RawMessage
	Meta      map[string]FieldMeta
	Deleted   bool
	Changes   map[string]FieldChange
	Decisions []Decision
	Errors    []FieldError
	// MetaTouched is set when no value changed but the time of an lww
	// field's last confirmation moved forward: the store keeps the new
	// Meta without making a version.
	MetaTouched bool
}

var (
	jsonTrue  = json.RawMessage("true")
	jsonFalse = json.RawMessage("false")
)

// Merge decides, per field, the outcome of the incoming change against the
// stored record (nil when the record does not exist), following PROTOCOL.md:
//
//   - a field no other device changed after BaseVersion applies (a device
//     never conflicts with itself);
//   - a field changed concurrently to the same value is a no-op;
//   - a field changed concurrently to another value is decided by its policy:
//     lww (later At wins, ties by the larger device id), safety_first (the
//     more severe value wins), union (sets merge), manual (the stored value
//     stays and an open decision is returned);
//   - a delete at a stale base, when another device changed the record after
//     that base, does not apply and opens a manual decision on FieldDeleted;
//     an upsert to a record another device deleted after the upsert's base
//     opens the same decision and the record stays deleted.
//
// Merge is pure: it does not modify stored.
func Merge(form *schema.Form, stored *StoredRecord, in Incoming) Outcome {
	if stored == nil {
		return create(in)
	}
	out := Outcome{
		Version: stored.Version,
		Fields:  cloneFields(stored.Fields),
		Meta:    cloneMeta(stored.Meta),
		Deleted: stored.Deleted,
		Changes: map[string]FieldChange{},
	}
	if in.BaseVersion > stored.Version {
		return rejected(FieldError{Path: "base_version",
			Message: fmt.Sprintf("is ahead of the record's version %d", stored.Version)})
	}
	concurrent := func(field string) bool {
		m, ok := stored.Meta[field]
		return ok && m.Version > in.BaseVersion && m.Device != in.Device
	}
	newVersion := stored.Version + 1
	write := func(field string, before, after json.RawMessage) {
		out.Changes[field] = FieldChange{Before: before, After: after}
		out.Meta[field] = FieldMeta{Version: newVersion, Device: in.Device, At: in.At}
		if field == FieldDeleted {
			return
		}
		if bytes.Equal(after, schema.Null) {
			delete(out.Fields, field)
		} else {
			out.Fields[field] = after
		}
	}

	if in.Op == OpDelete {
		switch {
		case stored.Deleted:
			// Already a tombstone: nothing to do.
		case othersChanged(stored, in, concurrent):
			out.Decisions = append(out.Decisions, Decision{Field: FieldDeleted, Policy: schema.PolicyManual,
				Stored: jsonFalse, Incoming: jsonTrue, Kept: jsonFalse, State: StateOpen})
		default:
			write(FieldDeleted, jsonFalse, jsonTrue)
			out.Deleted = true
		}
		return finish(out, newVersion)
	}

	if stored.Deleted {
		// A household merged into another stays a tombstone whoever edits
		// it: even a device that saw the merge opens the conflict, whose
		// incoming value shows the supervisor the edit that belongs on the
		// survivor (MergedInto).
		if concurrent(FieldDeleted) || stored.MergedInto != "" {
			incoming, _ := json.Marshal(in.Fields)
			out.Decisions = append(out.Decisions, Decision{Field: FieldDeleted, Policy: schema.PolicyManual,
				Stored: jsonTrue, Incoming: incoming, Kept: jsonTrue, State: StateOpen})
			return finish(out, newVersion)
		}
		// The deletion was seen by this device (at or before its base) or
		// made by it: its edit restores the record, as it is.
		write(FieldDeleted, jsonTrue, jsonFalse)
		out.Deleted = false
	}

	for _, name := range sortedKeys(in.Fields) {
		incoming := in.Fields[name]
		current := valueOf(stored.Fields, name)
		if bytes.Equal(incoming, current) {
			// The same value again changes nothing, but for lww a later
			// confirmation must count: a concurrent older edit arriving
			// next is judged against the latest time the value was seen.
			if m, ok := stored.Meta[name]; ok && form.Field(name).Policy == schema.PolicyLWW && laterThan(in.At, in.Device, m) {
				m.At, m.Device = in.At, in.Device
				out.Meta[name] = m
				out.MetaTouched = true
			}
			continue
		}
		if !concurrent(name) {
			write(name, current, incoming)
			continue
		}
		fd := form.Field(name)
		d := Decision{Field: name, Policy: fd.Policy, Stored: current, Incoming: incoming,
			Kept: current, State: StateAutoResolved}
		switch fd.Policy {
		case schema.PolicyLWW:
			if laterThan(in.At, in.Device, stored.Meta[name]) {
				d.Kept = incoming
			}
		case schema.PolicySafetyFirst:
			if fd.Rank(incoming) > fd.Rank(current) {
				d.Kept = incoming
			}
		case schema.PolicyUnion:
			d.Kept = unionSets(current, incoming)
		default: // manual
			d.State = StateOpen
		}
		if !bytes.Equal(d.Kept, current) {
			write(name, current, d.Kept)
			if fd.Policy != schema.PolicyLWW {
				// The value now holds more than this device's edit (a
				// union, or a more severe value that beat another
				// device's): a later stale edit from this device is no
				// longer "its own" and must contend again.
				m := out.Meta[name]
				m.Device = MergedDevice
				out.Meta[name] = m
			}
		}
		out.Decisions = append(out.Decisions, d)
	}
	return finish(out, newVersion)
}

func create(in Incoming) Outcome {
	if in.Op == OpDelete {
		return rejected(FieldError{Path: "id", Message: "no record with this id exists to delete"})
	}
	if in.BaseVersion != 0 {
		return rejected(FieldError{Path: "base_version",
			Message: "the record does not exist; a new record has base_version 0"})
	}
	out := Outcome{Status: StatusApplied, Version: 1, Fields: map[string]json.RawMessage{},
		Meta: map[string]FieldMeta{}, Changes: map[string]FieldChange{}}
	for _, name := range sortedKeys(in.Fields) {
		v := in.Fields[name]
		if bytes.Equal(v, schema.Null) {
			continue
		}
		out.Fields[name] = v
		out.Meta[name] = FieldMeta{Version: 1, Device: in.Device, At: in.At}
		out.Changes[name] = FieldChange{Before: schema.Null, After: v}
	}
	return out
}

func finish(out Outcome, newVersion int64) Outcome {
	if len(out.Changes) > 0 {
		out.Version = newVersion
	}
	out.Status = StatusApplied
	for _, d := range out.Decisions {
		if d.State == StateOpen {
			out.Status = StatusConflict
			break
		}
		out.Status = StatusMerged
	}
	return out
}

func rejected(errs ...FieldError) Outcome {
	return Outcome{Status: StatusRejected, Errors: errs}
}

// othersChanged reports whether any field, or the deletion flag, was
// written by another device after the change's base version.
func othersChanged(stored *StoredRecord, in Incoming, concurrent func(string) bool) bool {
	for name := range stored.Meta {
		if concurrent(name) {
			return true
		}
	}
	return false
}

func valueOf(fields map[string]json.RawMessage, name string) json.RawMessage {
	if v, ok := fields[name]; ok {
		return v
	}
	return schema.Null
}

func unionSets(a, b json.RawMessage) json.RawMessage {
	var xs, ys []string
	_ = json.Unmarshal(a, &xs)
	_ = json.Unmarshal(b, &ys)
	seen := map[string]bool{}
	out := []string{}
	for _, s := range append(xs, ys...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	v, _ := json.Marshal(out)
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func cloneFields(m map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cloneMeta(m map[string]FieldMeta) map[string]FieldMeta {
	out := make(map[string]FieldMeta, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// laterThan orders writes for lww: the later device time wins, and on a tie
// the larger device id.
func laterThan(at time.Time, device string, m FieldMeta) bool {
	return at.After(m.At) || at.Equal(m.At) && device > m.Device
}
