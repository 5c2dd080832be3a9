package schema

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// MaskIdentity masks an identity number for a reader without the right to
// see it: the first four and the last four characters stay (the province
// and prefecture, and the sequence and check digit), every other one
// becomes "*" — "5002**********1234". A value of eight characters or fewer
// is masked whole.
func MaskIdentity(s string) string {
	n := utf8.RuneCountInString(s)
	if n <= 8 {
		return strings.Repeat("*", n)
	}
	r := []rune(s)
	return string(r[:4]) + strings.Repeat("*", n-8) + string(r[n-4:])
}

// IdentityFields lists the form's fields that hold identity numbers
// ("personal": "identity"), in form order.
func (f *Form) IdentityFields() []string {
	var out []string
	for _, fd := range f.Fields {
		if fd.Personal == PersonalIdentity {
			out = append(out, fd.Name)
		}
	}
	return out
}

// PersonalFields lists the form's fields that hold personal data of any
// kind, in form order.
func (f *Form) PersonalFields() []string {
	var out []string
	for _, fd := range f.Fields {
		if fd.IsPersonal() {
			out = append(out, fd.Name)
		}
	}
	return out
}

// MaskIdentityValue returns the JSON text value v masked (MaskIdentity),
// or v itself when it is no JSON string (null).
func MaskIdentityValue(v json.RawMessage) json.RawMessage {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return v
	}
	b, _ := json.Marshal(MaskIdentity(s))
	return b
}

// MaskIdentities returns fields with every identity number of entity's
// form masked: a copy when there is one to mask, fields itself otherwise
// (an entity the schema lacks, a form without identity fields, a record
// that holds none).
func (s *Schema) MaskIdentities(entity string, fields map[string]json.RawMessage) map[string]json.RawMessage {
	f := s.Form(entity)
	if f == nil {
		return fields
	}
	var out map[string]json.RawMessage
	for _, name := range f.IdentityFields() {
		v, ok := fields[name]
		if !ok {
			continue
		}
		if out == nil {
			out = make(map[string]json.RawMessage, len(fields))
			for k, x := range fields {
				out[k] = x
			}
		}
		out[name] = MaskIdentityValue(v)
	}
	if out == nil {
		return fields
	}
	return out
}
