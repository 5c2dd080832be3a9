package console_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/syncproto"
)

// countingStore is the real store counting the reads of households with
// their records: each HouseholdInspections and RegistryVillages (the
// reports read households through either), for the village named.
type countingStore struct {
	*sqlite.Store
	village string
	reads   atomic.Int64
}

func (s *countingStore) count(actor syncproto.Actor) {
	if len(actor.Scope) == 1 && actor.Scope[0] == s.village && !actor.AllRegions {
		s.reads.Add(1)
	}
}

func (s *countingStore) HouseholdInspections(ctx context.Context, actor syncproto.Actor, q syncproto.HouseholdQuery, emit func(*survey.HouseholdInspections) error) (syncproto.Cursor, error) {
	s.count(actor)
	return s.Store.HouseholdInspections(ctx, actor, q, emit)
}

func (s *countingStore) RegistryVillages(ctx context.Context, actor syncproto.Actor, q syncproto.HouseholdQuery, emit func(*syncproto.RegistryVillage) error) (syncproto.Cursor, error) {
	s.count(actor)
	return s.Store.RegistryVillages(ctx, actor, q, emit)
}

// TestVillagePageReadsItsHouseholdsOnce: a village's page judges its
// households' verdicts and their follow-ups from one read of the
// village's households (ReportService.Judge), not one read for the
// verification and another for the follow-ups, which judged every
// verdict again.
func TestVillagePageReadsItsHouseholdsOnce(t *testing.T) {
	ts := demo(t)
	const village = "500240107201"
	divisions, err := schema.LoadDivisions(filepath.Join("..", "..", "fixtures", "divisions-demo.csv"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.OpenKeyring(ts.Dir, ts.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: ts.Store, village: village}
	counted := httptest.NewServer(api.New(api.Config{Store: store, Accounts: ts.Store, Keys: keys, Now: ts.Clock.Now,
		Rates: &api.RateLimits{}, Divisions: divisions}))
	t.Cleanup(counted.Close)
	v := newVisitor(t, ts.Beside(counted))
	v.signIn("supervisor.shizhu", nil)
	store.reads.Store(0)
	resp, page := v.do("GET", "/console/region/"+village, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("village page: %d %.300s", resp.StatusCode, page)
	}
	if figure(t, page, "fig-verified") == "" {
		t.Fatalf("the village page shows no verdicts: %.500s", page)
	}
	if n := store.reads.Load(); n != 1 {
		t.Errorf("the village page read its households %d times, want once", n)
	}
}
