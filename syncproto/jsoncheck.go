package syncproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
)

// DefaultMaxItems bounds an array of a request body where no tighter bound
// is declared: as many items as the largest list the protocol takes (the
// changes of a change set, the hashes of /v1/attachments/missing).
const DefaultMaxItems = 1000

// PathElem is one step of the path to a JSON value: an object key, or an
// array index when Key is "" and Index is 0 or more.
type PathElem struct {
	Key   string
	Index int
}

// JSONPath renders a path as the problem documents name values:
// changes[0].fields.village; "$" for the document itself.
func JSONPath(p []PathElem) string {
	if len(p) == 0 {
		return "$"
	}
	var b strings.Builder
	for i, e := range p {
		if e.Index >= 0 && e.Key == "" {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.Index))
			b.WriteByte(']')
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e.Key)
	}
	return b.String()
}

// ItemLimit returns the most items the array at path may hold.
type ItemLimit func(path []PathElem) int

// CheckJSON reads a JSON document as a stream of tokens, before anything
// decodes it, and refuses two things a decoder would let through:
//
//   - a key repeated in one object, at any depth: encoding/json keeps the
//     last value, another parser may keep the first, so the server and a
//     proxy or app in front of it would disagree about what was sent
//     (EMalformed, 400, with the path of the second occurrence);
//   - an array holding more items than limit allows at its path (every
//     array DefaultMaxItems when limit is nil), refused at the first item
//     too many, so that a million-item list costs no more than its first
//     thousand (ETooLarge, 413, with the path of the array).
//
// Keys are compared after JSON unescaping ("vill\u0061ge" repeats
// "village"). A syntax error is left for the decoder that follows, which
// reports it with its own message: CheckJSON then returns nil.
func CheckJSON(body []byte, limit ItemLimit) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers are skipped: no float conversion
	type frame struct {
		array bool
		items int
		max   int
		keys  map[string]struct{}
	}
	var stack []frame
	var path []PathElem
	expectKey := false // the next string token of an object is a key
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nil // the decoder after this reports the syntax error
		}
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			if top.array {
				if d, ok := tok.(json.Delim); !ok || d != ']' {
					// A new item of the array.
					path[len(path)-1].Index = top.items
					top.items++
					if top.items > top.max {
						arr := path[:len(path)-1]
						return &Error{Code: ETooLarge, Title: "List too long",
							Message: fmt.Sprintf("%s holds more than %d items", JSONPath(arr), top.max),
							Errors:  []FieldError{{Path: JSONPath(arr), Message: fmt.Sprintf("must hold at most %d items", top.max)}}}
					}
				}
			} else if expectKey {
				if key, ok := tok.(string); ok {
					path[len(path)-1].Key = key
					if _, dup := top.keys[key]; dup {
						return &Error{Code: EMalformed, Title: "Repeated key",
							Message: "a key appears twice in one object; send each key once",
							Errors:  []FieldError{{Path: JSONPath(path), Message: "repeats a key of the same object"}}}
					}
					top.keys[key] = struct{}{}
					expectKey = false
					continue
				}
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{keys: map[string]struct{}{}})
			path = append(path, PathElem{Index: -1})
			expectKey = true
			continue
		case json.Delim('['):
			max := DefaultMaxItems
			if limit != nil {
				max = limit(path)
			}
			stack = append(stack, frame{array: true, max: max})
			path = append(path, PathElem{Index: 0})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			path = path[:len(path)-1]
		}
		// A value ended (a scalar, or a closed object or array): an
		// object's next token is a key again.
		if n := len(stack); n > 0 && !stack[n-1].array {
			expectKey = true
		}
	}
}

// ChangesetItemLimit is the ItemLimit of a push body: changes holds at most
// maxChanges (DefaultMaxChanges when 0); a set field of a change at most as
// many items as the schema allows it (max_items, or for a set of enum
// values the enum's size, taking the largest where several entities have
// a field of that name); every other array DefaultMaxItems.
func ChangesetItemLimit(sch *schema.Schema, maxChanges int) ItemLimit {
	if maxChanges <= 0 {
		maxChanges = DefaultMaxChanges
	}
	sets := map[string]int{}
	for _, e := range sch.Entities() {
		for _, fd := range sch.Form(e).Fields {
			if fd.Type != schema.TypeSet {
				continue
			}
			n := fd.MaxItems
			if n == 0 && len(fd.Values) > 0 {
				n = len(fd.Values)
			}
			if n == 0 {
				n = DefaultMaxItems
			}
			sets[fd.Name] = max(sets[fd.Name], n)
		}
	}
	return func(p []PathElem) int {
		switch {
		case len(p) == 1 && p[0].Key == "changes":
			return maxChanges
		case len(p) == 4 && p[0].Key == "changes" && p[2].Key == "fields":
			if n, ok := sets[p[3].Key]; ok {
				return n
			}
		}
		return DefaultMaxItems
	}
}
