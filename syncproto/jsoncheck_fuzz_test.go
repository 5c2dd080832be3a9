package syncproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzCheckJSON holds CheckJSON to a reference reading of the same body by
// encoding/json's own tokenizer (the decoder every handler uses after the
// check): on a valid JSON document CheckJSON refuses a repeated key exactly
// when the reference finds a key twice in one object, and refuses a list
// exactly when the reference finds one longer than DefaultMaxItems; it
// never panics on anything.
func FuzzCheckJSON(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `[{"a":1},{"a":1}]`,
		`{"vill\u0061ge":"x","village":"y"}`, `{"a":[1,2,3],"b":{"a":1}}`,
		"{\"a\xff\":1,\"a\xfe\":2}", `{"0":[{"0":1}],"1":[]}`, `{"a":1,"b":2`, `"x"`, `null`,
		`{"changeset_id":"c","changes":[{"fields":{"hazards":["roof","roof"]}}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := CheckJSON(body, nil)
		if !json.Valid(body) {
			return // a syntax error: only "no panic" is promised
		}
		dup, long := referenceCheck(body)
		var se *Error
		switch {
		case err == nil:
			if dup || long {
				t.Fatalf("CheckJSON let %q through: reference found repeated key %v, long list %v", body, dup, long)
			}
		case errors.As(err, &se) && se.Code == EMalformed:
			if !dup {
				t.Fatalf("CheckJSON refused %q as a repeated key (%v); the reference found none", body, err)
			}
		case errors.As(err, &se) && se.Code == ETooLarge:
			if !long {
				t.Fatalf("CheckJSON refused %q as too long (%v); the reference found no list over %d", body, err, DefaultMaxItems)
			}
		default:
			t.Fatalf("CheckJSON(%q): unexpected error %v", body, err)
		}
	})
}

// referenceCheck walks a valid JSON document with encoding/json's
// Decoder.Token and reports whether some object repeats a key (compared as
// encoding/json decodes keys) and whether some array holds more than
// DefaultMaxItems items.
func referenceCheck(body []byte) (dup, long bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		keys   map[string]bool
		items  int
		key    bool // in an object: the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return dup, long
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].key = true
			}
			continue
		}
		if top != nil && top.object && top.key {
			k := tok.(string)
			if top.keys[k] {
				dup = true
			}
			top.keys[k] = true
			top.key = false
			continue
		}
		if top != nil && !top.object {
			top.items++
			if top.items > DefaultMaxItems {
				long = true
			}
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, &frame{object: d == '{', keys: map[string]bool{}, key: d == '{'})
			continue
		}
		if top != nil && top.object {
			top.key = true
		}
	}
}
