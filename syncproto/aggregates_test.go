package syncproto

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"testing"
)

// TestAddCountsReadsWhatTheStoresWrite: the hand-written reader of a
// village's counters adds up exactly what encoding/json reads from the
// documents the stores write (json.Marshal of a map of counters: keys with
// '/', Chinese values, negative and large numbers), keys that need escapes
// go through encoding/json, and anything that is not a flat object of
// integers is an error, not a guess.
func TestAddCountsReadsWhatTheStoresWrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 7))
	names := []string{"households", "grades/A", "status/未脱贫", "water_failing/quantity", `odd "key"`, `back\slash`, "dangerous_by_renovation/(unset)"}
	for range 500 {
		counts := map[string]int{}
		for range rng.IntN(len(names) + 1) {
			counts[names[rng.IntN(len(names))]] = rng.IntN(2_000_001) - 1_000
		}
		doc, err := json.Marshal(counts)
		if err != nil {
			t.Fatal(err)
		}
		got, want := map[string]int{"households": 5}, map[string]int{"households": 5}
		for k, n := range counts {
			want[k] += n
		}
		if err := addCounts(string(doc), got); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%s: read %v, want %v", doc, got, want)
		}
	}
	for _, doc := range []string{"", "[]", `{"a":1`, `{"a":"1"}`, `{"a":1.5}`, `{"a":1,}`, `{"a" 1}`, `{"a":true}`, `{"a":{}}`} {
		if err := addCounts(doc, map[string]int{}); err == nil {
			t.Errorf("%q read without an error", doc)
		}
	}
	spaced := map[string]int{}
	if err := addCounts(` { "a" : 2 , "b":-3 } `, spaced); err != nil || !maps.Equal(spaced, map[string]int{"a": 2, "b": -3}) {
		t.Errorf("spaces: %v, %v", spaced, err)
	}
}
