package syncproto

import (
	"context"
	"errors"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/verify"
)

// PushStore is what the push service needs of a store: one batched write
// for pushes, one for the replays of exported outboxes (OutboxStore), and
// the key its cursors are signed with. The SQLite store implements it with
// a group commit; a PostgreSQL store must implement it too.
type PushStore interface {
	OutboxStore
	// WritePush runs fn inside a durable write transaction, possibly
	// shared with other change sets, and returns once that transaction is
	// committed and on disk. changes is the size of the change set, by
	// which a store may bound a shared transaction; fn must use the
	// context it is given. When fn returns an error, nothing fn wrote is
	// kept and WritePush returns that error (the store may translate a
	// database failure into an *Error: a full disk, a busy database); when
	// the commit fails, WritePush returns that failure and nothing is
	// kept. A caller that goes away does not cancel the write (fn's
	// context outlives it): it is applied or not, whole. After the store began to close, WritePush
	// refuses with EUnavailable without calling fn.
	WritePush(ctx context.Context, changes int, fn func(ctx context.Context, tx PushTx) error) error
	// CursorKey returns the key the cursors of this database are signed
	// with (created with the database, so that a backup restores it with
	// the change log its cursors point into).
	CursorKey() []byte
}

// PushService is the push of PROTOCOL.md as a service over a store: it owns
// the schema change sets are validated against, the codec of the cursors
// the server issues and the clock. A push is prepared (hashed, validated)
// outside the store's writer, then applied in one PushStore.WritePush.
type PushService struct {
	store   PushStore
	schema  *schema.Schema
	catalog *schema.Catalog
	cursors *CursorCodec
	now     func() time.Time
	// verifier judges a household whose decided value a change sets
	// (checkDecided); nil when the schema declares no verification.
	verifier *verify.Verifier
}

// PushOptions configure a PushService.
type PushOptions struct {
	// Schema is the set of forms changes are validated against; schema.V1()
	// when nil. With Catalog, its latest version (Schema is ignored).
	Schema *schema.Schema
	// Catalog holds every version of the forms: a change set sent in an
	// older version is migrated on arrival to the latest (Catalog.Up).
	// Without it only Schema's version is accepted.
	Catalog *schema.Catalog
	// Now is the clock; time.Now when nil. Tests set it.
	Now func() time.Time
}

// NewPushService returns the push service over store, signing cursors with
// the store's CursorKey.
func NewPushService(store PushStore, opts PushOptions) *PushService {
	if opts.Catalog != nil {
		opts.Schema = opts.Catalog.Latest()
	}
	if opts.Schema == nil {
		opts.Schema = schema.V1()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	verifier, _ := verify.New(opts.Schema) // nil without a verification
	return &PushService{store: store, schema: opts.Schema, catalog: opts.Catalog, cursors: NewCursorCodec(store.CursorKey()), now: opts.Now, verifier: verifier}
}

// Cursors is the codec of the cursors the server issues: pull, checksum,
// snapshot, history and list positions.
func (p *PushService) Cursors() *CursorCodec { return p.cursors }

// Push applies a decoded change set for actor in one durable transaction
// and returns its response once that is on disk. actor is the
// authenticated caller; its DeviceID must equal cs.DeviceID (the HTTP
// adapter checks it).
//
// It returns EConflict for a reused id with other content or an
// out-of-order device_seq, EForbidden when any change touches a record
// outside the actor's scope, EUnavailable while the store shuts down or
// when it cannot write for now; in those cases nothing is written.
func (p *PushService) Push(ctx context.Context, actor Actor, cs Changeset) (PushResponse, error) {
	prep := p.prepare(cs, p.now())
	var resp PushResponse
	err := p.store.WritePush(ctx, len(cs.Changes), func(ctx context.Context, tx PushTx) error {
		var err error
		resp, err = p.apply(ctx, tx, actor, cs, prep, p.now())
		return err
	})
	if err != nil {
		return PushResponse{}, err
	}
	return resp, nil
}

// prepared is the part of applying a change set that needs no store: its
// content hash and every change validated against its form.
type prepared struct {
	hash    string
	checked []validated
}

// prepare hashes and validates a change set before it queues for the
// store's single writer, so that the writer does only what needs the
// database. now is the server's clock, which date ranges relative to
// today are measured from.
func (p *PushService) prepare(cs Changeset, now time.Time) prepared {
	// Validate every change once: the scope check and the merge both work
	// on the canonical values.
	prep := prepared{hash: ContentHash(cs), checked: make([]validated, len(cs.Changes))}
	var rederive *schema.Rederivation
	if cs.SchemaVersion != p.schema.Version && p.catalog != nil {
		// A derived field of a migrated change follows its merged source
		// (RederiveMerged, after the merge).
		rederive = p.catalog.Rederivation(cs.SchemaVersion)
	}
	for i, ch := range cs.Changes {
		fields := ch.Fields
		if cs.SchemaVersion != p.schema.Version && p.catalog != nil && ch.Op == OpUpsert {
			// A change is first checked against the version it was sent
			// in, so that an older tablet gets the errors it always got
			// (every one, in its version's words), then migrated.
			if sent := p.catalog.Version(cs.SchemaVersion).Form(ch.Entity); sent != nil {
				if valid, errs := sent.ValidateAt(ch.Fields, now); len(errs) > 0 {
					prep.checked[i].fields, prep.checked[i].errs = valid, errs
					continue
				}
			}
			up, _, err := p.catalog.Up(cs.SchemaVersion, ch.Entity, ch.Fields, ch.BaseVersion == 0)
			if err != nil {
				prep.checked[i].errs = migrationErrors(err)
				continue
			}
			fields, prep.checked[i].sent, prep.checked[i].rederive = up, ch.Fields, rederive
			prep.checked[i].sentForm = p.catalog.Version(cs.SchemaVersion).Form(ch.Entity)
		}
		prep.checked[i].fields, prep.checked[i].errs = p.schema.Form(ch.Entity).ValidateAt(fields, now)
	}
	return prep
}

// ReplayOutbox applies the change sets of an exported outbox, in order, as
// their original device (replayChangeset), in one durable transaction of
// the store (OutboxStore.WriteReplay), each in its own savepoint: a refused
// one is reported in its ReplayedSet and the others go on. An error return
// means nothing was written.
func (p *PushService) ReplayOutbox(ctx context.Context, original, replayer Actor, sets []Changeset) ([]ReplayedSet, error) {
	out := make([]ReplayedSet, len(sets))
	now := p.now()
	err := p.store.WriteReplay(ctx, len(sets), func(ctx context.Context, tx ReplayTx, i int) error {
		cs := sets[i]
		out[i] = ReplayedSet{ChangesetID: cs.ChangesetID, DeviceSeq: cs.DeviceSeq}
		resp, err := p.replayChangeset(ctx, tx, original, replayer, cs, now)
		var se *Error
		if errors.As(err, &se) {
			out[i].Err = err
		} else if err == nil {
			out[i].Response = resp
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// migrationErrors are the errors of a change that its migration from an
// older schema version refused, each at its path in the change.
func migrationErrors(err error) []FieldError {
	var me *schema.MigrationError
	if errors.As(err, &me) && len(me.Errors) > 0 {
		out := make([]FieldError, len(me.Errors))
		for i, fe := range me.Errors {
			out[i] = FieldError{Path: fe.Path, Message: fe.Message}
		}
		return out
	}
	return []FieldError{{Path: "fields", Message: "cannot be migrated to the latest schema version"}}
}

// Catalog returns the versions of the forms the service accepts; nil when
// it was given only one Schema.
func (p *PushService) Catalog() *schema.Catalog { return p.catalog }
