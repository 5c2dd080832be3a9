package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestVillageListAndMapJudgeWaterAsTheFigures: over the demo (forms
// version 3, whose water is judged by the role's criteria), a village's
// household list marks as many households "water not shown safe" as the
// village's figures count, and the county's water map draws as many
// unsafe points as the county counts (every demo household of 石柱 has a
// location).
func TestVillageListAndMapJudgeWaterAsTheFigures(t *testing.T) {
	ts := demo(t)
	v := newVisitor(t, ts)
	v.signIn("supervisor.shizhu", nil)
	shizhu := syncproto.Actor{UserID: "supervisor.shizhu", Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	reports := syncproto.NewReportService(ts.Store, syncproto.ReportOptions{Schema: schema.BuiltIn().Latest(), Now: ts.Clock.Now})
	const unsafeCell = `<strong class="bad">饮水未显示安全</strong>`
	total, villages := 0, 0
	sum, err := reports.Coverage(context.Background(), shizhu, func(vc *survey.VillageCoverage) error {
		resp, body := v.do("GET", "/console/region/"+vc.Code, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("village %s: %d", vc.Code, resp.StatusCode)
		}
		list := body[strings.Index(body, `id="households"`):]
		if got := strings.Count(list, unsafeCell); got != vc.Counts.WaterUnsafe {
			t.Errorf("village %s lists %d households with water not shown safe, its figures count %d", vc.Code, got, vc.Counts.WaterUnsafe)
		}
		total += vc.Counts.WaterUnsafe
		villages++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total == 0 || villages == 0 {
		t.Fatalf("the demo has no unsafe water in 石柱 (%d villages, %+v)", villages, sum)
	}
	resp, body := v.do("GET", "/console/map/500240?by=water", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the water map: %d", resp.StatusCode)
	}
	if got := strings.Count(body, `class="pt w-unsafe"`); got != total {
		t.Errorf("the county's water map draws %d unsafe points, the villages count %d", got, total)
	}
}
