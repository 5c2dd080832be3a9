package syncproto

import (
	"context"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/verify"
)

// SupervisionWriter is the write the supervisors' decisions need of a
// store: one durable write transaction per decision. The SQLite store
// implements it on its single writer; a PostgreSQL store must implement it
// too (server/storetest holds the contract).
type SupervisionWriter interface {
	// WriteSupervision runs fn inside one durable write transaction and
	// returns once it is committed and on disk. op names the decision
	// (resolve, merge, dismiss, close_quarantine) for the store's
	// observers; fn must use the context it is given. When fn returns an
	// error, nothing fn wrote is kept and WriteSupervision returns that
	// error (the store may translate a database failure into an *Error: a
	// full disk, a busy database); when the commit fails, it returns that
	// failure and nothing is kept. A caller that goes away does not cancel
	// the write (fn's context outlives it). After the store began to
	// close, it refuses with EUnavailable without calling fn.
	WriteSupervision(ctx context.Context, op string, fn func(ctx context.Context, tx SuperviseTx) error) error
}

// SupervisionService is the supervisors' decisions as a service over a
// store: resolving a conflict, merging or dismissing a suspected duplicate
// household, closing a quarantine entry. It owns the schema a resolution's
// value is checked against and the clock the decisions are dated by; each
// decision runs in one SupervisionWriter.WriteSupervision.
type SupervisionService struct {
	store  SupervisionWriter
	schema *schema.Schema
	now    func() time.Time
	// verifier judges the household whose decided value a resolution
	// sets (judgeWrite); nil when the schema declares no verification.
	verifier *verify.Verifier
}

// SupervisionOptions configure a SupervisionService.
type SupervisionOptions struct {
	// Schema is the set of forms a resolution's value is checked against;
	// schema.V1() when nil. The server gives it the schema its pushes are
	// validated against.
	Schema *schema.Schema
	// Now is the clock; time.Now when nil. Tests set it.
	Now func() time.Time
}

// NewSupervisionService returns the supervision service over store.
func NewSupervisionService(store SupervisionWriter, opts SupervisionOptions) *SupervisionService {
	if opts.Schema == nil {
		opts.Schema = schema.V1()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	verifier, _ := verify.New(opts.Schema) // nil without a verification
	return &SupervisionService{store: store, schema: opts.Schema, now: opts.Now, verifier: verifier}
}

// supervise runs decide in one write transaction of the store, dated by
// the service's clock when the transaction begins, and returns its value
// with the write's error.
func supervise[T any](ctx context.Context, s *SupervisionService, op string, decide func(context.Context, SuperviseTx, time.Time) (T, error)) (T, error) {
	var v T
	err := s.store.WriteSupervision(ctx, op, func(ctx context.Context, tx SuperviseTx) error {
		var err error
		v, err = decide(ctx, tx, s.now())
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// ResolveConflict applies a supervisor's decision on a conflict as a new
// version of the record, in one transaction (see resolveConflict for what
// it does and the errors it returns).
func (s *SupervisionService) ResolveConflict(ctx context.Context, actor Actor, r Resolution) (ResolveResult, error) {
	return supervise(ctx, s, "resolve", func(ctx context.Context, tx SuperviseTx, now time.Time) (ResolveResult, error) {
		return resolveConflict(ctx, tx, s.schema, s.verifier, actor, r, now)
	})
}

// MergeHouseholds merges the two households of suspected duplicate id
// into survivor, in one transaction (see mergeHouseholds).
func (s *SupervisionService) MergeHouseholds(ctx context.Context, actor Actor, id, survivor, note string) (MergeResult, error) {
	return supervise(ctx, s, "merge", func(ctx context.Context, tx SuperviseTx, now time.Time) (MergeResult, error) {
		return mergeHouseholds(ctx, tx, actor, id, survivor, note, now)
	})
}

// DismissDuplicate decides that suspected duplicate id is two different
// households, in one transaction (see dismissDuplicate).
func (s *SupervisionService) DismissDuplicate(ctx context.Context, actor Actor, id, note string) (Duplicate, error) {
	return supervise(ctx, s, "dismiss", func(ctx context.Context, tx SuperviseTx, now time.Time) (Duplicate, error) {
		return dismissDuplicate(ctx, tx, actor, id, note, now)
	})
}

// CloseQuarantine closes quarantine entry id with the supervisor's note,
// in one transaction (see closeQuarantine).
func (s *SupervisionService) CloseQuarantine(ctx context.Context, actor Actor, id, note string) (QuarantineEntry, error) {
	return supervise(ctx, s, "close_quarantine", func(ctx context.Context, tx SuperviseTx, now time.Time) (QuarantineEntry, error) {
		return closeQuarantine(ctx, tx, actor, id, note, now)
	})
}
