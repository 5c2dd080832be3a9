package api_test

import (
	"testing"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
)

// mustServeV1 is a harness server whose form set is version 1 alone
// (schema.BuiltInThrough(1)): for the tests of version 1's behaviour — its
// water indicators and thresholds, its fields in snapshots — which the
// built-in set's later versions would otherwise change under them.
func mustServeV1(tb testing.TB, configure func(*api.Config)) *apitest.Server {
	tb.Helper()
	return apitest.MustServeConfig(tb, sqlite.Options{}, func(c *api.Config) {
		c.Catalog = schema.BuiltInThrough(1)
		if configure != nil {
			configure(c)
		}
	})
}
