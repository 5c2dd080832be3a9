package console_test

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/monitor"
	"github.com/fieldsync/fieldsync/schema/verify"
	"github.com/fieldsync/fieldsync/syncproto"
)

// areaVerdictRows reads the #area-verdicts table of a page: per area
// code, its row's colour class and figures in order (households,
// verified, blocked by each guarantee, incomplete, visits due).
func areaVerdictRows(t *testing.T, page string) (codes []string, colour map[string]string, figures map[string][]string) {
	t.Helper()
	table := between(page, `id="area-verdicts"`, `</table>`)
	if table == "" {
		t.Fatal("no #area-verdicts table on the page")
	}
	colour, figures = map[string]string{}, map[string][]string{}
	row := regexp.MustCompile(`(?s)<tr class="c-(\w+)" data-code="(\d+)">(.*?)</tr>`)
	cell := regexp.MustCompile(`<td>(\d+)</td>`)
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		codes = append(codes, m[2])
		colour[m[2]] = m[1]
		for _, c := range cell.FindAllStringSubmatch(m[3], -1) {
			figures[m[2]] = append(figures[m[2]], c[1])
		}
	}
	return codes, colour, figures
}

// TestAreaVerdictsEqualTheLiveRollup: on the demo, a county's page lists
// each township's households verified, blocked by each guarantee,
// incomplete and follow-up visits due, and a township's page each
// village's, equal to the verification report's roll-up and the
// follow-up list judged live from every household; each row links to the
// area's page and is coloured by its verified share as coverage colours
// the areas table.
func TestAreaVerdictsEqualTheLiveRollup(t *testing.T) {
	ts := demo(t)
	reports := syncproto.NewReportService(ts.Store, syncproto.ReportOptions{Schema: schema.BuiltIn().Latest(), Now: ts.Clock.Now})
	shizhu := syncproto.Actor{UserID: "supervisor.shizhu", Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	var villages []verify.Area
	rep, err := reports.Verification(context.Background(), shizhu, ts.Clock.Now(), func(*verify.Verdict) error { return nil },
		func(a *verify.Area) error { villages = append(villages, *a); return nil })
	if err != nil {
		t.Fatal(err)
	}
	follow, err := reports.Followups(context.Background(), shizhu, ts.Clock.Now(), func(*monitor.Followup) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	due := map[string]int{}
	for _, c := range follow.Villages {
		due[c.Code] += c.Due
		due[c.Code[:9]] += c.Due
	}
	v := newVisitor(t, ts)
	v.signIn("supervisor.shizhu", nil)
	check := func(path string, want []verify.Area) {
		t.Helper()
		_, page := v.do("GET", path, nil, nil)
		codes, colour, figures := areaVerdictRows(t, page)
		if len(codes) != len(want) {
			t.Fatalf("%s: %d areas %v, the report %d", path, len(codes), codes, len(want))
		}
		blocked := 0
		for i, a := range want {
			w := []string{fmt.Sprint(a.Households), fmt.Sprint(a.Verified)}
			for _, g := range reports.Verifier().Guarantees() {
				w = append(w, fmt.Sprint(a.BlockedBy[g.Name]))
			}
			w = append(w, fmt.Sprint(a.Incomplete), fmt.Sprint(due[a.Code]))
			if codes[i] != a.Code || strings.Join(figures[a.Code], " ") != strings.Join(w, " ") {
				t.Errorf("%s: area %s shows %v, the live roll-up %s: %v", path, codes[i], figures[codes[i]], a.Code, w)
			}
			if got, want := colour[a.Code], shareColour(a.Verified, a.Households); got != want {
				t.Errorf("%s: area %s (%d of %d verified) coloured %s, want %s", path, a.Code, a.Verified, a.Households, got, want)
			}
			if !strings.Contains(page, `<a href="/console/region/`+a.Code+`">`) {
				t.Errorf("%s: no link down to %s", path, a.Code)
			}
			blocked += a.Blocked
		}
		if blocked == 0 {
			t.Errorf("%s: no household blocked in the demo's areas: the test proves little", path)
		}
	}
	check("/console/region/500240", rep.Townships)
	township := rep.Townships[0].Code
	var inTownship []verify.Area
	for _, a := range villages {
		if strings.HasPrefix(a.Code, township) {
			inTownship = append(inTownship, a)
		}
	}
	check("/console/region/"+township, inTownship)
	if _, page := v.do("GET", "/console/region/"+villages[0].Code, nil, nil); strings.Contains(page, `id="area-verdicts"`) {
		t.Error("a village's page lists area verdicts: it judges its own households")
	}
}

// shareColour is the colour class of a share as the coverage columns
// colour it: done at 100 %, near from 80, behind from 50, else far.
func shareColour(n, of int) string {
	p := 0
	if of > 0 {
		p = (n*100 + of/2) / of
	}
	switch {
	case p >= 100:
		return "done"
	case p >= 80:
		return "near"
	case p >= 50:
		return "behind"
	}
	return "far"
}

// TestAreaVerdictsReadTheKeptSums: the county's verdicts by township are
// the sums the store keeps per village, not a judgement of the records:
// after the sums alone are changed under the server, the page shows them.
func TestAreaVerdictsReadTheKeptSums(t *testing.T) {
	ts := demo(t)
	v := newVisitor(t, ts)
	v.signIn("supervisor.shizhu", nil)
	_, page := v.do("GET", "/console/region/500240", nil, nil)
	codes, _, before := areaVerdictRows(t, page)
	db, err := sql.Open("sqlite", "file:"+ts.Store.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE village_verdicts SET counts = json_set(counts,
		'$.households', json_extract(counts, '$.households') + 1000,
		'$."overall/verified"', COALESCE(json_extract(counts, '$."overall/verified"'), 0) + 1000,
		'$.due', COALESCE(json_extract(counts, '$.due'), 0) + 7)
		WHERE village = (SELECT MIN(village) FROM village_verdicts WHERE village LIKE ?)`, codes[0]+"%")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%d rows of village_verdicts changed", n)
	}
	_, page = v.do("GET", "/console/region/500240", nil, nil)
	_, _, after := areaVerdictRows(t, page)
	plus := func(s string, n int) string {
		var x int
		fmt.Sscan(s, &x)
		return fmt.Sprint(x + n)
	}
	b, a := before[codes[0]], after[codes[0]]
	if a[0] != plus(b[0], 1000) || a[1] != plus(b[1], 1000) || a[len(a)-1] != plus(b[len(b)-1], 7) {
		t.Errorf("township %s after the kept sums changed: %v, before %v; want 1000 more households and verified, 7 more due", codes[0], a, b)
	}
}
