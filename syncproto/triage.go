package syncproto

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxNote is the longest note, in characters (Unicode code points, not
// bytes), that a supervisor's decision carries: a conflict's resolution, a
// duplicate's merge or dismissal, a quarantine entry's closing. 2000
// characters of Chinese are about 6000 bytes of UTF-8.
const MaxNote = 2000

// checkNote refuses a note over MaxNote characters and, when required, a
// blank one (EInvalid, path "note").
func checkNote(note string, required bool) error {
	switch {
	case required && strings.TrimSpace(note) == "":
		return &Error{Code: EInvalid, Title: "Note required", Message: "say why in a note",
			Errors: []FieldError{{Path: "note", Message: "is required"}}}
	case utf8.RuneCountInString(note) > MaxNote:
		return &Error{Code: EInvalid, Title: "Note too long", Message: "the note is too long",
			Errors: []FieldError{{Path: "note", Message: fmt.Sprintf("must be at most %d characters", MaxNote)}}}
	}
	return nil
}

// openDuplicate returns the suspected duplicate id for a decision by
// actor: ENotFound when there is none, EForbidden outside the actor's
// scope, EConflict when it was already decided.
func openDuplicate(ctx context.Context, tx SuperviseTx, actor Actor, id string) (*Duplicate, error) {
	d, err := tx.Duplicate(ctx, id)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, Errorf(ENotFound, "no duplicate %s", id)
	}
	if !actor.InScope(d.Village) {
		return nil, Errorf(EForbidden, "this duplicate is outside your scope")
	}
	if d.State != StateOpen {
		return nil, Errorf(EConflict, "this duplicate was already %s", d.State)
	}
	return d, nil
}

// dismissDuplicate decides that a suspected duplicate is two different
// households: the pair is dismissed with the supervisor's note (required),
// who and when, and both households stay as they are. It returns
// ENotFound, EForbidden outside the actor's scope, EConflict when the
// duplicate was already decided, EInvalid (path "note") for a blank or
// overlong note.
func dismissDuplicate(ctx context.Context, tx SuperviseTx, actor Actor, id, note string, now time.Time) (Duplicate, error) {
	d, err := openDuplicate(ctx, tx, actor, id)
	if err != nil {
		return Duplicate{}, err
	}
	if err := checkNote(note, true); err != nil {
		return Duplicate{}, err
	}
	d.State, d.DecidedAt, d.DecidedBy, d.Note = StateDismissed, now.UTC(), actor.UserID, note
	if err := tx.MarkDecided(ctx, *d); err != nil {
		return Duplicate{}, err
	}
	return *d, nil
}

// closeQuarantine closes a quarantine entry: the supervisor has dealt with
// the rejected change (the tablet sent it again corrected, or it is not to
// be kept) and says how in a note (required). The raw change and its
// reasons stay. It returns ENotFound, EForbidden outside the actor's
// scope, EConflict for an entry already closed, EInvalid (path "note") for
// a blank or overlong note.
func closeQuarantine(ctx context.Context, tx SuperviseTx, actor Actor, id, note string, now time.Time) (QuarantineEntry, error) {
	q, err := tx.QuarantineEntry(ctx, id)
	if err != nil {
		return QuarantineEntry{}, err
	}
	if q == nil {
		return QuarantineEntry{}, Errorf(ENotFound, "no quarantine entry %s", id)
	}
	if !actor.InScope(q.Village) {
		return QuarantineEntry{}, Errorf(EForbidden, "this quarantine entry is outside your scope")
	}
	if q.State == StateClosed {
		return QuarantineEntry{}, Errorf(EConflict, "this quarantine entry was already closed")
	}
	if err := checkNote(note, true); err != nil {
		return QuarantineEntry{}, err
	}
	q.State = StateClosed
	q.Closed = &QueueDecision{By: actor.UserID, Note: note, At: now.UTC()}
	if err := tx.MarkClosed(ctx, *q); err != nil {
		return QuarantineEntry{}, err
	}
	return *q, nil
}
