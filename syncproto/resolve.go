package syncproto

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/verify"
)

// SuperviseTx is the store's write transaction as the supervisors'
// decisions (SupervisionService) see it: the store commits it, durably,
// only after the decision returned without error
// (SupervisionWriter.WriteSupervision).
type SuperviseTx interface {
	PushTx
	// Conflict returns a conflict, or nil.
	Conflict(ctx context.Context, id string) (*ConflictEntry, error)
	// MarkResolved records a supervisor's decision on a conflict.
	MarkResolved(ctx context.Context, id string, c ConflictEntry) error
	// Duplicate returns a suspected duplicate, or nil.
	Duplicate(ctx context.Context, id string) (*Duplicate, error)
	// MarkDecided records the decision on a duplicate (merged or
	// dismissed: state, when, by whom, survivor, note).
	MarkDecided(ctx context.Context, d Duplicate) error
	// OpenConflicts returns the open conflicts of a record.
	OpenConflicts(ctx context.Context, recordID string) ([]ConflictEntry, error)
	// QuarantineEntry returns a quarantine entry, or nil.
	QuarantineEntry(ctx context.Context, id string) (*QuarantineEntry, error)
	// MarkClosed records the closing of a quarantine entry.
	MarkClosed(ctx context.Context, q QuarantineEntry) error
	// Children returns the records whose parent is id (a household's
	// inspections), deleted ones included.
	Children(ctx context.Context, id string) ([]*StoredRecord, error)
}

// ResolvedConflict extends a conflict with the supervisor's decision.
type ResolvedConflict struct {
	By, Device, Note string
	Value            json.RawMessage
	Version          int64
	At               time.Time
}

// resolveConflict applies a supervisor's decision on a conflict: the field
// takes r.Value (for FieldDeleted: true keeps the record deleted, false
// restores it, and an object restores it with those fields, as the
// incoming change of an upsert-to-deleted conflict sent them). The decision
// is a new version of the record made by the supervisor's user and device,
// in the history with the conflict's id, and reaches tablets through pull;
// a value equal to the current one makes no version. A household merged
// into another (MergedInto) stays a tombstone: a resolution that keeps it
// as it is (for FieldDeleted, true) settles the conflict with its note and
// makes no version; one that would restore it or change a field is
// EConflict, naming the survivor, where such an edit belongs. It returns
// ENotFound, EForbidden outside the actor's scope, EConflict for a
// conflict already resolved or a merged record's change, EInvalid (path
// "value") for a value the field does not accept, EInvalid (path "note")
// for a note over MaxNote.
//
// A value a field's write permission governs (a household's status) is
// judged as a pushed change is (judgeWrite): EForbidden (path "value",
// rule schema.DecidedRule) for a role that may not write or decide it;
// EInvalid (path "override_note", same rule) for a decided value
// (lifted_out) whose household is not verified at this moment when the
// resolution carries no override note. A note given with a decided value
// (an override, or on a verified verdict) is stored in the form's
// override-note field by the same version, and the version is flagged decided or override with the
// verdict in its note, as a push's. EInvalid (path "override_note") for
// an override note on a resolution that sets no decided value.
func resolveConflict(ctx context.Context, tx SuperviseTx, sch *schema.Schema, verifier *verify.Verifier, actor Actor, r Resolution, now time.Time) (ResolveResult, error) {
	now = now.UTC()
	c, err := tx.Conflict(ctx, r.ConflictID)
	if err != nil {
		return ResolveResult{}, err
	}
	if c == nil {
		return ResolveResult{}, Errorf(ENotFound, "no conflict %s", r.ConflictID)
	}
	rec, err := tx.Record(ctx, c.RecordID)
	if err != nil {
		return ResolveResult{}, err
	}
	if rec == nil || !actor.InScope(rec.Village) {
		return ResolveResult{}, Errorf(EForbidden, "this conflict's record is outside your scope")
	}
	if c.State == StateResolved {
		return ResolveResult{}, &Error{Code: EConflict, Title: "Already resolved",
			Message: "this conflict was already resolved; see the record's history"}
	}
	if err := checkNote(r.Note, false); err != nil {
		return ResolveResult{}, err
	}
	// A merged-away household stays a tombstone: restoring it would count
	// it twice beside the survivor that holds its inspections, and an edit
	// of it belongs on the survivor.
	mergedAway := func() error {
		return &Error{Code: EConflict, Title: "Record merged",
			Message: "this record was merged into " + rec.MergedInto +
				"; it stays deleted (resolve with true to keep it so), and an edit belongs on " + rec.MergedInto}
	}
	invalid := func(msg string) error {
		return &Error{Code: EInvalid, Title: "Invalid resolution", Message: "the value cannot be stored",
			Errors: []FieldError{{Path: "value", Message: msg}}}
	}
	raw := bytes.TrimSpace(r.Value)
	if len(raw) == 0 {
		return ResolveResult{}, invalid("is required")
	}
	form := sch.Form(rec.Entity)
	next := &StoredRecord{Entity: rec.Entity, ID: rec.ID, Version: rec.Version, Fields: cloneFields(rec.Fields),
		Meta: cloneMeta(rec.Meta), Deleted: rec.Deleted, MergedInto: rec.MergedInto, Village: rec.Village,
		Parent: rec.Parent, UpdatedAt: now, UpdatedBy: actor.UserID, UpdatedDevice: actor.DeviceID}
	changes := map[string]FieldChange{}
	newVersion := rec.Version + 1
	set := func(field string, v json.RawMessage) {
		before := valueOf(rec.Fields, field)
		if field == FieldDeleted {
			before = jsonBool(rec.Deleted)
		}
		if bytes.Equal(before, v) {
			return
		}
		changes[field] = FieldChange{Before: before, After: v}
		next.Meta[field] = FieldMeta{Version: newVersion, Device: actor.DeviceID, At: now}
		switch {
		case field == FieldDeleted:
			next.Deleted = bytes.Equal(v, jsonTrue)
		case bytes.Equal(v, schema.Null):
			delete(next.Fields, field)
		default:
			next.Fields[field] = v
		}
	}
	value := raw
	if rec.MergedInto != "" && c.Field == FieldDeleted && !bytes.Equal(raw, jsonTrue) {
		return ResolveResult{}, mergedAway()
	}
	if c.Field == FieldDeleted {
		switch {
		case bytes.Equal(raw, jsonTrue), bytes.Equal(raw, jsonFalse):
			set(FieldDeleted, raw)
		case raw[0] == '{':
			var fields map[string]json.RawMessage
			if json.Unmarshal(raw, &fields) != nil {
				return ResolveResult{}, invalid("must be true, false, or the fields to restore the record with")
			}
			norm, errs := form.ValidateAt(fields, now)
			if len(errs) > 0 {
				return ResolveResult{}, invalid(errs[0].Path + " " + errs[0].Message)
			}
			set(FieldDeleted, jsonFalse)
			for _, name := range sortedKeys(norm) {
				set(name, norm[name])
			}
		default:
			return ResolveResult{}, invalid("must be true (keep deleted), false (restore) or the fields to restore with")
		}
	} else {
		fd := form.Field(c.Field)
		if fd == nil {
			return ResolveResult{}, invalid("the field " + c.Field + " is no longer in the form")
		}
		norm, errs := form.ValidateAt(map[string]json.RawMessage{c.Field: raw}, now)
		if len(errs) > 0 {
			return ResolveResult{}, invalid(errs[0].Message)
		}
		value = norm[c.Field]
		set(c.Field, value)
	}
	if rec.MergedInto != "" && len(changes) > 0 {
		return ResolveResult{}, mergedAway()
	}
	// References (a household, a re-inspected inspection) must still hold.
	_, _, refErrs, err := resolveRefs(ctx, tx, form, rec, onlyChanged(next.Fields, changes))
	if err != nil {
		return ResolveResult{}, err
	}
	if len(refErrs) > 0 {
		return ResolveResult{}, invalid(refErrs[0].Message)
	}
	if next.Parent, next.Village, err = scopeAfter(ctx, tx, form, next.Fields, rec.Parent, rec.Village); err != nil {
		return ResolveResult{}, err
	}
	if !actor.InScope(next.Village) {
		return ResolveResult{}, Errorf(EForbidden, "the resolution would move the record outside your scope")
	}
	dec, err := judgeResolution(ctx, tx, sch, verifier, form, actor, rec, next, changes, r.OverrideNote, set, now)
	if err != nil {
		return ResolveResult{}, err
	}
	version := rec.Version
	if len(changes) > 0 {
		version = newVersion
		next.Version = newVersion
		entry := LogEntry{Entity: rec.Entity, RecordID: rec.ID, Version: newVersion, Op: "resolve",
			UserID: actor.UserID, Department: actor.Department, DeviceID: actor.DeviceID, DeviceAt: now, ServerAt: now, Changes: changes,
			ConflictIDs: []string{c.ID}, Flags: dec.flags, Note: dec.note}
		if err := writeVersion(ctx, tx, rec, next, entry); err != nil {
			return ResolveResult{}, err
		}
	} else {
		next = rec
	}
	done := *c
	done.State = StateResolved
	done.Resolved = &ResolvedConflict{By: actor.UserID, Device: actor.DeviceID, Note: r.Note, Value: value,
		Version: version, At: now}
	if err := tx.MarkResolved(ctx, c.ID, done); err != nil {
		return ResolveResult{}, err
	}
	return ResolveResult{Conflict: done, Record: WireRecord(next)}, nil
}

// judgeResolution judges the fields a resolution changes (changes, next
// as it leaves the record rec) by their write permissions, as a push's
// change is judged (judgeWrite), and stores an override note that lets a
// decided value through in the form's override-note field (through set,
// so in the same version). It returns the version's flags and note, or
// the refusal (see resolveConflict).
func judgeResolution(ctx context.Context, tx SuperviseTx, sch *schema.Schema, verifier *verify.Verifier, form *schema.Form, actor Actor, rec, next *StoredRecord, changes map[string]FieldChange, overrideNote string, set func(string, json.RawMessage), now time.Time) (decision, error) {
	var d decision
	noteUsed := false
	if !next.Deleted {
		for i := range form.Fields {
			fd := &form.Fields[i]
			fc, changed := changes[fd.Name]
			if fd.Write == nil || !changed {
				continue
			}
			j, err := judgeWrite(ctx, verifier, sch, tx, form, fd, actor.Role, rec, next.Fields, fc.After, overrideNote, "override_note", rec.ID, next.Village, now)
			if err != nil {
				return d, err
			}
			rule := schema.DecidedRule(fd.Name)
			switch {
			case j.needsNote:
				return d, &Error{Code: EInvalid, Title: "Override note required", Message: "this value needs a verified verdict or an override note",
					Errors: []FieldError{{Path: "override_note", Rule: rule, Message: j.refused}}}
			case j.refused != "":
				return d, &Error{Code: EForbidden, Title: "Decided value", Message: "your role may not resolve the field to this value",
					Errors: []FieldError{{Path: "value", Rule: rule, Message: j.refused}}}
			case j.flag == "":
				continue
			}
			d.flags = append(d.flags, j.flag)
			d.note = j.note
			if strings.TrimSpace(overrideNote) == "" || fd.Write.OverrideNote == "" {
				continue
			}
			norm, errs := form.ValidateAt(map[string]json.RawMessage{fd.Write.OverrideNote: jsonString(overrideNote)}, now)
			if len(errs) > 0 {
				return d, &Error{Code: EInvalid, Title: "Invalid resolution", Message: "the override note cannot be stored",
					Errors: []FieldError{{Path: "override_note", Message: errs[0].Message}}}
			}
			set(fd.Write.OverrideNote, norm[fd.Write.OverrideNote])
			noteUsed = true
		}
	}
	if strings.TrimSpace(overrideNote) != "" && !noteUsed {
		return d, &Error{Code: EInvalid, Title: "Invalid resolution", Message: "an override note goes with a resolution that sets a decided value",
			Errors: []FieldError{{Path: "override_note", Message: "is only for a resolution that sets a decided value (a household's status lifted_out)"}}}
	}
	return d, nil
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

func onlyChanged(fields map[string]json.RawMessage, changes map[string]FieldChange) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for name := range changes {
		if v, ok := fields[name]; ok {
			out[name] = v
		}
	}
	return out
}

func jsonBool(b bool) json.RawMessage {
	if b {
		return jsonTrue
	}
	return jsonFalse
}

// mergeHouseholds merges a suspected duplicate: the survivor (one of the
// two households, named by the supervisor) keeps every inspection of the
// other, each re-pointed by a new version; the other becomes a tombstone
// whose merged_into names the survivor, and its open conflicts are settled
// by that version (resolved, the stored value kept, the merge named in the
// resolution's note); both histories record the merge with its note, and
// tablets learn of it through pull. It returns ENotFound, EForbidden
// outside the actor's scope, EConflict when the duplicate was already
// decided or a household is gone, EInvalid (path "survivor") for a missing
// survivor or one that is neither household, EInvalid (path "note") for a
// note over MaxNote.
func mergeHouseholds(ctx context.Context, tx SuperviseTx, actor Actor, id, survivor, note string, now time.Time) (MergeResult, error) {
	now = now.UTC()
	d, err := openDuplicate(ctx, tx, actor, id)
	if err != nil {
		return MergeResult{}, err
	}
	if err := checkNote(note, false); err != nil {
		return MergeResult{}, err
	}
	if survivor == "" {
		return MergeResult{}, &Error{Code: EInvalid, Title: "Survivor required", Message: "name the household that survives the merge",
			Errors: []FieldError{{Path: "survivor", Message: "is required: " + d.HouseholdA + " or " + d.HouseholdB}}}
	}
	other := d.HouseholdB
	switch survivor {
	case d.HouseholdA:
	case d.HouseholdB:
		other = d.HouseholdA
	default:
		return MergeResult{}, &Error{Code: EInvalid, Title: "Invalid survivor", Message: "the survivor must be one of the two households",
			Errors: []FieldError{{Path: "survivor", Message: "must be " + d.HouseholdA + " or " + d.HouseholdB}}}
	}
	keep, err := tx.Record(ctx, survivor)
	if err != nil {
		return MergeResult{}, err
	}
	gone, err := tx.Record(ctx, other)
	if err != nil {
		return MergeResult{}, err
	}
	if keep == nil || gone == nil || keep.Deleted || gone.Deleted {
		return MergeResult{}, Errorf(EConflict, "one of the households is already deleted or merged")
	}
	if !actor.InScope(keep.Village) || !actor.InScope(gone.Village) {
		return MergeResult{}, Errorf(EForbidden, "a household of this duplicate is outside your scope")
	}
	entry := func(rec *StoredRecord, version int64, changes map[string]FieldChange) LogEntry {
		return LogEntry{Entity: rec.Entity, RecordID: rec.ID, Version: version, Op: "merge", UserID: actor.UserID, Department: actor.Department,
			DeviceID: actor.DeviceID, DeviceAt: now, ServerAt: now, Changes: changes, Note: note}
	}
	res := MergeResult{Survivor: survivor, Tombstone: other}
	children, err := tx.Children(ctx, other)
	if err != nil {
		return MergeResult{}, err
	}
	parentField := "household_id"
	for _, ch := range children {
		if ch.Deleted {
			continue
		}
		v := ch.Version + 1
		newID, _ := json.Marshal(survivor)
		next := *ch
		next.Fields, next.Meta = cloneFields(ch.Fields), cloneMeta(ch.Meta)
		next.Fields[parentField] = newID
		next.Meta[parentField] = FieldMeta{Version: v, Device: actor.DeviceID, At: now}
		next.Version, next.Parent, next.Village = v, survivor, keep.Village
		next.UpdatedAt, next.UpdatedBy, next.UpdatedDevice = now, actor.UserID, actor.DeviceID
		if err := writeVersion(ctx, tx, ch, &next, entry(ch, v, map[string]FieldChange{
			parentField: {Before: valueOf(ch.Fields, parentField), After: newID}})); err != nil {
			return MergeResult{}, err
		}
		res.Repointed = append(res.Repointed, ch.ID)
	}
	otherJSON, _ := json.Marshal(other)
	survivorJSON, _ := json.Marshal(survivor)
	k := *keep
	k.Version, k.UpdatedAt, k.UpdatedBy, k.UpdatedDevice = keep.Version+1, now, actor.UserID, actor.DeviceID
	if err := writeVersion(ctx, tx, keep, &k, entry(keep, k.Version, map[string]FieldChange{
		"_merged_from": {Before: schema.Null, After: otherJSON}})); err != nil {
		return MergeResult{}, err
	}
	g := *gone
	g.Meta = cloneMeta(gone.Meta)
	g.Version, g.Deleted, g.MergedInto = gone.Version+1, true, survivor
	g.Meta[FieldDeleted] = FieldMeta{Version: g.Version, Device: actor.DeviceID, At: now}
	g.UpdatedAt, g.UpdatedBy, g.UpdatedDevice = now, actor.UserID, actor.DeviceID
	// The tombstone's open conflicts are settled by the merge: a later
	// resolution must not bring the household back beside its survivor.
	open, err := tx.OpenConflicts(ctx, gone.ID)
	if err != nil {
		return MergeResult{}, err
	}
	goneEntry := entry(gone, g.Version, map[string]FieldChange{
		FieldDeleted: {Before: jsonFalse, After: jsonTrue}, "_merged_into": {Before: schema.Null, After: survivorJSON}})
	for _, c := range open {
		goneEntry.ConflictIDs = append(goneEntry.ConflictIDs, c.ID)
	}
	if err := writeVersion(ctx, tx, gone, &g, goneEntry); err != nil {
		return MergeResult{}, err
	}
	settled := "settled by the merge into " + survivor
	if note != "" {
		settled += ": " + note
	}
	for _, c := range open {
		c.State = StateResolved
		c.Resolved = &ResolvedConflict{By: actor.UserID, Device: actor.DeviceID, Note: settled, Value: c.Kept,
			Version: g.Version, At: now}
		if err := tx.MarkResolved(ctx, c.ID, c); err != nil {
			return MergeResult{}, err
		}
	}
	d.State, d.DecidedAt, d.DecidedBy, d.Survivor, d.Note = StateMerged, now, actor.UserID, survivor, note
	if err := tx.MarkDecided(ctx, *d); err != nil {
		return MergeResult{}, err
	}
	res.Duplicate = *d
	return res, nil
}
