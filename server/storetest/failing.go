package storetest

import (
	"context"

	"github.com/fieldsync/fieldsync/syncproto"
)

// FailingAfter is a store whose pushes fail, as Fail says, after the push
// service's work in the transaction succeeded: all of a change set's
// writes are made, then its callback returns Fail's error (nil: it
// succeeds). The group-commit tests of the stores use it for a change set
// that fails beside others in one transaction.
type FailingAfter struct {
	syncproto.PushStore
	// Fail is given the push's context (see WithChangeset).
	Fail func(ctx context.Context) error
}

// WritePush runs apply through the store, then Fail.
func (f FailingAfter) WritePush(ctx context.Context, changes int, apply func(context.Context, syncproto.PushTx) error) error {
	return f.PushStore.WritePush(ctx, changes, func(ctx context.Context, tx syncproto.PushTx) error {
		if err := apply(ctx, tx); err != nil {
			return err
		}
		return f.Fail(ctx)
	})
}

type changesetKey struct{}

// WithChangeset returns ctx carrying a change set's id, for a Fail that
// decides by it (ChangesetOf).
func WithChangeset(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, changesetKey{}, id)
}

// ChangesetOf returns the change-set id WithChangeset put in ctx.
func ChangesetOf(ctx context.Context) string {
	id, _ := ctx.Value(changesetKey{}).(string)
	return id
}
