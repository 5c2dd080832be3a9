package syncproto

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

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
//     (EMalformed, 400, with the path of the second occurrence). Keys
//     that differ only in letter case repeat each other too ("op" and
//     "OP", "device_seq" and "Device_Seq"): encoding/json matches them to
//     the same struct field, the last one winning. They are compared
//     folded as encoding/json folds them (foldedNames);
//   - an array holding more items than limit allows at its path (every
//     array DefaultMaxItems when limit is nil), refused at the first item
//     too many, so that a million-item list costs no more than its first
//     thousand (ETooLarge, 413, with the path of the array). The limit is
//     a bound on memory, not the schema's bounds, which are judged per
//     change.
//
// Keys are compared after JSON unescaping ("vill\u0061ge" repeats
// "village"), and invalid UTF-8 in them as encoding/json reads it (each
// bad byte is U+FFFD). A syntax error is left for the decoder that
// follows, which reports it with its own message: CheckJSON then returns
// nil.
//
// The tokenizer is jsontext (the encoding/json/v2 design, from
// github.com/go-json-experiment/json), whose Decoder refuses repeated
// names by itself and reads a token without allocating: a fraction of the
// cost of encoding/json's Decoder.Token.
func CheckJSON(body []byte, limit ItemLimit) error {
	dec := jsontext.NewDecoder(bytes.NewBuffer(body), jsontext.AllowInvalidUTF8(true))
	var limits []int   // the bound of every open array, innermost last
	var buf []PathElem // reused for the path given to limit
	var names foldedNames
	repeated := func(at jsontext.Pointer) error {
		return &Error{Code: EMalformed, Title: "Repeated key",
			Message: "a key appears twice in one object (letter case aside); send each key once",
			Errors:  []FieldError{{Path: JSONPath(appendPath(nil, dec, at)), Message: "repeats a key of the same object"}}}
	}
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			if errors.Is(err, jsontext.ErrDuplicateName) {
				var se *jsontext.SyntacticError
				if errors.As(err, &se) {
					return repeated(se.JSONPointer)
				}
			}
			return nil // io.EOF, or a syntax error the decoder after this reports
		}
		kind := tok.Kind()
		depth := dec.StackDepth()
		level := depth // the container of the value just read
		switch kind {
		case '}':
			names.close()
			continue
		case ']':
			limits = limits[:len(limits)-1]
			continue
		case '{', '[':
			level = depth - 1
		case '"':
			if k, n := dec.StackIndex(depth); k == '{' && n%2 == 1 && names.add(tok.String()) {
				return repeated(dec.StackPointer())
			}
		}
		if kind == '{' {
			names.open()
		}
		if level > 0 {
			if k, n := dec.StackIndex(level); k == '[' && n > int64(limits[len(limits)-1]) {
				max := limits[len(limits)-1]
				arr := JSONPath(appendPath(nil, dec, dec.StackPointer().Parent()))
				return &Error{Code: ETooLarge, Title: "List too long",
					Message: fmt.Sprintf("%s holds more than %d items", arr, max),
					Errors:  []FieldError{{Path: arr, Message: fmt.Sprintf("must hold at most %d items", max)}}}
			}
		}
		if kind == '[' {
			max := DefaultMaxItems
			if limit != nil {
				buf = appendPath(buf[:0], dec, dec.StackPointer())
				max = limit(buf)
			}
			limits = append(limits, max)
		}
	}
}

// appendPath appends to path the steps of a JSON Pointer that dec's open
// containers lead to: a token under an array is its index, under an
// object a key (a pointer alone cannot tell the key "0" from the index 0).
func appendPath(path []PathElem, dec *jsontext.Decoder, p jsontext.Pointer) []PathElem {
	level := 1
	for tok := range p.Tokens() {
		e := PathElem{Key: tok, Index: -1}
		if k, _ := dec.StackIndex(level); k == '[' {
			e.Key = ""
			e.Index, _ = strconv.Atoi(tok)
		}
		path = append(path, e)
		level++
	}
	return path
}

// SetItemsCap is how many times its schema bound a set field's list may
// hold in a push before the streaming check refuses the whole change set
// (at least DefaultMaxItems): the bound itself is judged per change, which
// quarantines a change over it while the rest of its change set applies,
// so that one bad change never strands a tablet's outbox.
const SetItemsCap = 10

// ChangesetItemLimit is the ItemLimit of a push body, a bound on memory
// rather than on the schema: changes holds at most maxChanges
// (DefaultMaxChanges when 0); a set field of a change at most
// SetItemsCap times the schema's bound (schema.Field.SetBound, the largest
// where several entities have a field of that name), and never fewer than
// DefaultMaxItems; every other array DefaultMaxItems.
func ChangesetItemLimit(sch *schema.Schema, maxChanges int) ItemLimit {
	if maxChanges <= 0 {
		maxChanges = DefaultMaxChanges
	}
	sets := map[string]int{}
	for _, e := range sch.Entities() {
		for _, fd := range sch.Form(e).Fields {
			if fd.Type == schema.TypeSet {
				sets[fd.Name] = max(sets[fd.Name], SetItemsCap*fd.SetBound(), DefaultMaxItems)
			}
		}
	}
	return func(p []PathElem) int {
		switch {
		case len(p) == 1 && strings.EqualFold(p[0].Key, "changes"):
			return maxChanges
		case len(p) == 4 && strings.EqualFold(p[0].Key, "changes") && strings.EqualFold(p[2].Key, "fields"):
			if n, ok := sets[p[3].Key]; ok {
				return n
			}
		}
		return DefaultMaxItems
	}
}
