package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/verify"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestVillageVerdicts: a village's page of the demo shows its households'
// verdicts as the verification report judges them for that village —
// verified, blocked (by each guarantee), incomplete — and names every
// household not verified, with the guarantees that block it by their
// labels; a township's page shows none (the verdicts are judged per
// village, from the village's records).
func TestVillageVerdicts(t *testing.T) {
	ts := demo(t)
	reports := syncproto.NewReportService(ts.Store, syncproto.ReportOptions{Schema: schema.BuiltIn().Latest(), Now: ts.Clock.Now})
	shizhu := syncproto.Actor{UserID: "supervisor.shizhu", Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	var village *verify.Area
	if _, err := reports.Verification(context.Background(), shizhu, ts.Clock.Now(), func(*verify.Verdict) error { return nil },
		func(a *verify.Area) error {
			if village == nil && a.Blocked > 0 && a.Incomplete > 0 && a.Verified > 0 {
				village = a
			}
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	if village == nil {
		t.Fatal("the demo has no village of 石柱 with households verified, blocked and incomplete")
	}
	v := newVisitor(t, ts)
	v.signIn("supervisor.shizhu", nil)
	_, page := v.do("GET", "/console/region/"+village.Code, nil, nil)
	for id, want := range map[string]int{"fig-verified": village.Verified, "fig-blocked": village.Blocked, "fig-incomplete": village.Incomplete} {
		if got := figure(t, page, id); got != fmt.Sprint(want) {
			t.Errorf("village %s: #%s %s, the report %d", village.Code, id, got, want)
		}
	}
	blockedBy := between(page, `id="blocked-by"`, `</table>`)
	for _, g := range reports.Verifier().Guarantees() {
		row := fmt.Sprintf(`<th scope="row">%s</th><td>%d</td>`, g.Labels["zh"], village.BlockedBy[g.Name])
		if !strings.Contains(blockedBy, row) {
			t.Errorf("blocked by %s: no %s on the page: %s", g.Name, row, blockedBy)
		}
	}
	list := between(page, `id="not-verified"`, `</table>`)
	if got := strings.Count(list, `href="/console/households/`); got != len(village.NeverVerified) {
		t.Errorf("%d households named not verified, the report %d", got, len(village.NeverVerified))
	}
	for _, u := range village.NeverVerified {
		if !strings.Contains(list, u.HeadName) {
			t.Errorf("%s (%s) not named among the not verified", u.HeadName, u.Overall)
		}
	}
	if _, page := v.do("GET", "/console/region/"+village.Code[:9], nil, nil); strings.Contains(page, `id="fig-verified"`) {
		t.Error("a township's page shows verdicts")
	}
}
