package syncproto

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
)

// Receipt is the stored outcome of a change set, kept under its id so that
// every retry gets the same answer.
type Receipt struct {
	ChangesetID string
	DeviceID    string
	DeviceSeq   int64
	UserID      string
	ContentHash string
	Response    []byte
	ReceivedAt  time.Time
	// SchemaVersion is the schema_version the change set was sent in: the
	// version its device last pushed (a pull without ?schema_version=
	// answers in it).
	SchemaVersion int
	Applied       int
	Merged        int
	Conflicts     int
	Rejected      int
}

// LogEntry is one accepted version of a record in the append-only change
// log: who, which device, when, and the before and after of each field.
type LogEntry struct {
	Seq         int64
	Entity      string
	RecordID    string
	Version     int64
	Op          string
	ChangesetID string
	UserID      string
	// Department is the actor's department when the change was made
	// (auth.User.Department), or "".
	Department  string
	DeviceID    string
	DeviceAt    time.Time
	ServerAt    time.Time
	Flags       []string
	Changes     map[string]FieldChange
	ConflictIDs []string
	// Note is why a person made this version (a merge's note), or "".
	Note string
	// Replay is set when the version came from an exported outbox that a
	// supervisor replayed for its device (DeviceID stays that device).
	Replay *Replay
	// SchemaVersion is the schema_version the change was sent in; 0 for a
	// version recorded before the log kept it (or made by the server).
	SchemaVersion int
	// Sent holds the change's fields as its device sent them when they
	// were migrated on arrival from an older schema version (Changes are
	// in the version served): a dropped field's value stays here.
	Sent map[string]json.RawMessage
}

// ConflictEntry is a recorded concurrent-edit decision, open or resolved.
type ConflictEntry struct {
	ID          string
	Entity      string
	RecordID    string
	Village     string
	Field       string
	Policy      string
	Stored      json.RawMessage
	Incoming    json.RawMessage
	Kept        json.RawMessage
	State       string
	ChangesetID string
	DeviceID    string
	UserID      string
	DeviceAt    time.Time
	CreatedAt   time.Time
	// Version is the record version after the change that made the
	// decision.
	Version int64
	// Resolved is the supervisor's decision, once there is one.
	Resolved *ResolvedConflict
	// HouseholdName is the head of the household the record is or
	// belongs to, for supervisors (personal data: never logged).
	HouseholdName string
	// Department is the department of the incoming change's user (the
	// change log entry of its change set, else the users table; a
	// registry's department for a registry conflict), or "".
	Department string
	// StoredDepartment is the department of the user whose change wrote
	// the stored value (the change log's latest entry before the
	// incoming change that changed the field), or "".
	StoredDepartment string
}

// QuarantineEntry is a rejected change kept with its reason and raw form.
type QuarantineEntry struct {
	ID          string
	ChangesetID string
	DeviceID    string
	UserID      string
	Entity      string
	RecordID    string
	Village     string
	Errors      []FieldError
	Raw         json.RawMessage
	ReceivedAt  time.Time
	// State is open until a supervisor closes the entry (closed).
	State string
	// Closed is the supervisor's closing decision, or nil.
	Closed *QueueDecision
	// HouseholdName is the head of the stored household the change is or
	// belongs to, when there is one (personal data: never logged).
	HouseholdName string
}

// PushTx is the store's write transaction as the push algorithm sees it.
// Every method works inside one transaction that the store commits, durably,
// only after the PushService's work in it returned without error
// (PushStore.WritePush).
type PushTx interface {
	// Receipt returns the stored receipt of a change set, or nil.
	Receipt(ctx context.Context, changesetID string) (*Receipt, error)
	// LastDeviceSeq returns the last device_seq accepted from a device (0
	// when none).
	LastDeviceSeq(ctx context.Context, deviceID string) (int64, error)
	// Record returns the stored record with the id, of any entity, or nil.
	Record(ctx context.Context, id string) (*StoredRecord, error)
	// WriteVersion stores rec as the record's current state and appends
	// entry to the change log; it returns the entry's global sequence.
	WriteVersion(ctx context.Context, rec *StoredRecord, entry LogEntry) (int64, error)
	// UpdateMeta replaces a record's per-field metadata without making a
	// version (an lww value confirmed later by another write).
	UpdateMeta(ctx context.Context, id string, meta map[string]FieldMeta) error
	// AddConflict records a decision.
	AddConflict(ctx context.Context, c ConflictEntry) error
	// AddQuarantine keeps a rejected change.
	AddQuarantine(ctx context.Context, q QuarantineEntry) error
	// SaveReceipt stores the change set's receipt and advances the
	// device's last accepted sequence.
	SaveReceipt(ctx context.Context, r Receipt) error
	// Head returns the highest global sequence written so far.
	Head(ctx context.Context) (int64, error)
	// SimilarHouseholds returns the live households of a village, other
	// than id, with the same registration number or the same head name.
	SimilarHouseholds(ctx context.Context, village, id, registrationNo, headName string) ([]*StoredRecord, error)
	// AddDuplicate records a suspected duplicate household (once per pair).
	AddDuplicate(ctx context.Context, d Duplicate) error
	// ChildPlacements returns where the records whose parent is id (a
	// household's inspections) stand: deleted ones too, in the store's
	// order of creation.
	ChildPlacements(ctx context.Context, id string) ([]Placement, error)
	// Rescope moves a record to village without making a version: it
	// appends entry (op "rescope", the record's version) to the change log
	// under a new sequence, makes that the record's sequence, and records
	// that it left from.Village, so that pulls of the new village return
	// it and pulls of the old one return it as removed.
	Rescope(ctx context.Context, from Placement, village string, entry LogEntry) error
}

// ContentHash is the SHA-256 of a change set's canonical JSON, by which a
// replay is told from another change set reusing the same id.
func ContentHash(cs Changeset) string {
	b, _ := json.Marshal(cs)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// apply runs the push algorithm of PROTOCOL.md inside tx for a change set
// prepared by prepare: replay detection, device ordering, scope checks,
// and for every change validation, merge, versioning, conflict recording
// or quarantine. now is the server's clock at the write.
func (p *PushService) apply(ctx context.Context, tx PushTx, actor Actor, cs Changeset, prep prepared, now time.Time) (PushResponse, error) {
	sch := p.schema
	now = now.UTC()
	hash := prep.hash
	rc, err := tx.Receipt(ctx, cs.ChangesetID)
	if err != nil {
		return PushResponse{}, err
	}
	if rc != nil {
		if rc.ContentHash != hash {
			return PushResponse{}, &Error{Code: EConflict, Title: "Change set id reused",
				Message: "this changeset_id was already used for a change set with different content",
				Errors:  []FieldError{{Path: "changeset_id", Message: "already used with different content"}}}
		}
		var resp PushResponse
		if err := json.Unmarshal(rc.Response, &resp); err != nil {
			return PushResponse{}, fmt.Errorf("stored receipt %s: %w", cs.ChangesetID, err)
		}
		resp.Replayed = true
		return resp, nil
	}
	last, err := tx.LastDeviceSeq(ctx, cs.DeviceID)
	if err != nil {
		return PushResponse{}, err
	}
	if cs.DeviceSeq <= last {
		return PushResponse{}, &Error{Code: EConflict, Title: "Out-of-order device sequence",
			Message:       fmt.Sprintf("device_seq %d is not greater than the last accepted %d", cs.DeviceSeq, last),
			Errors:        []FieldError{{Path: "device_seq", Message: fmt.Sprintf("must be greater than %d", last)}},
			LastDeviceSeq: &last}
	}
	checked := prep.checked
	if len(checked) != len(cs.Changes) {
		return PushResponse{}, fmt.Errorf("change set %s: prepared for %d changes, has %d", cs.ChangesetID, len(checked), len(cs.Changes))
	}
	if err := checkScope(ctx, tx, sch, actor, cs, checked); err != nil {
		return PushResponse{}, err
	}

	rcpt := Receipt{ChangesetID: cs.ChangesetID, DeviceID: cs.DeviceID, DeviceSeq: cs.DeviceSeq,
		UserID: actor.UserID, ContentHash: hash, ReceivedAt: now, SchemaVersion: cs.SchemaVersion}
	resp := PushResponse{ChangesetID: cs.ChangesetID, Results: make([]ChangeResult, 0, len(cs.Changes))}
	for i := range cs.Changes {
		res, err := p.applyChange(ctx, tx, sch, actor, cs, i, checked[i], now)
		if err != nil {
			return PushResponse{}, err
		}
		switch res.Status {
		case StatusApplied:
			rcpt.Applied++
		case StatusMerged:
			rcpt.Merged++
		case StatusConflict:
			rcpt.Conflicts++
		case StatusRejected:
			rcpt.Rejected++
		}
		resp.Results = append(resp.Results, res)
	}
	head, err := tx.Head(ctx)
	if err != nil {
		return PushResponse{}, err
	}
	resp.Cursor = p.cursors.Encode(Cursor{Seq: head, Scope: actor.ScopeKey(), Device: actor.DeviceID})
	if rcpt.Response, err = json.Marshal(resp); err != nil {
		return PushResponse{}, err
	}
	if err := tx.SaveReceipt(ctx, rcpt); err != nil {
		return PushResponse{}, err
	}
	return resp, nil
}

// validated is a change's fields in canonical form and their errors.
type validated struct {
	fields map[string]json.RawMessage
	errs   []FieldError
	// sent is the change's fields as sent, when they were migrated from
	// an older schema version; nil otherwise.
	sent map[string]json.RawMessage
	// rederive, for a change migrated from an older schema version, makes
	// its derived fields follow their merged sources (RederiveMerged).
	rederive *schema.Rederivation
	// sentForm is the change's form in the version it was sent in, when
	// it was migrated (nil when that version lacks the entity).
	sentForm *schema.Form
}

func (p *PushService) applyChange(ctx context.Context, tx PushTx, sch *schema.Schema, actor Actor, cs Changeset, i int, v validated, now time.Time) (ChangeResult, error) {
	ch := cs.Changes[i]
	form := sch.Form(ch.Entity)
	res := ChangeResult{ID: ch.ID}
	at, _ := ParseTime(ch.At) // checked by DecodeChangeset
	if at.After(now.Add(MaxSkew)) {
		at = now
		res.Flags = append(res.Flags, FlagClockClamped)
	}

	fields, errs := v.fields, append([]FieldError(nil), v.errs...)
	stored, err := tx.Record(ctx, ch.ID)
	if err != nil {
		return res, err
	}
	if stored != nil && stored.Entity != ch.Entity {
		errs = append(errs, FieldError{Path: "id", Message: "belongs to a " + stored.Entity + ", not a " + ch.Entity})
		stored = nil
	}
	parent, village, refErrs, err := resolveRefs(ctx, tx, form, stored, fields)
	if err != nil {
		return res, err
	}
	errs = append(errs, refErrs...)
	if stored == nil && ch.Op == OpUpsert {
		// Every error of the change at once: a missing required field too,
		// not only on the push after the others were fixed.
		errs = AddMissing(errs, form.CheckCreate(fields, village))
	}
	var out Outcome
	if len(errs) == 0 {
		out = Merge(form, stored, Incoming{Op: ch.Op, BaseVersion: ch.BaseVersion, Fields: fields, At: at, Device: actor.DeviceID})
		out = RederiveMerged(v.rederive, ch.Entity, stored, fields, out)
		errs = out.Errors
	}
	if len(errs) == 0 {
		// The form's requirement rules, on the record as the merge leaves it.
		if errs, err = checkRules(ctx, tx, form, stored, out, village, now); err != nil {
			return res, err
		}
		if v.sent != nil {
			errs = declaredIn(v.sentForm, errs)
		}
	}
	var dec decision
	if len(errs) == 0 {
		// Who may set which values (the fields' write permissions), after
		// the rules and for every version alike.
		if dec, err = p.checkDecided(ctx, tx, form, actor, stored, fields, out, ch.ID, village, now); err != nil {
			return res, err
		}
		errs = dec.errs
	}
	if len(errs) > 0 {
		if village == "" && !actor.AllRegions && len(actor.Scope) == 1 {
			// The record's village cannot be told (an unknown household):
			// keep the change where its supervisors look.
			village = actor.Scope[0]
		}
		raw, _ := json.Marshal(ch)
		q := QuarantineEntry{ID: newID(), ChangesetID: cs.ChangesetID, DeviceID: actor.DeviceID, UserID: actor.UserID,
			Entity: ch.Entity, RecordID: ch.ID, Village: village, Errors: errs, Raw: raw, ReceivedAt: now}
		if err := tx.AddQuarantine(ctx, q); err != nil {
			return res, err
		}
		res.Status, res.Errors = StatusRejected, errs
		return res, nil
	}

	// The record is scoped by its state after the merge: a village (or a
	// household) change that opened a manual conflict does not move it.
	if parent, village, err = scopeAfter(ctx, tx, form, out.Fields, parent, village); err != nil {
		return res, err
	}
	res.Status, res.Version = out.Status, out.Version
	entry := LogEntry{Entity: ch.Entity, RecordID: ch.ID, Version: out.Version, Op: logOp(stored, ch.Op, out),
		ChangesetID: cs.ChangesetID, UserID: actor.UserID, Department: actor.Department, DeviceID: actor.DeviceID, DeviceAt: at, ServerAt: now,
		Flags: res.Flags, Changes: out.Changes, SchemaVersion: cs.SchemaVersion, Sent: v.sent}
	if len(dec.flags) > 0 {
		entry.Flags = append(append([]string(nil), res.Flags...), dec.flags...)
		entry.Note = dec.note
	}
	for _, d := range out.Decisions {
		c := ConflictEntry{ID: newID(), Entity: ch.Entity, RecordID: ch.ID, Village: village, Field: d.Field,
			Policy: string(d.Policy), Stored: d.Stored, Incoming: d.Incoming, Kept: d.Kept, State: d.State,
			ChangesetID: cs.ChangesetID, DeviceID: actor.DeviceID, UserID: actor.UserID, DeviceAt: at,
			CreatedAt: now, Version: out.Version}
		if err := tx.AddConflict(ctx, c); err != nil {
			return res, err
		}
		entry.ConflictIDs = append(entry.ConflictIDs, c.ID)
		res.Conflicts = append(res.Conflicts, ConflictReport{ConflictID: c.ID, Field: d.Field, Policy: c.Policy,
			Kept: d.Kept, Incoming: d.Incoming, Stored: d.Stored, State: d.State})
	}
	if len(out.Changes) == 0 {
		if out.MetaTouched {
			return res, tx.UpdateMeta(ctx, ch.ID, out.Meta)
		}
		return res, nil
	}
	rec := &StoredRecord{Entity: ch.Entity, ID: ch.ID, Version: out.Version, Fields: out.Fields, Meta: out.Meta,
		Deleted: out.Deleted, Village: village, Parent: parent, UpdatedAt: now, UpdatedBy: actor.UserID,
		UpdatedDevice: actor.DeviceID}
	if stored != nil {
		rec.MergedInto = stored.MergedInto
	}
	if err := writeVersion(ctx, tx, stored, rec, entry); err != nil {
		return res, err
	}
	if stored == nil && ch.Entity == "household" {
		if err := flagDuplicates(ctx, tx, rec, now); err != nil {
			return res, err
		}
	}
	return res, nil
}

// nearMeters is how close two locations must be for households of the same
// head name to count as one registered twice.
const nearMeters = 100

// flagDuplicates records, for a household just created, the households of
// its village that look like the same one registered twice offline: the
// same registration number, or the same head name at a location within
// nearMeters.
func flagDuplicates(ctx context.Context, tx PushTx, rec *StoredRecord, now time.Time) error {
	regNo, _ := stringField(rec.Fields, "registration_no")
	name, _ := stringField(rec.Fields, "head_name")
	if _, located := rec.Fields["location"]; !located {
		name = "" // a name alone is not enough: it takes a name and a place
	}
	if regNo == "" && name == "" {
		return nil
	}
	similar, err := tx.SimilarHouseholds(ctx, rec.Village, rec.ID, regNo, name)
	if err != nil {
		return err
	}
	for _, o := range similar {
		reason := ""
		if other, _ := stringField(o.Fields, "registration_no"); regNo != "" && other == regNo {
			reason = "same registration number " + regNo
		} else if d, ok := distance(rec.Fields["location"], o.Fields["location"]); ok && d <= nearMeters {
			reason = fmt.Sprintf("same head name %s, %.0f m apart", name, d)
		}
		if reason == "" {
			continue
		}
		if err := tx.AddDuplicate(ctx, Duplicate{ID: newID(), Village: rec.Village, HouseholdA: o.ID, HouseholdB: rec.ID,
			Reason: reason, State: StateOpen, CreatedAt: now}); err != nil {
			return err
		}
	}
	return nil
}

// distance returns the distance in metres between two canonical locations.
func distance(a, b json.RawMessage) (float64, bool) {
	var p, q struct{ Lat, Lon float64 }
	if len(a) == 0 || len(b) == 0 || json.Unmarshal(a, &p) != nil || json.Unmarshal(b, &q) != nil {
		return 0, false
	}
	const r = 6371000.0
	rad := math.Pi / 180
	dLat, dLon := (q.Lat-p.Lat)*rad, (q.Lon-p.Lon)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(p.Lat*rad)*math.Cos(q.Lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Sqrt(h)), true
}

func logOp(stored *StoredRecord, op string, out Outcome) string {
	switch {
	case stored == nil:
		return "create"
	case op == OpDelete:
		return "delete"
	case len(out.Decisions) > 0:
		return "merge"
	}
	return "update"
}

// resolveRefs checks the reference fields of a change (an inspection's
// household must exist and not be deleted; a re-inspection must point to an
// inspection of the same household) and works out the record's parent and
// the village that scopes it after the change.
func resolveRefs(ctx context.Context, tx PushTx, form *schema.Form, stored *StoredRecord, fields map[string]json.RawMessage) (parent, village string, errs []FieldError, err error) {
	if stored != nil {
		parent, village = stored.Parent, stored.Village
	}
	if form.ScopeField != "" {
		if v, ok := stringField(fields, form.ScopeField); ok {
			village = v
		}
	}
	if form.Parent != nil {
		if v, ok := stringField(fields, form.Parent.Field); ok {
			parent = v
		}
	}
	for _, name := range sortedKeys(fields) {
		fd := form.Field(name)
		if fd == nil || fd.Type != schema.TypeReference {
			continue
		}
		id, ok := stringField(fields, name)
		if !ok {
			continue
		}
		ref, err := tx.Record(ctx, id)
		if err != nil {
			return "", "", nil, err
		}
		path := "fields." + name
		switch {
		case ref == nil || ref.Entity != fd.Entity:
			errs = append(errs, FieldError{Path: path, Message: "no " + fd.Entity + " with this id"})
		case ref.Deleted:
			msg := "refers to a deleted " + fd.Entity
			if ref.MergedInto != "" {
				msg += "; it was merged into " + ref.MergedInto
			}
			errs = append(errs, FieldError{Path: path, Message: msg})
		case fd.SameParent && ref.Parent != parent:
			errs = append(errs, FieldError{Path: path, Message: "must be a " + fd.Entity + " of the same " + form.Parent.Entity})
		case form.Parent != nil && name == form.Parent.Field:
			village = ref.Village
		}
	}
	return parent, village, errs, nil
}

// scopeAfter returns the parent and village of a record whose fields are
// fields after the merge; parent and village are the ones found before,
// kept when the fields name nothing else.
func scopeAfter(ctx context.Context, tx PushTx, form *schema.Form, fields map[string]json.RawMessage, parent, village string) (string, string, error) {
	if form.ScopeField != "" {
		if v, ok := stringField(fields, form.ScopeField); ok {
			village = v
		}
	}
	// The village found for parent is already right; only a different
	// parent (a household change the merge kept) needs a lookup.
	if form.Parent != nil {
		if pid, ok := stringField(fields, form.Parent.Field); ok && pid != parent {
			p, err := tx.Record(ctx, pid)
			if err != nil {
				return "", "", err
			}
			if p != nil {
				parent, village = pid, p.Village
			}
		}
	}
	return parent, village, nil
}

func stringField(fields map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := fields[name]
	if !ok || bytes.Equal(raw, schema.Null) {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// checkScope refuses the whole change set when any change touches a record
// outside the actor's scope: the record's current village, the village a
// household would move to, or the village of an inspection's household.
// Households created earlier in the same change set count by their new
// village.
func checkScope(ctx context.Context, tx PushTx, sch *schema.Schema, actor Actor, cs Changeset, checked []validated) error {
	if actor.AllRegions {
		return nil
	}
	created := map[string]string{} // household id -> village, from this change set
	var errs []FieldError
	for i, ch := range cs.Changes {
		form := sch.Form(ch.Entity)
		path := fmt.Sprintf("changes[%d]", i)
		// Judge the canonical values (ids lower-cased, text trimmed), the
		// same the change would be applied with.
		fields := checked[i].fields
		var villages []string
		stored, err := tx.Record(ctx, ch.ID)
		if err != nil {
			return err
		}
		if stored != nil {
			villages = append(villages, stored.Village)
		}
		if form.ScopeField != "" {
			if v, ok := stringField(fields, form.ScopeField); ok {
				villages = append(villages, v)
				created[ch.ID] = v
			}
		}
		if form.Parent != nil {
			if pid, ok := stringField(fields, form.Parent.Field); ok {
				if v, ok := created[pid]; ok {
					villages = append(villages, v)
				} else if p, err := tx.Record(ctx, pid); err != nil {
					return err
				} else if p != nil {
					villages = append(villages, p.Village)
				}
			}
		}
		for _, v := range villages {
			if v != "" && !actor.InScope(v) {
				errs = append(errs, FieldError{Path: path, Message: "touches a record outside your scope"})
				break
			}
		}
	}
	if len(errs) > 0 {
		return &Error{Code: EForbidden, Title: "Outside your scope",
			Message: "the change set touches records outside your scope; nothing was written", Errors: errs}
	}
	return nil
}

// newID returns a UUIDv7 (time-ordered) string.
func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
