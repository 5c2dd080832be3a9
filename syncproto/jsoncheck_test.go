package syncproto

import (
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
)

// TestCheckJSONRefusesRepeatedKeys: a key repeated in one object, at any
// depth and however it is escaped, is a 400 naming the second occurrence;
// the same key in two different objects, or a body without repeats, passes.
func TestCheckJSONRefusesRepeatedKeys(t *testing.T) {
	cases := []struct{ name, body, path string }{
		{"top level", `{"a":1,"a":2}`, "a"},
		{"nested object", `{"a":{"b":1,"c":{"d":1,"d":[1]}}}`, "a.c.d"},
		{"in an array", `{"changes":[{"id":1},{"id":1,"id":2}]}`, "changes[1].id"},
		{"after a nested value", `{"x":{"y":[1,{"z":1}]},"w":1,"x":3}`, "x"},
		{"escaped", `{"village":"A","vill\u0061ge":"B"}`, "village"},
		{"root array", `[{"k":1},{"k":1,"k":1}]`, "[1].k"},
		{"push field", `{"changes":[{"fields":{"village":"500240107201","village":"500240107202"}}]}`, "changes[0].fields.village"},
		{"a key of digits", `{"x":[{"0":[1]},{"0":1,"0":2}]}`, "x[1].0"},
		{"invalid UTF-8 read as encoding/json does", "{\"a\xff\":1,\"a\xfe\":2}", "a\uFFFD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckJSON([]byte(c.body), nil)
			if !errorAt(err, EMalformed, c.path) {
				t.Fatalf("CheckJSON(%s) = %v, want EMalformed at %s", c.body, err, c.path)
			}
		})
	}
	for _, ok := range []string{`{"a":{"b":1},"b":{"a":1}}`, `[{"a":1},{"a":1}]`, `{"a":[{"a":1}],"b":"a"}`, `{}`, `[]`, `"a"`,
		`{"a":1,` /* a syntax error is left to the decoder */} {
		if err := CheckJSON([]byte(ok), nil); err != nil {
			t.Errorf("CheckJSON(%s) = %v, want nil", ok, err)
		}
	}
}

// TestCheckJSONCapsLists: a list longer than its bound is a 413 naming
// the list; ChangesetItemLimit bounds changes by the limit and a set field
// of a change by a hard cap (SetItemsCap times its schema bound, at least
// DefaultMaxItems), never by the schema's bound itself: 6 hazards or 101
// photos pass, to be quarantined by validation. Any other list is bounded
// by DefaultMaxItems.
func TestCheckJSONCapsLists(t *testing.T) {
	limit := ChangesetItemLimit(schema.V1(), 3)
	list := func(n int, item string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + "]"
	}
	change := func(field, value string) string {
		return `{"changes":[{"entity":"housing_inspection","fields":{"` + field + `":` + value + `}}]}`
	}
	photo := `"` + strings.Repeat("a", 64) + `"`
	cases := []struct {
		name, body string
		path       string // "" when the body passes
	}{
		{"changes at the limit", `{"changes":` + list(3, `{}`) + `}`, ""},
		{"changes over the limit", `{"changes":` + list(4, `{}`) + `}`, "changes"},
		{"hazards over the enum's size", change("hazards", list(6, `"roof"`)), ""},
		{"hazards at the hard cap", change("hazards", list(DefaultMaxItems, `"roof"`)), ""},
		{"hazards over the hard cap", change("hazards", list(DefaultMaxItems+1, `"roof"`)), "changes[0].fields.hazards"},
		{"a million hazards", change("hazards", list(1_000_000, `"roof"`)), "changes[0].fields.hazards"},
		{"photos over max_items", change("photos", list(101, photo)), ""},
		{"photos at the hard cap", change("photos", list(SetItemsCap*100, photo)), ""},
		{"photos over the hard cap", change("photos", list(SetItemsCap*100+1, photo)), "changes[0].fields.photos"},
		{"a list where none belongs", change("head_name", list(DefaultMaxItems+1, `1`)), "changes[0].fields.head_name"},
		{"nested lists", `{"x":[[` + list(DefaultMaxItems+1, `0`)[1:] + `]}`, "x[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckJSON([]byte(c.body), limit)
			if c.path == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errorAt(err, ETooLarge, c.path) {
				t.Fatalf("CheckJSON = %v, want ETooLarge at %s", err, c.path)
			}
		})
	}
}

// TestDecodeChangesetStopsAtTheHardCap: a set over the hard cap is refused
// (413) at its first item too many, without decoding the rest of the body:
// the body below is cut off after the list, which a full decode would have
// reported as malformed (400).
func TestDecodeChangesetStopsAtTheHardCap(t *testing.T) {
	hazards := `[` + strings.TrimSuffix(strings.Repeat(`"roof",`, 2*DefaultMaxItems), ",") + `]`
	body := strings.Replace(validBody, `"grade":"C"`, `"grade":"C","hazards":`+hazards, 1)
	if body == validBody {
		t.Fatal("validBody has no grade to add hazards to")
	}
	body = body[:len(body)-3] // and cut: no decoder would take it
	_, err := DecodeChangeset([]byte(body), schema.V1(), 100)
	if !errorAt(err, ETooLarge, "changes[0].fields.hazards") {
		t.Fatalf("DecodeChangeset = %v, want ETooLarge at changes[0].fields.hazards", err)
	}
}

// TestDecodeChangesetRefusesRepeatedKeys: DecodeChangeset applies the
// check to a push body, at the envelope, a change and its fields.
func TestDecodeChangesetRefusesRepeatedKeys(t *testing.T) {
	for _, c := range []struct{ from, to, path string }{
		{`"device_seq":17`, `"device_seq":17,"device_seq":18`, "device_seq"},
		{`"op":"upsert"`, `"op":"upsert","op":"delete"`, "changes[0].op"},
		{`"grade":"C"`, `"grade":"C","grade":"D"`, "changes[0].fields.grade"},
	} {
		_, err := DecodeChangeset([]byte(strings.Replace(validBody, c.from, c.to, 1)), schema.V1(), 100)
		if !errorAt(err, EMalformed, c.path) {
			t.Errorf("%s: %v, want EMalformed at %s", c.to, err, c.path)
		}
	}
}

// errorAt reports whether err is an *Error of code with exactly one field
// error, at path.
func errorAt(err error, code Code, path string) bool {
	e, ok := err.(*Error)
	return ok && e.Code == code && len(e.Errors) == 1 && e.Errors[0].Path == path
}

// TestChangesetLimitsMatchKeysAsTheDecoderDoes: encoding/json decodes
// "Changes" into the changes of a change set, so the bound on changes
// holds for that spelling too.
func TestChangesetLimitsMatchKeysAsTheDecoderDoes(t *testing.T) {
	limit := ChangesetItemLimit(schema.V1(), 2)
	err := CheckJSON([]byte(`{"Changes":[{},{},{}]}`), limit)
	if !errorAt(err, ETooLarge, "Changes") {
		t.Fatalf("three Changes with a limit of 2: %v", err)
	}
}
