package syncproto

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// foldedNames holds the names of the open objects of a JSON document,
// innermost last, each folded as encoding/json folds a key before it
// matches it to a struct field (its fold.go: ASCII letters upper-cased,
// every other rune the smallest of its case-folding orbit), so that two
// keys encoding/json would read as the same field are found as one name.
//
// Keys made only of ASCII bytes other than the capital letters (every key
// of the protocol) fold one-to-one, so two of them are the same field only
// when they are the same key, which jsontext already refuses: an object
// whose keys are all of that kind compares none of them. Only once an
// object holds another key are its folded names compared, one by one while
// they are few, through a set once they are many, so that no object costs
// more than linear time.
type foldedNames struct {
	buf    []byte        // the folded names of every open object, one after another
	ends   []int         // the end in buf of each name
	frames []foldedFrame // the open objects, innermost last
}

type foldedFrame struct {
	ends    int                 // the index in ends of this object's first name
	compare bool                // a key outside the one-to-one kind was seen
	set     map[string]struct{} // this object's folded names, once there are many
}

// foldedLinear is how many names of one object are compared one by one
// before a set holds them.
const foldedLinear = 16

// open starts an object.
func (f *foldedNames) open() {
	f.frames = append(f.frames, foldedFrame{ends: len(f.ends)})
}

// close ends the innermost object and forgets its names.
func (f *foldedNames) close() {
	top := f.frames[len(f.frames)-1]
	f.frames = f.frames[:len(f.frames)-1]
	start := 0
	if top.ends > 0 {
		start = f.ends[top.ends-1]
	}
	f.ends, f.buf = f.ends[:top.ends], f.buf[:start]
}

// add records a key of the innermost object, given unescaped, and reports
// whether an earlier key of the object folds to the same name.
func (f *foldedNames) add(key string) bool {
	top := &f.frames[len(f.frames)-1]
	start := len(f.buf)
	oneToOne := true
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			switch {
			case 'a' <= c && c <= 'z':
				c -= 'a' - 'A'
			case 'A' <= c && c <= 'Z':
				oneToOne = false
			}
			f.buf = append(f.buf, c)
			i++
			continue
		}
		oneToOne = false
		r, n := utf8.DecodeRuneInString(key[i:])
		f.buf = utf8.AppendRune(f.buf, foldRune(r))
		i += n
	}
	name := f.buf[start:]
	first := top.ends // the index in ends of this object's first name
	f.ends = append(f.ends, len(f.buf))
	if !oneToOne {
		top.compare = true
	}
	if !top.compare {
		return false
	}
	if top.set != nil {
		if _, ok := top.set[string(name)]; ok {
			return true
		}
		top.set[string(name)] = struct{}{}
		return false
	}
	names := len(f.ends) - 1 - first // the names before this one
	if names < foldedLinear {
		prev := 0
		if first > 0 {
			prev = f.ends[first-1]
		}
		for _, end := range f.ends[first : len(f.ends)-1] {
			if bytes.Equal(f.buf[prev:end], name) {
				return true
			}
			prev = end
		}
		return false
	}
	top.set = make(map[string]struct{}, 2*names)
	prev := 0
	if first > 0 {
		prev = f.ends[first-1]
	}
	for _, end := range f.ends[first:] {
		top.set[string(f.buf[prev:end])] = struct{}{}
		prev = end
	}
	return len(top.set) <= names
}

// foldRune returns the smallest rune of r's case-folding orbit, as
// encoding/json's fold.go does.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
