package schema

import (
	"strings"
	"testing"
)

// TestWritePermissionChecked: a form's write permission is checked when it
// loads, every error at its path.
func TestWritePermissionChecked(t *testing.T) {
	f := &Form{Entity: "household", Fields: []Field{
		{Name: "status", Type: TypeEnum, Policy: PolicyManual, Values: []string{"in_poverty", "lifted_out"},
			Write: &Write{Propose: []string{"clerk"}, Decide: []string{"supervisor", "mayor"}, Values: []string{"lifted", "lifted_out"},
				Requires: "approved", OverrideNote: "members"}},
		{Name: "members", Type: TypeInteger, Policy: PolicyManual},
		{Name: "grade", Type: TypeText, Policy: PolicyLWW, Write: &Write{}},
	}}
	got := map[string]string{}
	for _, e := range f.load() {
		got[e.Path] = e.Message
	}
	for _, path := range []string{"fields[0].write.propose[0]", "fields[0].write.decide[1]", "fields[0].write.values[0]",
		"fields[0].write.requires", "fields[0].write.override_note", "fields[2].write", "fields[2].write.decide",
		"fields[2].write.values"} {
		if got[path] == "" {
			t.Errorf("no error at %s; got %v", path, got)
		}
	}
	if len(got) != 8 {
		t.Errorf("%d errors, want 8: %v", len(got), got)
	}
}

// TestV3StatusIsDecided: version 3's household status declares lifted_out a
// decided value, for supervisors and admins, on a verified verdict, with
// status_note for an override.
func TestV3StatusIsDecided(t *testing.T) {
	hh := BuiltIn().Version(3).Form("household")
	w := hh.Field("status").Write
	if w == nil || !w.Decides([]byte(`"lifted_out"`)) || w.Decides([]byte(`"relapse_risk"`)) ||
		w.MayDecide("field_worker") || !w.MayDecide("supervisor") || !w.MayWrite("field_worker") ||
		w.Requires != RequiresVerified || w.OverrideNote != "status_note" {
		t.Fatalf("status write permission %+v", w)
	}
	if DecidedRule("status") != "status_decided" || !strings.Contains(hh.Field("status_note").Label, "override") {
		t.Fatal("rule name or note field")
	}
}
