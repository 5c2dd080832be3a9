package console_test

import (
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestOverviewReadsTheAggregates: the overview's figures are the sums the
// store keeps in each write, not a reading of the region's records. With
// the records as they are, the county's page shows what the coverage
// report counts by reading every household; after the sums alone are
// changed under the server (the records untouched), the page shows the
// changed sums — households, never inspected, the inspections of a day —
// and a village's page names the never-inspected households its summaries
// hold.
func TestOverviewReadsTheAggregates(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	w := storetest.NewDevice("worker", "500240107")
	now := ts.Clock.Now()
	var changes []syncproto.Change
	for i := range 5 {
		hh := uuid.NewString()
		changes = append(changes, storetest.Household(hh, storetest.SouthVillage, now))
		if i < 3 {
			changes = append(changes, storetest.WaterInspection(uuid.NewString(), hh, now))
		}
	}
	w.Push(t, ts.Push, changes...)
	v := newVisitor(t, ts)
	v.signIn("sup", nil)

	figures := func(path string) (households, never, page string) {
		t.Helper()
		_, page = v.do("GET", path, nil, nil)
		return figure(t, page, "fig-households"), figure(t, page, "fig-never"), page
	}
	hs, never, page := figures("/console/region/500240")
	if hs != "5" || never != "2" {
		t.Fatalf("before: households %s, never inspected %s; want 5 and 2", hs, never)
	}
	// Above a village, the villages with households never inspected.
	if got := between(page, `id="never-villages"`, `</table>`); !strings.Contains(got, `href="/console/region/`+storetest.SouthVillage+`"`) ||
		!strings.Contains(got, "<td>2</td>") {
		t.Errorf("the county's never-inspected villages: %q", got)
	}

	// The sums alone, changed from another connection: 1,000 more
	// households, 100 more never inspected, 7 more water inspections today.
	db, err := sql.Open("sqlite", "file:"+ts.Store.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	today := now.In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	// The village's row and its township's and county's (area_counts).
	for _, q := range []struct {
		sql  string
		rows int64
	}{
		{`UPDATE village_counts SET counts = json_set(counts, '$.households', json_extract(counts, '$.households') + 1000)`, 1},
		{`UPDATE village_counts SET counts = json_set(counts, '$.never_inspected', json_extract(counts, '$.never_inspected') + 100)`, 1},
		{`UPDATE area_counts SET counts = json_set(counts, '$.households', json_extract(counts, '$.households') + 1000)`, 2},
		{`UPDATE area_counts SET counts = json_set(counts, '$.never_inspected', json_extract(counts, '$.never_inspected') + 100)`, 2},
		{fmt.Sprintf(`UPDATE village_days SET n = n + 7 WHERE day_form = '%s/water_inspection'`, today), 1},
	} {
		if res, err := db.Exec(q.sql); err != nil {
			t.Fatal(err)
		} else if n, _ := res.RowsAffected(); n != q.rows {
			t.Fatalf("%s: %d rows", q.sql, n)
		}
	}
	hs, never, page = figures("/console/region/500240")
	if hs != "1005" || never != "102" {
		t.Fatalf("after changing the sums: households %s, never inspected %s; want 1005 and 102 (read from the sums)", hs, never)
	}
	if !regexp.MustCompile(`<th scope="row">` + today + `</th><td>0</td><td>10</td>`).MatchString(page) {
		t.Errorf("the inspections of %s are not the sums' 3 + 7 water: %s", today, between(page, `class="days"`, `</table>`))
	}

	// A village's never-inspected households are those of its summaries:
	// one marked inspected there drops off the page.
	_, page = v.do("GET", "/console/region/"+storetest.SouthVillage, nil, nil)
	names := strings.Count(between(page, `id="never-inspected"`, `</table>`), `href="/console/households/`)
	if names != 2 {
		t.Fatalf("village page names %d never-inspected households, want 2", names)
	}
	if _, err := db.Exec(`UPDATE household_summaries SET never_inspected = 0 WHERE household_id =
		(SELECT household_id FROM household_summaries WHERE never_inspected LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	_, page = v.do("GET", "/console/region/"+storetest.SouthVillage, nil, nil)
	if names := strings.Count(between(page, `id="never-inspected"`, `</table>`), `href="/console/households/`); names != 1 {
		t.Fatalf("after the summary changed: the village page names %d never-inspected households, want 1", names)
	}
}

// figure returns the text of the element with the id.
func figure(t *testing.T, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `">([^<]*)<`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no #%s on the page", id)
	}
	return m[1]
}

// between returns the part of page from the first from to the next to.
func between(page, from, to string) string {
	i := strings.Index(page, from)
	if i < 0 {
		return ""
	}
	rest := page[i:]
	if j := strings.Index(rest, to); j >= 0 {
		return rest[:j]
	}
	return rest
}
