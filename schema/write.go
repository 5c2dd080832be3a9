package schema

import (
	"encoding/json"
	"fmt"
)

// Write is a field's write permission (`"write"` in a form file): which
// roles may set which of an enum field's values. Decided values (Values)
// are set only by a role of Decide, and when Requires is RequiresVerified
// only while the household's verdict is verified — or with an override
// note in the field OverrideNote carried by the same change. The other
// values are set by the roles of Propose and Decide; a role in neither may
// not change the field. A change refused by it is quarantined with the rule
// DecidedRule (docs/forms.md, "Decided values").
type Write struct {
	// Propose are the roles that may set the field's values other than
	// the decided ones (a field worker's change to a decided value is
	// kept in quarantine as a proposal for a deciding role).
	Propose []string `json:"propose,omitempty"`
	// Decide are the roles that may also set the decided values.
	Decide []string `json:"decide"`
	// Values are the decided values.
	Values []string `json:"values"`
	// Requires is RequiresVerified or "" (a deciding role's word is
	// enough).
	Requires string `json:"requires,omitempty"`
	// OverrideNote names a text field of the form: a deciding role may set
	// a decided value without the required verdict when its change
	// carries a non-empty note there; the version is then an override.
	OverrideNote string `json:"override_note,omitempty"`
}

// RequiresVerified makes a decided value need the household's verdict to
// be verified at the moment of the change (schema/verify).
const RequiresVerified = "verified"

// WriteRoles are the roles a write permission may name: the roles that
// push changes.
var WriteRoles = []string{"field_worker", "supervisor", "admin"}

// DecidedRule is the rule name of the errors of a change a write
// permission refuses, for the field: "<field>_decided".
func DecidedRule(field string) string { return field + "_decided" }

// Decides reports whether the value (canonical JSON) is one of the field's
// decided values.
func (w *Write) Decides(raw json.RawMessage) bool {
	var s string
	if w == nil || json.Unmarshal(raw, &s) != nil {
		return false
	}
	return contains(w.Values, s)
}

// MayDecide reports whether role may set the decided values.
func (w *Write) MayDecide(role string) bool { return contains(w.Decide, role) }

// MayWrite reports whether role may change the field at all.
func (w *Write) MayWrite(role string) bool {
	return contains(w.Decide, role) || contains(w.Propose, role)
}

// checkWrite checks the write permission of the field at fields[i] against
// its form, every error at its path.
func (f *Form) checkWrite(i int, bad func(path, format string, a ...any)) {
	fd := &f.Fields[i]
	w := fd.Write
	if w == nil {
		return
	}
	at := func(member string) string { return fmt.Sprintf("fields[%d].write.%s", i, member) }
	if fd.Type != TypeEnum {
		bad(fmt.Sprintf("fields[%d].write", i), "field %q: a write permission decides values of an enum, not of %s", fd.Name, fd.Type)
	}
	if len(w.Decide) == 0 {
		bad(at("decide"), "field %q: a write permission needs the roles that decide", fd.Name)
	}
	for j, r := range w.Decide {
		if !contains(WriteRoles, r) {
			bad(fmt.Sprintf("%s[%d]", at("decide"), j), "field %q: unknown role %q (one of field_worker, supervisor, admin)", fd.Name, r)
		}
	}
	for j, r := range w.Propose {
		if !contains(WriteRoles, r) {
			bad(fmt.Sprintf("%s[%d]", at("propose"), j), "field %q: unknown role %q (one of field_worker, supervisor, admin)", fd.Name, r)
		}
	}
	if len(w.Values) == 0 {
		bad(at("values"), "field %q: a write permission needs the values it decides", fd.Name)
	}
	for j, v := range w.Values {
		if !contains(fd.Values, v) {
			bad(fmt.Sprintf("%s[%d]", at("values"), j), "field %q: %q is not one of its values", fd.Name, v)
		}
	}
	if w.Requires != "" && w.Requires != RequiresVerified {
		bad(at("requires"), "field %q: requires is %q or absent, not %q", fd.Name, RequiresVerified, w.Requires)
	}
	if w.OverrideNote != "" {
		if n := f.byName[w.OverrideNote]; n == nil || n.Type != TypeText {
			bad(at("override_note"), "field %q: override_note %q is not a text field of %s", fd.Name, w.OverrideNote, f.Entity)
		}
	} else if w.Requires != "" {
		bad(at("override_note"), "field %q: a requirement needs the text field an override's note is written in", fd.Name)
	}
}
