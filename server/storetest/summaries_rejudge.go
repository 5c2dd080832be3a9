package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// testSummariesRejudgeOffTheReadPath asserts that once a standard's
// edition took effect (T/CHES 18-2018 on 2019-01-01: before it the water
// quantity criterion has no standard and is unrecorded), the reads answer
// from the sums as they were judged, saying that day (Cursor.JudgedAsOf),
// rebuilding nothing; that RejudgeSummaries judges them again village by
// village, a batch per call, with pushes between the batches judged as of
// the new day; that a KeepSummaries in the middle (what a restart does)
// resumes after the last village done rather than from the first; and
// that at the end the sums equal the coverage scan of the new day and the
// reads say the new day.
func testSummariesRejudgeOffTheReadPath(t *testing.T, open Opener) {
	eve := time.Date(2018, 12, 30, 9, 0, 0, 0, time.UTC)
	clock := NewClock(eve)
	s, p := Open(t, open, clock)
	ss := summaryStore(t, s)
	ctx := context.Background()
	latest := schema.BuiltIn().Latest()
	if err := ss.KeepSummaries(ctx, survey.NewSummarizer(latest), clock.Now()); err != nil {
		t.Fatal(err)
	}
	if left, err := ss.RejudgeSummaries(ctx, clock.Now(), 1); err != nil || left != 0 {
		t.Fatalf("rejudge with no edition due: %d left, %v", left, err)
	}
	dev := NewDevice("li.na")
	push := func(village string, at time.Time) {
		t.Helper()
		hh := uuid.NewString()
		dev.Push(t, p, Household(hh, village, at), Upsert("water_inspection", uuid.NewString(), 0, at, map[string]any{
			"household_id": hh, "inspected_on": at.Format(time.DateOnly), "source": "piped", "quality_ok": true,
			"liters_per_person_day": 80, "fetch_minutes": 5, "reliability_pct": 97}))
	}
	for _, v := range summaryVillages {
		push(v, eve)
	}
	counts := func(today time.Time) (map[string]survey.CoverageCounts, string) {
		t.Helper()
		got := map[string]survey.CoverageCounts{}
		at, err := ss.AreaSummaries(ctx, All, survey.LevelVillage, today, func(a *survey.AreaCoverage) error {
			got[a.Code] = a.Counts
			return nil
		})
		if err != nil {
			t.Fatalf("area summaries on %s: %v", today.Format(time.DateOnly), err)
		}
		return got, at.JudgedAsOf
	}
	scanned := func(today time.Time) map[string]survey.CoverageCounts {
		t.Helper()
		rep := syncproto.NewReportService(s, syncproto.ReportOptions{Schema: latest, Now: func() time.Time { return today }})
		got := map[string]survey.CoverageCounts{}
		if _, err := rep.Coverage(ctx, All, func(v *survey.VillageCoverage) error {
			got[v.Code] = v.Counts
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	judgedAsOf := func(today time.Time) []string {
		t.Helper()
		_, a, err := ss.NeverInspectedHouseholds(ctx, All, SouthVillage)
		if err != nil {
			t.Fatal(err)
		}
		_, b, err := ss.InspectionDays(ctx, All, "")
		if err != nil {
			t.Fatal(err)
		}
		c, err := ss.LaggingVillages(ctx, All, syncproto.LagBehind, 5, func(*survey.AreaCoverage) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		return []string{a.JudgedAsOf, b.JudgedAsOf, c.JudgedAsOf}
	}
	if got, day := counts(eve); !reflect.DeepEqual(got, scanned(eve)) || day != "2018-12-30" {
		t.Fatalf("summaries on the eve (judged as of %q) %+v, the report %+v", day, got, scanned(eve))
	}

	after := time.Date(2019, 1, 2, 9, 0, 0, 0, time.UTC)
	clock.Advance(after.Sub(eve))
	old := scanned(eve)
	if reflect.DeepEqual(old, scanned(after)) {
		t.Fatal("the edition changes nothing of these households: the test would prove nothing")
	}
	got, day := counts(after)
	if !reflect.DeepEqual(got, old) || day != "2018-12-30" {
		t.Fatalf("a read after the edition took effect, before the rejudge: judged as of %q, %+v; want the old sums %+v", day, got, old)
	}
	if days := judgedAsOf(after); !reflect.DeepEqual(days, []string{"2018-12-30", "2018-12-30", "2018-12-30"}) {
		t.Fatalf("the other reads say they are judged as of %v", days)
	}

	left, err := ss.RejudgeSummaries(ctx, after, 1)
	if err != nil || left != len(summaryVillages)-1 {
		t.Fatalf("first batch of one village: %d left, %v", left, err)
	}
	if _, day := counts(after); day != "2018-12-30" {
		t.Fatalf("in the middle of the rejudge the reads say %q, want the old day", day)
	}
	// Pushes in the middle: one to the village done (NorthVillage comes
	// first in code order), one to a village not yet done; both are
	// judged as of the new day.
	push(NorthVillage, after)
	push(SouthVillage, after)

	// A restart: KeepSummaries by a new summarizer of the same forms
	// keeps the rejudge's state and it goes on after the village done.
	if err := ss.KeepSummaries(ctx, survey.NewSummarizer(latest), after); err != nil {
		t.Fatal(err)
	}
	for want := len(summaryVillages) - 2; want >= 0; want-- {
		left, err := ss.RejudgeSummaries(ctx, after, 1)
		if err != nil || left != want {
			t.Fatalf("resumed batch: %d left, want %d, %v", left, want, err)
		}
		if want > 0 {
			if _, day := counts(after); day != "2018-12-30" {
				t.Fatalf("in the middle of the rejudge the reads say %q, want the old day", day)
			}
		}
	}
	got, day = counts(after)
	if want := scanned(after); !reflect.DeepEqual(got, want) || day != "2019-01-02" {
		t.Fatalf("after the rejudge: judged as of %q, %+v; the report of the day %+v", day, got, want)
	}
	if days := judgedAsOf(after); !reflect.DeepEqual(days, []string{"2019-01-02", "2019-01-02", "2019-01-02"}) {
		t.Fatalf("after the rejudge the other reads say %v", days)
	}
	if left, err := ss.RejudgeSummaries(ctx, after, 1); err != nil || left != 0 {
		t.Fatalf("a rejudge done is not done again: %d left, %v", left, err)
	}
	// A day later, with no further edition, the reads say that day.
	clock.Advance(24 * time.Hour)
	if _, day := counts(clock.Now()); day != "2019-01-03" {
		t.Fatalf("a day later the reads say %q", day)
	}
}
