package syncproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode"
)

// FuzzCheckJSON holds CheckJSON to a reference reading of the same body by
// encoding/json's own tokenizer (the decoder every handler uses after the
// check): on a valid JSON document CheckJSON refuses a repeated key exactly
// when the reference finds two keys of one object that encoding/json would
// match to the same struct field (equal under strings.EqualFold, as
// encoding/json's fold.go folds them), and refuses a list
// exactly when the reference finds one longer than DefaultMaxItems; it
// never panics on anything.
func FuzzCheckJSON(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `[{"a":1},{"a":1}]`,
		`{"vill\u0061ge":"x","village":"y"}`, `{"a":[1,2,3],"b":{"a":1}}`,
		"{\"a\xff\":1,\"a\xfe\":2}", `{"0":[{"0":1}],"1":[]}`, `{"a":1,"b":2`, `"x"`, `null`,
		`{"changeset_id":"c","changes":[{"fields":{"hazards":["roof","roof"]}}]}`,
		`{"op":"upsert","OP":"delete"}`, `{"Device_Seq":1,"device_seq":2}`, `{"kind":1,"\u212aind":2}`,
		`{"s":1,"\u017f":2}`, `{"A":{"a":1},"b":{"B":1}}`, `{"ä":1,"Ä":2}`, `{"ß":1,"ss":2}`,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"R":18,"r":19}`,
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
// encoding/json decodes keys and then matches them to struct fields:
// strings.EqualFold) and whether some array holds more than
// DefaultMaxItems items.
func referenceCheck(body []byte) (dup, long bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		keys   map[string]string // by the key folded, the key
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
			if prev, ok := top.keys[orbitKey(k)]; ok {
				if !strings.EqualFold(prev, k) {
					panic("orbitKey disagrees with strings.EqualFold on " + prev + " and " + k)
				}
				dup = true
			}
			top.keys[orbitKey(k)] = k
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
			stack = append(stack, &frame{object: d == '{', keys: map[string]string{}, key: d == '{'})
			continue
		}
		if top != nil && top.object {
			top.key = true
		}
	}
}

// orbitKey maps each rune of k to the least rune of its simple case
// folding orbit (unicode.SimpleFold), so that two keys have the same
// orbitKey exactly when strings.EqualFold holds: a map lookup, where
// comparing every pair of keys would make an object of many keys cost the
// square of their number.
func orbitKey(k string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, k)
}
