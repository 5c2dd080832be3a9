package syncproto

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/schema/verify"
)

// The flags of a change-log version that set a decided value (a field's
// write permission, schema.Write): FlagDecided on the verdict the
// permission requires, FlagOverride without it, on a deciding role's
// override note. The version's Note records the verdict, its day and the
// standards' editions it used.
const (
	FlagDecided  = "decided"
	FlagOverride = "override"
	// FlagRegistered marks a record created by a deciding role with a
	// decided value (registered as the poverty register has it), which
	// no verdict judged.
	FlagRegistered = "registered"
)

// decision is what the write permissions of a form made of one change: the
// errors of a refused change, or the flags and note of an accepted
// decision.
type decision struct {
	errs  []FieldError
	flags []string
	note  string
}

// checkDecided judges the change that leaves out (merged against stored)
// by the write permissions of its form's fields (schema.Write), for the
// actor's role: a field a role may not write, a decided value set by a role
// that may not decide, or without the verdict the permission requires and
// without an override note, is refused at "fields.<name>" with the rule
// schema.DecidedRule. The verdict is the household's at this point of the
// write transaction: its fields after the change, and its children as tx
// reads them, judged as of now. A change migrated from an older version is
// judged the same way, on its migrated fields.
func (p *PushService) checkDecided(ctx context.Context, tx PushTx, form *schema.Form, actor Actor, stored *StoredRecord, incoming map[string]json.RawMessage, out Outcome, id, village string, now time.Time) (decision, error) {
	var d decision
	if out.Deleted {
		return d, nil
	}
	for i := range form.Fields {
		fd := &form.Fields[i]
		w := fd.Write
		if w == nil {
			continue
		}
		after, set := out.Fields[fd.Name]
		var before json.RawMessage
		if stored != nil {
			before = stored.Fields[fd.Name]
		}
		if !set || bytes.Equal(after, before) || (stored == nil && bytes.Equal(after, schema.Null)) {
			continue
		}
		note, _ := stringField(incoming, w.OverrideNote)
		j, err := judgeWrite(ctx, p.verifier, p.schema, tx, form, fd, actor.Role, stored, out.Fields, after, note, "fields."+w.OverrideNote, id, village, now)
		if err != nil {
			return d, err
		}
		if j.refused != "" {
			d.errs = append(d.errs, FieldError{Path: "fields." + fd.Name, Rule: schema.DecidedRule(fd.Name), Message: j.refused})
			continue
		}
		if j.flag != "" {
			d.flags = append(d.flags, j.flag)
			d.note = j.note
		}
	}
	return d, nil
}

// writeJudgement is what a field's write permission makes of one change
// of its value: refused (with the message, and whether an override note
// would have let it through), or accepted, with the change log's flag and
// note when the value is a decided one.
type writeJudgement struct {
	refused string
	// needsNote is set on a refusal for want of the verdict the
	// permission requires, which an override note would lift.
	needsNote  bool
	flag, note string
}

// judgeWrite judges the change of field fd of the record id (its form's
// stored version stored, nil for a new record; fields as the change leaves
// them, after the field's new value) by fd's write permission for role:
// the rule of pushed changes (checkDecided) and of supervisors'
// resolutions (resolveConflict) alike. overrideNote is the note the change
// carries for an override, notePath where the caller's request carries it
// (for the refusal's message). The verdict is the household's as tx reads
// it, judged as of now.
func judgeWrite(ctx context.Context, verifier *verify.Verifier, sch *schema.Schema, tx PushTx, form *schema.Form, fd *schema.Field, role string, stored *StoredRecord, fields map[string]json.RawMessage, after json.RawMessage, overrideNote, notePath, id, village string, now time.Time) (writeJudgement, error) {
	w := fd.Write
	var value string
	_ = json.Unmarshal(after, &value)
	switch {
	case !w.MayWrite(role):
		return writeJudgement{refused: fmt.Sprintf("may not be changed by %s (set by %s)", aRole(role), strings.Join(append(append([]string(nil), w.Propose...), w.Decide...), ", "))}, nil
	case !w.Decides(after):
		return writeJudgement{}, nil
	case !w.MayDecide(role):
		return writeJudgement{refused: fmt.Sprintf("%q is decided by %s, not by %s: the change is kept as a proposal for them", value, strings.Join(w.Decide, ", "), aRole(role))}, nil
	case w.Requires == "":
		return writeJudgement{flag: FlagDecided, note: fmt.Sprintf("%s %s decided by %s", fd.Name, value, aRole(role))}, nil
	case stored == nil:
		// A household registered by a deciding role with the status the
		// poverty register gives it (the demo's and an import's load):
		// it has no evidence here yet to be judged on; it is flagged.
		return writeJudgement{flag: FlagRegistered, note: fmt.Sprintf("%s %s registered by %s with the record, not judged", fd.Name, value, aRole(role))}, nil
	}
	verdict, err := verdictAt(ctx, verifier, sch, tx, form, id, village, fields, now)
	if err != nil {
		return writeJudgement{}, err
	}
	summary := verdictSummary(verdict)
	if verdict != nil && verdict.Overall == verify.Verified {
		return writeJudgement{flag: FlagDecided, note: fmt.Sprintf("%s %s decided by %s on %s", fd.Name, value, aRole(role), summary)}, nil
	}
	if strings.TrimSpace(overrideNote) != "" {
		return writeJudgement{flag: FlagOverride, note: fmt.Sprintf("%s %s decided by %s as an override (note in %s) on %s", fd.Name, value, aRole(role), w.OverrideNote, summary)}, nil
	}
	return writeJudgement{needsNote: true, refused: fmt.Sprintf("%q needs a verified verdict, and the household's is %s; a %s may override it with a note in %s",
		value, summary, strings.Join(w.Decide, " or "), notePath)}, nil
}

// verdictAt judges the household id (the record of form, with fields as
// the change leaves them) with its live children as tx reads them, as of
// now; nil when the served version declares no verification (verifier is
// nil) or form is not the household's.
func verdictAt(ctx context.Context, verifier *verify.Verifier, sch *schema.Schema, tx PushTx, form *schema.Form, id, village string, fields map[string]json.RawMessage, now time.Time) (*verify.Verdict, error) {
	if verifier == nil || sch.Playing(schema.RoleHousehold) != form {
		return nil, nil
	}
	h := &survey.HouseholdInspections{ID: id, Village: village, Fields: fields}
	placements, err := tx.ChildPlacements(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, pl := range placements {
		rec, err := tx.Record(ctx, pl.ID)
		if err != nil {
			return nil, err
		}
		if rec == nil || rec.Deleted {
			continue
		}
		h.Children = append(h.Children, survey.Record{ID: rec.ID, Entity: rec.Entity, Fields: rec.Fields, UpdatedAt: rec.UpdatedAt})
	}
	v := verifier.Evaluate(h, now)
	return &v, nil
}

// verdictSummary is a verdict as the change log's note records it: the
// overall verdict (with the guarantees blocking it), its day and the
// standards' editions it applied. No personal data.
func verdictSummary(v *verify.Verdict) string {
	if v == nil {
		return "no verdict (the forms declare no verification)"
	}
	s := "verdict " + string(v.Overall)
	if len(v.By) > 0 {
		s += " by " + strings.Join(v.By, ", ")
	}
	s += " as of " + v.AsOf
	if len(v.Standards) > 0 {
		names := make([]string, len(v.Standards))
		for i, st := range v.Standards {
			names[i] = st.Name + " " + st.Version
		}
		s += "; standards " + strings.Join(names, ", ")
	}
	return s
}

// aRole is role with its indefinite article, for the notes and refusals
// above: "a supervisor", "an admin".
func aRole(role string) string {
	if role != "" && strings.ContainsRune("aeiou", rune(role[0])) {
		return "an " + role
	}
	return "a " + role
}
