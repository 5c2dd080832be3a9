package postgres

import (
	"testing"

	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestPublishingMigratesStoredRecords runs the store contract's publishing
// test (storetest.PublishingMigratesStoredRecords), the one the SQLite
// store runs, on this store.
func TestPublishingMigratesStoredRecords(t *testing.T) {
	storetest.PublishingMigratesStoredRecords(t, func(t testing.TB, clock *storetest.Clock) syncproto.Store { return MustOpen(t, clock) })
}
