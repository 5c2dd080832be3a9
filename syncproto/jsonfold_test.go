package syncproto

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
)

// TestCheckJSONRefusesKeysEqualButForCase: keys that encoding/json would
// match to one struct field (equal under its case folding, the last one
// winning) repeat each other, at any depth and in objects of any size; the
// path names the second. Keys that fold apart, or equal keys in different
// objects, pass.
func TestCheckJSONRefusesKeysEqualButForCase(t *testing.T) {
	many := func(extra ...string) string {
		var keys []string
		for i := range 40 {
			keys = append(keys, fmt.Sprintf(`"k%d":%d`, i, i))
		}
		return "{" + strings.Join(append(keys, extra...), ",") + "}"
	}
	cases := []struct{ name, body, path string }{
		{"op", `{"op":"upsert","OP":"delete"}`, "OP"},
		{"device_seq in a change", `{"changes":[{"id":"x"},{"Device_Seq":999,"device_seq":1}]}`, "changes[1].device_seq"},
		{"escaped", `{"grade":"C","\u0047rade":"A"}`, "Grade"},
		{"Kelvin sign", `{"kind":1,"\u212aind":2}`, "\u212aind"},
		{"long s", `{"s":1,"\u017f":2}`, "\u017f"},
		{"nested", `{"a":{"B":1},"b":{"b":1,"B":2}}`, "b.B"},
		{"in a large object", many(`"K7":1`), "K7"},
		{"in a large object, upper first", many(`"Q":1`, `"x":1`, `"q":2`), "q"},
		{"non-ASCII", `{"户主":1,"Ä":1,"ä":2}`, "ä"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckJSON([]byte(c.body), nil)
			if !errorAt(err, EMalformed, c.path) {
				t.Fatalf("CheckJSON(%s) = %v, want EMalformed at %s", c.body, err, c.path)
			}
		})
	}
	for _, ok := range []string{`{"A":{"a":1},"b":{"B":1}}`, `{"Ab":1,"aB2":1}`, many(`"K":1`, `"Q":1`, `"x_":1`),
		`{"a":[{"A":1}],"B":"a"}`, `{"ä":1,"ß":2,"ss":3}`, `{"x":{"Y":1},"X2":{"y":1}}`} {
		if err := CheckJSON([]byte(ok), nil); err != nil {
			t.Errorf("CheckJSON(%s) = %v, want nil", ok, err)
		}
	}
}

// TestDecodeChangesetRefusesACaseVariantOp: the reviewer's body, an
// upsert that encoding/json alone would decode as a delete, is a 400
// naming changes[0].OP.
func TestDecodeChangesetRefusesACaseVariantOp(t *testing.T) {
	body := `{"changeset_id":"` + csID1 + `","device_id":"` + devA + `","device_seq":1,"schema_version":1,"changes":[` +
		`{"entity":"household","id":"` + hhID + `","op":"upsert","OP":"delete","base_version":0,"at":"2026-11-20T08:00:00Z","fields":{}}]}`
	_, err := DecodeChangeset([]byte(body), schema.V1(), 1000)
	if !errorAt(err, EMalformed, "changes[0].OP") {
		t.Fatalf("DecodeChangeset = %v, want EMalformed at changes[0].OP", err)
	}
}
