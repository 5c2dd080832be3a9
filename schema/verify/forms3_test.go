package verify

import (
	"os"
	"testing"
	"testing/fstest"

	"github.com/fieldsync/fieldsync/schema"
)

// TestBuiltInVerificationLoads loads the built-in version 3's verification
// (schema/forms/3/verification.json) with its own forms, and against the
// test form set, which has the design's names of forms, rules and
// standards: every name it uses resolves in both, and it judges.
func TestBuiltInVerificationLoads(t *testing.T) {
	b, err := os.ReadFile("../forms/3/verification.json")
	if err != nil {
		t.Fatal(err)
	}
	if builtIn, err := Load(schema.BuiltIn()); err != nil || len(builtIn.Guarantees()) != 6 {
		t.Fatalf("the built-in verification: %v", err)
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
