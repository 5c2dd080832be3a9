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
		path, rule := "fields."+fd.Name, schema.DecidedRule(fd.Name)
		var value string
		_ = json.Unmarshal(after, &value)
		switch {
		case !w.MayWrite(actor.Role):
			d.errs = append(d.errs, FieldError{Path: path, Rule: rule,
				Message: fmt.Sprintf("may not be changed by a %s (set by %s)", actor.Role, strings.Join(append(append([]string(nil), w.Propose...), w.Decide...), ", "))})
			continue
		case !w.Decides(after):
			continue
		case !w.MayDecide(actor.Role):
			d.errs = append(d.errs, FieldError{Path: path, Rule: rule,
				Message: fmt.Sprintf("%q is decided by %s, not by a %s: the change is kept as a proposal for them", value, strings.Join(w.Decide, ", "), actor.Role)})
			continue
		case w.Requires == "":
			d.flags = append(d.flags, FlagDecided)
			d.note = fmt.Sprintf("%s %s decided by a %s", fd.Name, value, actor.Role)
			continue
		case stored == nil:
			// A household registered by a deciding role with the status the
			// poverty register gives it (the demo's and an import's load):
			// it has no evidence here yet to be judged on; it is flagged.
			d.flags = append(d.flags, FlagRegistered)
			d.note = fmt.Sprintf("%s %s registered by a %s with the record, not judged", fd.Name, value, actor.Role)
			continue
		}
		verdict, err := p.verdictAt(ctx, tx, form, id, village, out.Fields, now)
		if err != nil {
			return d, err
		}
		summary := verdictSummary(verdict)
		if verdict != nil && verdict.Overall == verify.Verified {
			d.flags = append(d.flags, FlagDecided)
			d.note = fmt.Sprintf("%s %s decided by a %s on %s", fd.Name, value, actor.Role, summary)
			continue
		}
		if note, ok := stringField(incoming, w.OverrideNote); ok && strings.TrimSpace(note) != "" {
			d.flags = append(d.flags, FlagOverride)
			d.note = fmt.Sprintf("%s %s decided by a %s as an override (note in %s) on %s", fd.Name, value, actor.Role, w.OverrideNote, summary)
			continue
		}
		d.errs = append(d.errs, FieldError{Path: path, Rule: rule,
			Message: fmt.Sprintf("%q needs a verified verdict, and the household's is %s; a %s may override it with a note in fields.%s",
				value, summary, strings.Join(w.Decide, " or "), w.OverrideNote)})
	}
	return d, nil
}

// verdictAt judges the household id (the record of form, with fields as
// the change leaves them) with its live children as tx reads them, as of
// now; nil when the served version declares no verification or form is not
// the household's.
func (p *PushService) verdictAt(ctx context.Context, tx PushTx, form *schema.Form, id, village string, fields map[string]json.RawMessage, now time.Time) (*verify.Verdict, error) {
	if p.verifier == nil || p.schema.Playing(schema.RoleHousehold) != form {
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
	v := p.verifier.Evaluate(h, now)
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
