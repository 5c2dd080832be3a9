package cli

import (
	"context"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// fixturesPush is the push service seed and generate load through: over
// the built-in form set, published in the store as serve publishes it, so
// that the fixtures (written in the latest built-in version) are stored
// in the version the records are recorded in and serve migrates nothing
// twice.
func fixturesPush(ctx context.Context, store syncproto.Store) (*syncproto.PushService, error) {
	cat, err := openCatalog(ctx, store, schema.BuiltIn())
	if err != nil {
		return nil, err
	}
	return syncproto.NewPushService(store, syncproto.PushOptions{Catalog: cat}), nil
}
