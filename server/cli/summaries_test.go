package cli

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestSummariesRejudgedInTheBackground: the job serve starts
// (keepSummaries) judges the coverage sums again once the clock passes a
// standard's edition (T/CHES 18-2018 on 2019-01-01), with no read asking
// for it: afterwards the sums equal the coverage scan of the day and say
// that day. And a rejudge stopped in the middle by the server's stop
// (the fieldsync 3 editions of 2021-01-01; one batch of one village done,
// the store closed) is finished by the job of the next start on the same
// SQLite file, the old sums served until then.
func TestSummariesRejudgedInTheBackground(t *testing.T) {
	ctx := context.Background()
	latest := schema.BuiltIn().Latest()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eve := time.Date(2018, 12, 30, 9, 0, 0, 0, time.UTC)
	after := time.Date(2019, 1, 2, 9, 0, 0, 0, time.UTC)
	// A server of its own, on a SQLite file, at eve: its households
	// pushed, the summaries kept and the background job running.
	type server struct {
		path  string
		clock *storetest.Clock
		store *sqlite.Store
		stop  func()
	}
	start := func(s *server) {
		t.Helper()
		var err error
		if s.store, err = sqlite.Open(ctx, s.path, sqlite.Options{Now: s.clock.Now}); err != nil {
			t.Fatal(err)
		}
		if s.stop, err = keepSummaries(ctx, s.store, latest, s.clock.Now, 10*time.Millisecond, log); err != nil {
			t.Fatal(err)
		}
	}
	stop := func(s *server) {
		t.Helper()
		s.stop()
		if err := s.store.Close(); err != nil {
			t.Fatal(err)
		}
	}
	newServer := func() *server {
		t.Helper()
		s := &server{path: filepath.Join(t.TempDir(), sqlite.FileName), clock: storetest.NewClock(eve)}
		start(s)
		t.Cleanup(func() { s.stop(); s.store.Close() })
		p := syncproto.NewPushService(s.store, syncproto.PushOptions{Catalog: schema.BuiltIn(), Now: s.clock.Now})
		w := storetest.NewDevice("worker")
		for _, village := range []string{storetest.SouthVillage, "500240107202", "500240108203"} {
			hh := uuid.NewString()
			w.Push(t, p, storetest.Household(hh, village, eve), storetest.WaterInspection(uuid.NewString(), hh, eve))
		}
		return s
	}
	read := func(s *server) (map[string]survey.CoverageCounts, string) {
		t.Helper()
		got := map[string]survey.CoverageCounts{}
		at, err := s.store.AreaSummaries(ctx, storetest.All, survey.LevelVillage, s.clock.Now(), func(a *survey.AreaCoverage) error {
			got[a.Code] = a.Counts
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got, at.JudgedAsOf
	}
	scanned := func(s *server) map[string]survey.CoverageCounts {
		t.Helper()
		rep := syncproto.NewReportService(s.store, syncproto.ReportOptions{Schema: latest, Now: s.clock.Now})
		got := map[string]survey.CoverageCounts{}
		if _, err := rep.Coverage(ctx, storetest.All, func(v *survey.VillageCoverage) error {
			got[v.Code] = v.Counts
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	waitFor := func(s *server, day string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, judged := read(s)
			if judged == day {
				if want := scanned(s); !reflect.DeepEqual(got, want) {
					t.Fatalf("judged as of %s: %+v; the scan of the day %+v", day, got, want)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the sums still say %s, not %s", judged, day)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// The day's turn, the server running.
	a := newServer()
	eveSums, _ := read(a)
	a.clock.Advance(after.Sub(eve))
	if reflect.DeepEqual(eveSums, scanned(a)) {
		t.Fatal("T/CHES 18-2018 changes nothing of these households: the test would prove nothing")
	}
	waitFor(a, "2019-01-02")

	// The server stops in the middle of a rejudge (its job not yet on:
	// stopped, one batch made by hand) and starts again.
	b := newServer()
	b.stop()
	b.clock.Advance(after.Sub(eve))
	if left, err := b.store.RejudgeSummaries(ctx, b.clock.Now(), 1); err != nil || left != 2 {
		t.Fatalf("one batch of one village: %d left, %v", left, err)
	}
	if got, day := read(b); reflect.DeepEqual(got, scanned(b)) || day != "2018-12-30" {
		t.Fatalf("in the middle: judged as of %q, %+v", day, got)
	}
	b.stop = func() {}
	stop(b)
	start(b)
	waitFor(b, "2019-01-02")
}
