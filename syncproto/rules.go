package syncproto

import (
	"context"
	"encoding/json"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// checkRules checks the record a change leaves (out, merged against
// stored) against the requirement rules of its form (schema.Form.CheckRules):
// every rule for a new record, on an update only the rules that read a
// field the change altered. The records the rules read through reference
// fields (a re-inspection's previous inspection) are read from tx. A
// deleted record is not checked. village is the record's region, which a
// rule comparing with a standard resolves it for (as of now).
func checkRules(ctx context.Context, tx PushTx, form *schema.Form, stored *StoredRecord, out Outcome, village string, now time.Time) ([]FieldError, error) {
	if len(form.Rules) == 0 || out.Deleted {
		return nil, nil
	}
	var changed []string // nil: a new record, every rule
	if stored != nil {
		changed = make([]string, 0, len(out.Changes))
		for name := range out.Changes {
			changed = append(changed, name)
		}
	}
	facts := schema.Facts{Fields: out.Fields, Now: now, Region: village}
	for _, ref := range form.RuleReferences() {
		var id string
		if raw, ok := out.Fields[ref]; !ok || json.Unmarshal(raw, &id) != nil || id == "" {
			continue
		}
		rec, err := tx.Record(ctx, id)
		if err != nil {
			return nil, err
		}
		if rec != nil && !rec.Deleted {
			if facts.Related == nil {
				facts.Related = map[string]map[string]json.RawMessage{}
			}
			facts.Related[ref] = rec.Fields
		}
	}
	return form.CheckRules(facts, changed), nil
}

// declaredIn keeps the rule errors of a change migrated from an older
// version whose rule that version's form declares too (by name): a tablet
// is held to the requirements of the version it validated against, not to
// those published after it (a v1 tablet may record a well without the
// fetching time that version 2 requires). Errors of no rule stay.
func declaredIn(sent *schema.Form, errs []FieldError) []FieldError {
	out := errs[:0]
	for _, e := range errs {
		if e.Rule == "" || (sent != nil && sent.Rule(e.Rule) != nil) {
			out = append(out, e)
		}
	}
	return out
}
