package verify

import (
	"os"
	"testing"
	"testing/fstest"
)

// TestBuiltInVerificationLoads loads testdata/forms3/verification.json —
// the built-in version 3's verification, to be schema/forms/3/'s once
// version 3's forms are there (a version directory without its forms does
// not load) — against the test form set, which has the design's names of
// forms, rules and standards: every name it uses resolves.
func TestBuiltInVerificationLoads(t *testing.T) {
	b, err := os.ReadFile("testdata/forms3/verification.json")
	if err != nil {
		t.Fatal(err)
	}
	fsys := copySet(t, nil).(fstest.MapFS)
	fsys["set/1/verification.json"] = &fstest.MapFile{Data: b}
	v := mustVerifier(t, fsys)
	h := household(t, "500240107201")
	if got := v.Evaluate(h, asOf); got.Overall != Verified {
		t.Fatalf("%s by %v, want verified", got.Overall, got.By)
	}
	set(t, child(h, "p2").Fields, "schooling", "dropped_out")
	if got := v.Evaluate(h, asOf); got.Overall != Blocked || got.By[0] != "education" {
		t.Fatalf("%s by %v, want blocked by education", got.Overall, got.By)
	}
}
