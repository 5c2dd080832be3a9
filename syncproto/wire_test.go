package syncproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// plainRecord is Record without its MarshalJSON: what encoding/json writes
// by reflection, the reference AppendJSON must match byte for byte.
type plainRecord Record

func reflectEncode(t *rapid.T, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// anyString draws strings with what JSON must escape: quotes, backslashes,
// control characters, invalid UTF-8, U+2028/9, HTML characters.
func anyString() *rapid.Generator[string] {
	return rapid.OneOf(
		rapid.String(),
		rapid.StringOf(rapid.SampledFrom([]rune{'a', '"', '\\', '\n', '\t', '\x00', '\x1f', '<', '>', '&', '\u2028', '\u2029', 'é', '\u00ff'})),
		rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) }),
	)
}

func anyFields(t *rapid.T) map[string]json.RawMessage {
	fields := map[string]json.RawMessage{}
	for i, n := 0, rapid.IntRange(0, 6).Draw(t, "nfields"); i < n; i++ {
		var v any
		switch rapid.IntRange(0, 3).Draw(t, "kind") {
		case 0:
			v = anyString().Draw(t, "s")
		case 1:
			v = rapid.Float64().Draw(t, "f")
		case 2:
			v = []string{anyString().Draw(t, "a"), "roof"}
		default:
			v = map[string]float64{"lat": rapid.Float64Range(-90, 90).Draw(t, "lat"), "lon": 12.5}
		}
		b, err := json.Marshal(v) // as the server stores values
		if err != nil {
			t.Fatal(err)
		}
		fields[fmt.Sprintf("f%d_%s", i, rapid.StringMatching(`[a-z_]{0,6}`).Draw(t, "key"))] = b
	}
	return fields
}

// TestRecordAppendJSONMatchesEncodingJSON: the hand-written encoder writes
// exactly what encoding/json writes, for any record, and the stored fields
// text passed through (RawFields) gives the same bytes as the decoded map.
func TestRecordAppendJSONMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := plainRecord{
			Entity: anyString().Draw(t, "entity"), ID: anyString().Draw(t, "id"),
			Version: rapid.Int64().Draw(t, "version"), Fields: anyFields(t),
			Deleted: rapid.Bool().Draw(t, "deleted"), Removed: rapid.Bool().Draw(t, "removed"),
			MergedInto: anyString().Draw(t, "merged"), UpdatedAt: anyString().Draw(t, "at"), UpdatedBy: anyString().Draw(t, "by"),
		}
		want := reflectEncode(t, p)
		r := Record(p)
		got, err := r.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
		}
		if viaMarshal := reflectEncode(t, r); !bytes.Equal(viaMarshal, want) {
			t.Fatalf("encoding/json through MarshalJSON:\n got %s\nwant %s", viaMarshal, want)
		}
		stored, err := json.Marshal(p.Fields) // the records.fields column
		if err != nil {
			t.Fatal(err)
		}
		raw := r
		raw.Fields, raw.RawFields = nil, stored
		if got, _ := raw.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON of the stored text:\n got %s\nwant %s", got, want)
		}
	})
}

// TestAppendPullResponseMatchesEncodingJSON: a whole pull answer, as
// encoding/json writes it, and it decodes back to the same records.
func TestAppendPullResponseMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		type plainPull struct {
			Records []plainRecord `json:"records"`
			Cursor  string        `json:"cursor"`
			HasMore bool          `json:"has_more"`
		}
		var plain plainPull
		resp := PullResponse{Cursor: anyString().Draw(t, "cursor"), HasMore: rapid.Bool().Draw(t, "more"), Records: []Record{}}
		plain.Cursor, plain.HasMore, plain.Records = resp.Cursor, resp.HasMore, []plainRecord{}
		for i, n := 0, rapid.IntRange(0, 4).Draw(t, "n"); i < n; i++ {
			p := plainRecord{Entity: "household", ID: anyString().Draw(t, "id"), Version: 1, Fields: anyFields(t)}
			plain.Records = append(plain.Records, p)
			resp.Records = append(resp.Records, Record(p))
		}
		got, err := AppendPullResponse(nil, &resp)
		if err != nil {
			t.Fatal(err)
		}
		if want := reflectEncode(t, plain); !bytes.Equal(got, want) {
			t.Fatalf("pull answer:\n got %s\nwant %s", got, want)
		}
		var back PullResponse
		if err := json.Unmarshal(got, &back); err != nil || len(back.Records) != len(resp.Records) {
			t.Fatalf("decoding it back: %v (%d records)", err, len(back.Records))
		}
	})
}

// Stored fields with no members, null or nothing are left out, as
// encoding/json leaves out an empty map; blank space around an object is
// kept as it is (valid JSON).
func TestRecordAppendJSONRawFieldsEdgeCases(t *testing.T) {
	for raw, want := range map[string]string{
		`{}`: `{"entity":"household","id":"x"}`, ` { } `: `{"entity":"household","id":"x"}`,
		`null`: `{"entity":"household","id":"x"}`, ``: `{"entity":"household","id":"x"}`,
		` {"a":1} `: `{"entity":"household","id":"x","fields": {"a":1} }`,
	} {
		r := Record{Entity: "household", ID: "x", RawFields: []byte(raw)}
		got, err := r.AppendJSON(nil)
		if err != nil || string(got) != want {
			t.Errorf("RawFields %q: %s, %v; want %s", raw, got, err, want)
		}
		if !json.Valid(got) {
			t.Errorf("RawFields %q: invalid JSON %s", raw, got)
		}
	}
	empty := Record{Entity: "household", ID: "x", Fields: map[string]json.RawMessage{}}
	if got, _ := empty.AppendJSON(nil); string(got) != `{"entity":"household","id":"x"}` {
		t.Errorf("an empty fields map: %s", got)
	}
}

func TestEmptyObject(t *testing.T) {
	for raw, want := range map[string]bool{`{}`: true, ` { } `: true, `{"a":1}`: false, `[]`: false, `{`: false, ``: false} {
		if got := emptyObject([]byte(raw)); got != want {
			t.Errorf("emptyObject(%q) = %v, want %v", raw, got, want)
		}
	}
}

// benchRecords are 1,000 stored households as pull and NDJSON snapshots
// read them: the fields text as the server stores it.
func benchRecords(b *testing.B) []Record {
	recs := make([]Record, 1000)
	for i := range recs {
		fields := map[string]any{"village": "500240108203", "head_name": fmt.Sprintf("Wang %d", i),
			"registration_no": fmt.Sprintf("R-%06d", i), "members": 4, "location": map[string]float64{"lat": 31.2, "lon": 121.4},
			"address": "Group 3, No. 12", "phone": "13800000000", "notes": "dog in the yard <careful>"}
		stored, err := json.Marshal(fields)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = Record{Entity: "household", ID: fmt.Sprintf("0193a000-0000-7000-8000-%012d", i), Version: 3,
			RawFields: stored, UpdatedAt: "2026-11-20T08:15:30.123Z", UpdatedBy: "li.na"}
	}
	return recs
}

// BenchmarkRecordEncode compares the two ways a pulled or snapshotted
// record is written: decode the stored fields and encode the record with
// encoding/json (before), or AppendJSON with the stored text (now).
func BenchmarkRecordEncode(b *testing.B) {
	recs := benchRecords(b)
	b.Run("decode+encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for i := 0; i < b.N; i++ {
			buf.Reset()
			for _, r := range recs {
				p := plainRecord{Entity: r.Entity, ID: r.ID, Version: r.Version, UpdatedAt: r.UpdatedAt, UpdatedBy: r.UpdatedBy}
				if err := json.Unmarshal(r.RawFields, &p.Fields); err != nil {
					b.Fatal(err)
				}
				if err := enc.Encode(p); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for i := 0; i < b.N; i++ {
			buf = buf[:0]
			for j := range recs {
				var err error
				if buf, err = recs[j].AppendJSON(buf); err != nil {
					b.Fatal(err)
				}
				buf = append(buf, '\n')
			}
		}
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
	})
}
