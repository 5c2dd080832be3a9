package postgres

import (
	"context"
	"testing"

	"github.com/fieldsync/fieldsync/server/postgres/pgtest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestMain starts the test cluster; every test's database is a copy of a
// template the migrations were applied to once (without its cursor
// secret, so that each store makes its own), so a test does not pay for
// them.
func TestMain(m *testing.M) {
	pgtest.MainWithTemplate(m, func(ctx context.Context, url string) error {
		s, err := Open(ctx, url, Options{})
		if err != nil {
			return err
		}
		if _, err := s.pool.Exec(ctx, `DELETE FROM settings`); err != nil {
			s.Close()
			return err
		}
		return s.Close()
	})
}

// MustOpen opens a store on a new database of the test cluster and closes
// it when the test ends.
func MustOpen(tb testing.TB, clock *storetest.Clock) *Store {
	tb.Helper()
	return mustOpenURL(tb, pgtest.DB(tb), clock)
}

// mustOpenURL opens another store (another pool: another instance) on
// the database at url.
func mustOpenURL(tb testing.TB, url string, clock *storetest.Clock) *Store {
	tb.Helper()
	s, err := Open(context.Background(), url, Options{Now: clock.Now})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// TestContract runs the store contract suite on PostgreSQL.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t testing.TB, clock *storetest.Clock) syncproto.Store { return MustOpen(t, clock) })
}

// pushes is the push service over s, on the v1 schema and the store's
// clock, as the server builds it.
func pushes(s *Store) *syncproto.PushService {
	return syncproto.NewPushService(s, syncproto.PushOptions{Now: s.now})
}

// supervision is the supervision service over s, on the v1 schema and the
// store's clock.
func supervision(s *Store) *syncproto.SupervisionService {
	return syncproto.NewSupervisionService(s, syncproto.SupervisionOptions{Now: s.now})
}
