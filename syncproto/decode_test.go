package syncproto

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

const validBody = `{"changeset_id":"0193a000-0000-7000-8000-000000000301","device_id":"0193a000-0000-7000-8000-00000000000a",
 "device_seq":17,"schema_version":1,"changes":[{"entity":"housing_inspection","id":"0193a000-0000-7000-8000-000000000201",
 "op":"upsert","base_version":0,"at":"2026-11-20T08:15:30.123Z",
 "fields":{"household_id":"0193a000-0000-7000-8000-000000000101","grade":"C","inspected_on":"2026-11-20"}}]}`

func TestDecodeChangesetValid(t *testing.T) {
	cs, err := DecodeChangeset([]byte(validBody), schema.V1(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if cs.DeviceSeq != 17 || len(cs.Changes) != 1 || string(cs.Changes[0].Fields["grade"]) != `"C"` {
		t.Fatalf("decoded %+v", cs)
	}
}

func TestDecodeChangesetErrors(t *testing.T) {
	with := func(from, to string) string { return strings.Replace(validBody, from, to, 1) }
	cases := []struct {
		name, body string
		code       Code
		path       string
	}{
		{"not json", `{"changeset_id":`, EMalformed, "$"},
		{"trailing data", validBody + `{}`, EMalformed, "$"},
		{"wrong type seq", with(`"device_seq":17`, `"device_seq":"17"`), EMalformed, "device_seq"},
		{"wrong type base", with(`"base_version":0`, `"base_version":"0"`), EMalformed, "changes[0].base_version"},
		{"huge number", with(`"device_seq":17`, `"device_seq":1e400`), EMalformed, "device_seq"},
		{"unknown key", with(`"schema_version":1`, `"schema_version":1,"extra":true`), EMalformed, "extra"},
		{"unknown change key", with(`"op":"upsert"`, `"op":"upsert","opp":1`), EMalformed, "changes[0].opp"},
		{"invalid utf8", with(`"grade":"C"`, "\"grade\":\"\xff\""), EMalformed, ""},
		{"bad changeset id", with(`"changeset_id":"0193a000-0000-7000-8000-000000000301"`, `"changeset_id":"x"`), EInvalid, "changeset_id"},
		{"missing device", with(`"device_id":"0193a000-0000-7000-8000-00000000000a",`, ``), EInvalid, "device_id"},
		{"zero seq", with(`"device_seq":17`, `"device_seq":0`), EInvalid, "device_seq"},
		{"schema version", with(`"schema_version":1`, `"schema_version":2`), EInvalid, "schema_version"},
		{"unknown entity", with(`"entity":"housing_inspection"`, `"entity":"school"`), EInvalid, "changes[0].entity"},
		{"bad op", with(`"op":"upsert"`, `"op":"merge"`), EInvalid, "changes[0].op"},
		{"bad at", with(`"at":"2026-11-20T08:15:30.123Z"`, `"at":"yesterday"`), EInvalid, "changes[0].at"},
		{"negative base", with(`"base_version":0`, `"base_version":-1`), EInvalid, "changes[0].base_version"},
		{"path traversal id", with(`"id":"0193a000-0000-7000-8000-000000000201"`, `"id":"../../etc/passwd"`), EInvalid, "changes[0].id"},
		{"no changes", `{"changeset_id":"0193a000-0000-7000-8000-000000000301","device_id":"0193a000-0000-7000-8000-00000000000a","device_seq":1,"schema_version":1}`, EInvalid, "changes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeChangeset([]byte(c.body), schema.V1(), 100)
			e, ok := err.(*Error)
			if !ok || e.Code != c.code {
				t.Fatalf("error %v, want code %s", err, c.code)
			}
			if c.path == "" {
				return
			}
			for _, fe := range e.Errors {
				if fe.Path == c.path {
					return
				}
			}
			t.Fatalf("errors %+v, want path %s", e.Errors, c.path)
		})
	}
}

func TestDecodeChangesetDuplicateIDsAndLimit(t *testing.T) {
	var cs Changeset
	_ = json.Unmarshal([]byte(validBody), &cs)
	cs.Changes = append(cs.Changes, cs.Changes[0])
	b, _ := json.Marshal(cs)
	_, err := DecodeChangeset(b, schema.V1(), 100)
	if e, ok := err.(*Error); !ok || e.Code != EInvalid || e.Errors[0].Path != "changes[1].id" {
		t.Fatalf("duplicate ids: %v", err)
	}
	_, err = DecodeChangeset(b, schema.V1(), 1)
	if ErrorCode(err) != ETooLarge {
		t.Fatalf("over the change limit: %v", err)
	}
}

func TestCursorRoundTripAndForgery(t *testing.T) {
	for _, c := range []Cursor{{}, {Seq: 1}, {Seq: 499, Scope: "*"}, {Seq: 1 << 40, Scope: "150422,500240"},
		{Seq: 7, Scope: "500240107", Transition: 12}} {
		got, err := testCursors.Parse(testCursors.Encode(c))
		if err != nil || got != c {
			t.Fatalf("round trip %+v: %+v, %v", c, got, err)
		}
	}
	// Well-formed payloads signed with the right key, but malformed.
	signed := func(s string) string {
		p := base64.RawURLEncoding.EncodeToString([]byte(s))
		return p + "." + testCursors.mac(p)
	}
	other := NewCursorCodec([]byte("another server"))
	valid := testCursors.Encode(Cursor{Seq: 5, Scope: "500240"})
	for _, bad := range []string{"x", "fs1.5", valid + "=", valid[:len(valid)-1], other.Encode(Cursor{Seq: 5, Scope: "*"}),
		base64.RawURLEncoding.EncodeToString([]byte("fs1.5.*")) + "." + strings.Split(valid, ".")[1],
		signed("fs1.-1"), signed("fs1.01"), signed("fs1.5.50a"), signed("fs1.5.*.0"), signed("fs1.5.*.1.2"),
		signed("fs1.5.1234567890123"), strings.Repeat("A", 5000)} {
		if _, err := testCursors.Parse(bad); ErrorCode(err) != EInvalid {
			t.Errorf("Parse(%q) = %v, want invalid", bad, err)
		}
	}
}

func FuzzDecodeChangeset(f *testing.F) {
	f.Add([]byte(validBody))
	f.Add([]byte(`{"changes":[{"fields":{"grade":[[[[1]]]]}}]}`))
	f.Add([]byte(`{"device_seq":1e999}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cs, err := DecodeChangeset(body, schema.V1(), 50)
		if err != nil {
			if ErrorCode(err) == EInternal {
				t.Fatalf("internal error for client input: %v", err)
			}
			return
		}
		if len(cs.Changes) == 0 || cs.DeviceSeq < 1 {
			t.Fatalf("accepted an invalid change set: %+v", cs)
		}
		for _, ch := range cs.Changes {
			if schema.V1().Form(ch.Entity) == nil {
				t.Fatalf("accepted unknown entity %q", ch.Entity)
			}
		}
	})
}

func FuzzParseCursor(f *testing.F) {
	f.Add(testCursors.Encode(Cursor{Seq: 42}))
	f.Add(testCursors.Encode(Cursor{Seq: 42, Scope: "500240,150422", Transition: 3}))
	f.Add("")
	f.Add("ZnMxLjk5OTk5OTk5OTk5OTk5OTk5OTk5")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := testCursors.Parse(s)
		if err != nil {
			return
		}
		if c.Seq < 0 || c.Transition < 0 || (s != "" && testCursors.Encode(c) != s) {
			t.Fatalf("ParseCursor(%q) = %+v, not canonical", s, c)
		}
	})
}

// FuzzMerge checks the merge invariants on arbitrary grades, sets and
// times: no panic, and every incoming value ends up kept, merged into a
// union, or in a recorded decision.
func FuzzMerge(f *testing.F) {
	f.Add(int64(1), int64(2), "C", "D", "roof", "walls", int64(0), true)
	f.Fuzz(func(t *testing.T, base, version int64, storedGrade, inGrade, storedHazard, inHazard string, skew int64, sameDevice bool) {
		if version < 1 || version > 1000 || base < 0 {
			return
		}
		norm := func(name, v string) (json.RawMessage, bool) {
			b, _ := json.Marshal(v)
			if name == "hazards" {
				b, _ = json.Marshal([]string{v})
			}
			n, err := housing.Field(name).Normalize(b)
			return n, err == nil
		}
		sg, ok1 := norm("grade", storedGrade)
		ig, ok2 := norm("grade", inGrade)
		sh, ok3 := norm("hazards", storedHazard)
		ih, ok4 := norm("hazards", inHazard)
		if !(ok1 && ok2 && ok3 && ok4) {
			return
		}
		st := storedBy(version, devA, t0, map[string]string{"grade": string(sg), "hazards": string(sh)})
		dev := devB
		if sameDevice {
			dev = devA
		}
		at := t0.Add(time.Duration(skew%1e6) * time.Second)
		out := Merge(housing, st, Incoming{Op: OpUpsert, BaseVersion: base, At: at, Device: dev,
			Fields: map[string]json.RawMessage{"grade": ig, "hazards": ih}})
		if base > version {
			if out.Status != StatusRejected {
				t.Fatalf("base ahead not rejected: %+v", out)
			}
			return
		}
		decided := map[string]bool{}
		for _, d := range out.Decisions {
			decided[d.Field] = true
		}
		for name, v := range map[string]json.RawMessage{"grade": ig, "hazards": ih} {
			got := string(out.Fields[name])
			switch {
			case got == string(v), decided[name]:
			case name == "hazards" && strings.Contains(got, strings.Trim(string(v), "[]")):
			default:
				t.Fatalf("incoming %s=%s lost: now %s, decisions %+v", name, v, got, out.Decisions)
			}
		}
		if fmt.Sprint(len(out.Changes) > 0) != fmt.Sprint(out.Version == version+1) {
			t.Fatalf("version %d with %d changes", out.Version, len(out.Changes))
		}
	})
}
