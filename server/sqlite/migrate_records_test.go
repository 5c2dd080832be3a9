package sqlite

import (
	"context"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// fixtureCatalog loads versions 1..n of schema/testdata/migrations
// (storetest.FixtureCatalog).
func fixtureCatalog(t *testing.T, n int) *schema.Catalog { return storetest.FixtureCatalog(t, n) }

// failingMigrator fails the migration at its nth record, after the
// records before it were rewritten in the transaction.
type failingMigrator struct {
	*Store
	n int
}

var errInjected = storetest.ErrInjected

func (f failingMigrator) MigrateRecords(ctx context.Context, to int, fn func(*syncproto.StoredRecord) error) error {
	return storetest.FailingMigrator{Store: f.Store, N: f.n}.MigrateRecords(ctx, to, fn)
}

// TestPublishingMigratesStoredRecords runs the store contract's publishing
// test (storetest.PublishingMigratesStoredRecords) on this store.
func TestPublishingMigratesStoredRecords(t *testing.T) {
	storetest.PublishingMigratesStoredRecords(t, func(t testing.TB, clock *storetest.Clock) syncproto.Store { return MustOpen(t, clock) })
}
