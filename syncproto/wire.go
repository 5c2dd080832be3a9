package syncproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends r's wire form to dst: the bytes encoding/json writes
// for a Record with HTML escaping off (as the server answers), without the
// reflection and without decoding the fields. When RawFields is set it is
// written as it is: it must be one JSON object, such as the text the
// server stores. Pulls and NDJSON snapshots write every record through it.
func (r *Record) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"entity":`...)
	dst = appendString(dst, r.Entity)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, r.ID)
	if r.Version != 0 {
		dst = append(dst, `,"version":`...)
		dst = strconv.AppendInt(dst, r.Version, 10)
	}
	switch {
	case r.RawFields != nil:
		if !noFields(r.RawFields) {
			dst = append(dst, `,"fields":`...)
			dst = append(dst, r.RawFields...)
		}
	case len(r.Fields) > 0:
		b, err := marshalNoHTML(r.Fields)
		if err != nil {
			return dst, err
		}
		dst = append(dst, `,"fields":`...)
		dst = append(dst, b...)
	}
	if r.Deleted {
		dst = append(dst, `,"deleted":true`...)
	}
	if r.Removed {
		dst = append(dst, `,"removed":true`...)
	}
	if r.MergedInto != "" {
		dst = append(dst, `,"merged_into":`...)
		dst = appendString(dst, r.MergedInto)
	}
	if r.UpdatedAt != "" {
		dst = append(dst, `,"updated_at":`...)
		dst = appendString(dst, r.UpdatedAt)
	}
	if r.UpdatedBy != "" {
		dst = append(dst, `,"updated_by":`...)
		dst = appendString(dst, r.UpdatedBy)
	}
	if len(r.Flags) > 0 {
		dst = append(dst, `,"flags":[`...)
		for i, f := range r.Flags {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, f)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}

// MarshalJSON writes AppendJSON's form, so that a Record encodes the same
// wherever it is encoded.
func (r Record) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil) }

// AppendPullResponse appends the JSON of a pull answer, one record at a
// time through AppendJSON.
func AppendPullResponse(dst []byte, p *PullResponse) ([]byte, error) {
	dst = append(dst, `{"records":[`...)
	var err error
	for i := range p.Records {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = p.Records[i].AppendJSON(dst); err != nil {
			return dst, err
		}
	}
	dst = append(dst, `],"cursor":`...)
	dst = appendString(dst, p.Cursor)
	dst = append(dst, `,"has_more":`...)
	dst = strconv.AppendBool(dst, p.HasMore)
	return append(dst, '}'), nil
}

// noFields reports whether stored fields are an object without members,
// null or nothing: encoding/json leaves such fields out, as it leaves out an
// empty or nil map.
func noFields(raw []byte) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null" || emptyObject(t)
}

// emptyObject reports whether raw is a JSON object without members.
func emptyObject(raw []byte) bool {
	t := bytes.TrimSpace(raw)
	return len(t) >= 2 && t[0] == '{' && t[len(t)-1] == '}' && len(bytes.TrimSpace(t[1:len(t)-1])) == 0
}

func marshalNoHTML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil // without Encode's newline
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does with
// HTML escaping off: control characters escaped, invalid UTF-8 replaced by
// U+FFFD, U+2028 and U+2029 escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// DecodeRawFields sets Fields from RawFields (a record a store returned
// with its fields as stored), for a reader that needs them one by one.
func (r *Record) DecodeRawFields() error {
	if r.RawFields == nil {
		return nil
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(r.RawFields, &f); err != nil {
		return fmt.Errorf("record %s fields: %w", r.ID, err)
	}
	r.Fields, r.RawFields = f, nil
	return nil
}
