package console_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestOverviewServesTheOldSumsWhileRejudging: with the coverage sums
// judged as of a day before standards' editions that have taken effect
// since (judged as of 2018-12-30, the clock on 2026-11-20: T/CHES 18-2018
// and the editions of 2019–2024 came in between), a read answers from the
// kept sums as they are — the old day's figures, saying that day — and
// rebuilds nothing; the overview shows the notice in both languages,
// above a county (its townships' sums) and on a township's page (its
// villages'). Once the rejudge the server runs in the background has
// gone through (RejudgeSummaries, batch by batch), the sums equal the
// coverage scan of today, the reads say today and the notice is gone.
func TestOverviewServesTheOldSumsWhileRejudging(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	ctx := context.Background()
	w := storetest.NewDevice("worker", "500240")
	now := ts.Clock.Now()
	for _, village := range []string{storetest.SouthVillage, "500240107202", "500240108203"} {
		hh := uuid.NewString()
		w.Push(t, ts.Push, storetest.Household(hh, village, now), storetest.WaterInspection(uuid.NewString(), hh, now))
	}
	// Sums judged as of the eve of T/CHES 18-2018: what a server that
	// last judged them then holds (a new key each time makes
	// KeepSummaries rebuild them, as of the day it is given).
	eve := time.Date(2018, 12, 30, 9, 0, 0, 0, time.UTC)
	latest := schema.BuiltIn().Latest()
	for _, sch := range []*schema.Schema{schema.V1(), latest} {
		if err := ts.Store.KeepSummaries(ctx, survey.NewSummarizer(sch), eve); err != nil {
			t.Fatal(err)
		}
	}
	actor := syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	summaries := func() (map[string]survey.CoverageCounts, string) {
		t.Helper()
		rep := syncproto.NewReportService(ts.Store, syncproto.ReportOptions{Schema: latest, Now: ts.Clock.Now})
		got := map[string]survey.CoverageCounts{}
		sum, err := rep.CoverageSummaries(ctx, actor, func(a *survey.AreaCoverage) error {
			got[a.Code] = a.Counts
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got, sum.At.JudgedAsOf
	}
	scanned := func(today time.Time) map[string]survey.CoverageCounts {
		t.Helper()
		rep := syncproto.NewReportService(ts.Store, syncproto.ReportOptions{Schema: latest, Now: func() time.Time { return today }})
		got := map[string]survey.CoverageCounts{}
		if _, err := rep.Coverage(ctx, actor, func(v *survey.VillageCoverage) error {
			got[v.Code] = v.Counts
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	old, fresh := scanned(eve), scanned(now)
	if reflect.DeepEqual(old, fresh) {
		t.Fatal("the editions change nothing of these households: the test would prove nothing")
	}
	got, day := summaries()
	if !reflect.DeepEqual(got, old) || day != "2018-12-30" {
		t.Fatalf("a read while the rejudge is due: judged as of %q, %+v; want the old sums %+v", day, got, old)
	}

	// The API's summary says that day too.
	apiDay := func() string {
		t.Helper()
		resp, body := ts.Do(t, "GET", "/v1/reports/coverage?summary=villages&region=500240", "", nil)
		var got struct {
			JudgedAsOf string `json:"judged_as_of"`
		}
		if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("summary: %d %s %v", resp.StatusCode, body, err)
		}
		return got.JudgedAsOf
	}
	if day := apiDay(); day != "2018-12-30" {
		t.Fatalf("the API's summary says judged_as_of %q while the rejudge is due", day)
	}

	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	notice := func(path string, header map[string]string) string {
		t.Helper()
		_, page := v.do("GET", path, nil, header)
		return between(page, `id="judged-as-of"`, `</p>`)
	}
	en := map[string]string{"Cookie": "fieldsync_lang=en"}
	for _, path := range []string{"/console/region/500240", "/console/region/500240107"} {
		if got := notice(path, nil); !strings.Contains(got, "按 2018-12-30 的标准统计，正在按新标准重新统计") {
			t.Errorf("%s: the notice in Chinese: %q", path, got)
		}
		if got := notice(path, en); !strings.Contains(got, "figures judged as of 2018-12-30; being re-judged under the new standard") {
			t.Errorf("%s: the notice in English: %q", path, got)
		}
	}
	if got, _ := summaries(); !reflect.DeepEqual(got, old) {
		t.Fatalf("the pages rebuilt the sums: %+v", got)
	}

	for {
		left, err := ts.Store.RejudgeSummaries(ctx, ts.Clock.Now(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
	}
	got, day = summaries()
	if want := now.UTC().Format(time.DateOnly); !reflect.DeepEqual(got, fresh) || day != want {
		t.Fatalf("after the rejudge: judged as of %q (want %s), %+v; the scan of today %+v", day, want, got, fresh)
	}
	if day := apiDay(); day != now.UTC().Format(time.DateOnly) {
		t.Fatalf("the API's summary says judged_as_of %q after the rejudge", day)
	}
	for _, path := range []string{"/console/region/500240", "/console/region/500240107"} {
		if got := notice(path, nil); got != "" {
			t.Errorf("%s: a notice after the rejudge: %q", path, got)
		}
	}
}
