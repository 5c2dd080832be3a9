package syncproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
)

// DefaultMaxChanges is the default limit of changes in one change set.
const DefaultMaxChanges = 1000

// MaxDeviceSeq bounds device_seq to the integers every JSON client
// represents exactly (2^53 − 1), so that a device cannot be pushed to the
// end of the sequence.
const MaxDeviceSeq = 1<<53 - 1

// DecodeChangeset decodes and validates a push body. Malformed JSON, invalid
// UTF-8, values of the wrong JSON type and a key repeated in an object are
// EMalformed (400); a list longer than its bound (CheckJSON,
// ChangesetItemLimit) is ETooLarge (413); a change set
// whose envelope is invalid (ids, op, entity, device time, limits, duplicate
// record ids) is EInvalid (422). Every error carries its path. Per-field
// schema violations are not checked here: they are judged per change by
// the push (PushService.Push), which quarantines the change and lets the
// rest apply.
func DecodeChangeset(body []byte, sch *schema.Schema, maxChanges int) (Changeset, error) {
	var cs Changeset
	if !utf8.Valid(body) {
		return cs, &Error{Code: EMalformed, Title: "Malformed JSON", Message: "the body is not valid UTF-8",
			Errors: []FieldError{{Path: "$", Message: fmt.Sprintf("invalid UTF-8 at byte %d", invalidUTF8At(body))}}}
	}
	var env struct {
		ChangesetID   json.RawMessage   `json:"changeset_id"`
		DeviceID      json.RawMessage   `json:"device_id"`
		DeviceSeq     json.RawMessage   `json:"device_seq"`
		SchemaVersion json.RawMessage   `json:"schema_version"`
		Changes       []json.RawMessage `json:"changes"`
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '{' {
		return cs, &Error{Code: EMalformed, Title: "Malformed JSON", Message: "the body must be a JSON object",
			Errors: []FieldError{{Path: "$", Message: "must be a JSON object"}}}
	}
	// Repeated keys and overlong lists are refused before anything is
	// decoded, so that a million-item list is not decoded to be refused.
	if err := CheckJSON(body, ChangesetItemLimit(sch, maxChanges)); err != nil {
		return cs, err
	}
	if err := strictUnmarshal(body, &env); err != nil {
		return cs, malformed("", err)
	}
	var errs []FieldError
	var err error
	if cs.ChangesetID, err = decodeString(env.ChangesetID, "changeset_id"); err != nil {
		return cs, err
	}
	if cs.DeviceID, err = decodeString(env.DeviceID, "device_id"); err != nil {
		return cs, err
	}
	if cs.DeviceSeq, err = decodeInt(env.DeviceSeq, "device_seq"); err != nil {
		return cs, err
	}
	sv, err := decodeInt(env.SchemaVersion, "schema_version")
	if err != nil {
		return cs, err
	}
	cs.SchemaVersion = int(sv)
	if maxChanges > 0 && len(env.Changes) > maxChanges {
		return cs, &Error{Code: ETooLarge, Title: "Change set too large",
			Message: fmt.Sprintf("a change set holds at most %d changes; split it", maxChanges),
			Errors:  []FieldError{{Path: "changes", Message: fmt.Sprintf("has %d changes, more than %d", len(env.Changes), maxChanges)}}}
	}
	cs.Changes = make([]Change, len(env.Changes))
	for i, raw := range env.Changes {
		if err := strictUnmarshal(raw, &cs.Changes[i]); err != nil {
			return cs, malformed(fmt.Sprintf("changes[%d]", i), err)
		}
	}

	errs = append(errs, checkUUID(cs.ChangesetID, "changeset_id")...)
	errs = append(errs, checkUUID(cs.DeviceID, "device_id")...)
	cs.ChangesetID, cs.DeviceID = strings.ToLower(cs.ChangesetID), strings.ToLower(cs.DeviceID)
	if cs.DeviceSeq < 1 || cs.DeviceSeq > MaxDeviceSeq {
		errs = append(errs, FieldError{Path: "device_seq", Message: fmt.Sprintf("must be an integer from 1 to %d", int64(MaxDeviceSeq))})
	}
	if cs.SchemaVersion < 1 || cs.SchemaVersion > sch.Version {
		// sch is the latest version; an older one is migrated on arrival
		// (PushService.Push).
		errs = append(errs, FieldError{Path: "schema_version", Message: fmt.Sprintf("must be a version from 1 to %d, the latest this server serves", sch.Version)})
	}
	if len(env.Changes) == 0 {
		errs = append(errs, FieldError{Path: "changes", Message: "must hold at least one change"})
	}
	seen := make(map[string]int, len(cs.Changes))
	for i := range cs.Changes {
		errs = append(errs, validateEnvelope(&cs.Changes[i], fmt.Sprintf("changes[%d]", i), sch)...)
		id := cs.Changes[i].ID
		if j, dup := seen[id]; dup && id != "" {
			errs = append(errs, FieldError{Path: fmt.Sprintf("changes[%d].id", i),
				Message: fmt.Sprintf("repeats changes[%d].id: send one change per record per change set", j)})
		}
		seen[id] = i
	}
	if len(errs) > 0 {
		return cs, &Error{Code: EInvalid, Title: "Invalid change set",
			Message: plural(len(errs), "problem") + " in the change set", Errors: errs}
	}
	return cs, nil
}

// validateEnvelope checks what identifies and orders a change; its fields
// are checked against the schema later, per change.
func validateEnvelope(c *Change, path string, sch *schema.Schema) []FieldError {
	var errs []FieldError
	if sch.Form(c.Entity) == nil {
		errs = append(errs, FieldError{Path: path + ".entity", Message: "must be one of " + strings.Join(sch.Entities(), ", ")})
	}
	errs = append(errs, checkUUID(c.ID, path+".id")...)
	if c.ID != "" {
		c.ID = strings.ToLower(c.ID)
	}
	switch c.Op {
	case OpUpsert:
		if len(c.Fields) == 0 {
			errs = append(errs, FieldError{Path: path + ".fields", Message: "an upsert needs at least one field"})
		}
	case OpDelete:
		if len(c.Fields) > 0 {
			errs = append(errs, FieldError{Path: path + ".fields", Message: "a delete carries no fields"})
		}
	default:
		errs = append(errs, FieldError{Path: path + ".op", Message: "must be upsert or delete"})
	}
	if c.BaseVersion < 0 {
		errs = append(errs, FieldError{Path: path + ".base_version", Message: "must be 0 or more"})
	}
	if _, err := ParseTime(c.At); err != nil {
		errs = append(errs, FieldError{Path: path + ".at", Message: "must be an RFC 3339 time, e.g. 2026-11-20T08:15:30.123Z"})
	}
	return errs
}

// ParseTime parses a wire time (RFC 3339, any fraction of a second).
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	if t.Year() < 2000 || t.Year() > 9999 {
		return time.Time{}, errors.New("year out of range")
	}
	return t.UTC(), nil
}

func checkUUID(s, path string) []FieldError {
	if s == "" {
		return []FieldError{{Path: path, Message: "is required"}}
	}
	if _, err := uuid.Parse(s); err != nil || len(s) != 36 {
		return []FieldError{{Path: path, Message: "must be a UUID"}}
	}
	return nil
}

// strictUnmarshal decodes one JSON value into v, refusing unknown keys and
// trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

func decodeString(raw json.RawMessage, path string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &Error{Code: EMalformed, Title: "Malformed JSON", Message: "wrong type",
			Errors: []FieldError{{Path: path, Message: "must be a string"}}}
	}
	return s, nil
}

func decodeInt(raw json.RawMessage, path string) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, &Error{Code: EMalformed, Title: "Malformed JSON", Message: "wrong type",
			Errors: []FieldError{{Path: path, Message: "must be an integer"}}}
	}
	return n, nil
}

// malformed turns a JSON decoding error into an EMalformed error whose path
// names the offending key where the decoder tells it.
func malformed(prefix string, err error) *Error {
	path := prefix
	msg := "is not valid JSON"
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field != "" {
			path = joinPath(prefix, te.Field)
		}
		msg = "must be " + jsonKind(te.Type.Kind().String())
	case errors.As(err, &se):
		msg = fmt.Sprintf("is not valid JSON (%s at byte %d)", se.Error(), se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		key := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		path = joinPath(prefix, key)
		msg = "is not a known key"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		msg = "is truncated or empty JSON"
	default:
		msg = "is not valid JSON: " + err.Error()
	}
	if path == "" {
		path = "$"
	}
	return &Error{Code: EMalformed, Title: "Malformed JSON", Message: "the body could not be decoded",
		Errors: []FieldError{{Path: path, Message: msg}}}
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	case "map", "struct":
		return "an object"
	}
	return "of another type"
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// plural renders "1 problem", "2 problems".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
