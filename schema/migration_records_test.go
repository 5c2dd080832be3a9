package schema

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestUpRecordFillsDefaults: at publication a default fills a stored
// record that lacks the field when the field is new in the newer version
// or the newer version requires it; a field the older version had, left
// optional and unrecorded, stays absent; a value the record holds is
// never replaced. Up of an update (not a creation) fills nothing.
func TestUpRecordFillsDefaults(t *testing.T) {
	from := visitSchema(t, 1, visitV1)
	// v2: "count" becomes required, "ok" stays optional, "stage" is new.
	var list []map[string]any
	if err := json.Unmarshal([]byte(visitV1), &list); err != nil {
		t.Fatal(err)
	}
	for _, f := range list {
		if f["name"] == "count" {
			f["required"] = true
		}
	}
	list = append(list, map[string]any{"name": "stage", "type": "enum", "values": []string{"first", "second"}, "policy": "lww"})
	b, _ := json.Marshal(list)
	to := visitSchema(t, 2, string(b))
	m := compile(t, from, to, `[
	 {"op": "default", "entity": "visit", "field": "count", "value": 1},
	 {"op": "default", "entity": "visit", "field": "ok", "value": true},
	 {"op": "default", "entity": "visit", "field": "stage", "value": "first"}]`)

	cases := []struct {
		name   string
		fields string
		want   string
	}{
		{"lacks all three", `{"name": "a"}`, `{"name": "a", "count": 1, "stage": "first"}`},
		{"holds its own values", `{"name": "a", "count": 7, "ok": false}`, `{"name": "a", "count": 7, "ok": false, "stage": "first"}`},
		{"a null is no value", `{"name": "a", "count": null}`, `{"name": "a", "count": 1, "stage": "first"}`},
	}
	for _, c := range cases {
		var in, want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(c.fields), &in); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(c.want), &want); err != nil {
			t.Fatal(err)
		}
		got, _, err := m.UpRecord("visit", in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !equalJSON(got, want) {
			t.Errorf("%s: UpRecord(%s) = %s, want %s", c.name, c.fields, got, c.want)
		}
		if up, _, err := m.Up("visit", in, false); err == nil && up["stage"] != nil {
			t.Errorf("%s: Up of an update filled a default: %s", c.name, up)
		}
	}
}

// equalJSON compares two field maps by value.
func equalJSON(a, b map[string]json.RawMessage) bool {
	norm := func(m map[string]json.RawMessage) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			var x any
			_ = json.Unmarshal(v, &x)
			out[k] = x
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
