package console_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestOverviewCountsTheRegistryOnlyHouseholds: on the demo with its
// registry files imported, the overview's households and never inspected
// — all regions, a county, a township, a village — equal those GET
// /v1/reports/coverage counts for the same region (the households the
// teams recorded and those only a registry lists), added up here from the
// report's villages; and a village with a planned blind spot names it
// among its never-inspected households, by the list's name, linking to
// the village's reconciliation rather than to a record it does not have.
func TestOverviewCountsTheRegistryOnlyHouseholds(t *testing.T) {
	ts := apitest.MustServe(t)
	apitest.SeedDemo(t, ts)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	files, plan := fixtures.DemoRegistries()
	for _, f := range files {
		importRegistry(t, ts, admin, f.Source, f.Data)
	}
	var blind *fixtures.RegistryFinding
	for i := range plan {
		if plan[i].Kind == syncproto.BlindNotInField && (plan[i].Source == "poverty_registry" || plan[i].Source == "subsistence_allowance" || plan[i].Source == "extreme_poverty") {
			blind = &plan[i]
			break
		}
	}
	if blind == nil {
		t.Fatal("the demo's plan has no household on a list that no team recorded")
	}
	village := blind.Village
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, village[:6])
	v := newVisitor(t, ts)
	v.signIn("admin", nil)

	// report counts the region's households and never-inspected ones from
	// the coverage report's villages, and how many of the latter no team
	// recorded.
	report := func(region string) (households, never, registryOnly int, names map[string]string) {
		t.Helper()
		path := "/v1/reports/coverage"
		if region != "" {
			path += "?region=" + region
		}
		resp, body := ts.DoAs(t, admin, http.MethodGet, path, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		var rep struct {
			Villages []struct {
				Code   string `json:"code"`
				Counts struct {
					Households     int `json:"households"`
					NeverInspected int `json:"never_inspected"`
				} `json:"counts"`
				NeverInspected []struct {
					ID       string `json:"id"`
					HeadName string `json:"head_name"`
				} `json:"never_inspected"`
			} `json:"villages"`
		}
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatal(err)
		}
		names = map[string]string{}
		for _, vc := range rep.Villages {
			households += vc.Counts.Households
			never += len(vc.NeverInspected)
			for _, m := range vc.NeverInspected {
				if _, err := ts.Store.Record(t.Context(), m.ID); err != nil {
					registryOnly++
					if vc.Code == village {
						names[m.ID] = m.HeadName
					}
				}
			}
		}
		return households, never, registryOnly, names
	}
	for _, region := range []string{"", village[:6], village[:9], village} {
		hs, never, only, _ := report(region)
		if only == 0 && region != village[:6] && region != "" {
			continue // a township or village without blind spots proves nothing more
		}
		if only == 0 {
			t.Fatalf("the coverage report of %q counts no household only a registry lists", region)
		}
		path := "/console/region/" + region
		if region == "" {
			path = "/console/region/all"
		}
		_, page := v.do("GET", path, nil, nil)
		if got, want := figure(t, page, "fig-households"), strconv.Itoa(hs); got != want {
			t.Errorf("%s: the overview's households %s, the coverage report's %s (%d only on a registry)", path, got, want, only)
		}
		if got, want := figure(t, page, "fig-never"), strconv.Itoa(never); got != want {
			t.Errorf("%s: the overview's never inspected %s, the coverage report's %s (%d only on a registry)", path, got, want, only)
		}
	}

	// The village page, as the county's supervisor: the registry-only
	// households by the list's name, linked to the reconciliation.
	_, _, _, names := report(village)
	if len(names) == 0 {
		t.Fatalf("the coverage report of %s names no household only a registry lists", village)
	}
	sup := newVisitor(t, ts)
	sup.signIn("sup", nil)
	_, page := sup.do("GET", "/console/region/"+village, nil, nil)
	list := between(page, `id="never-inspected"`, `</table>`)
	for id, name := range names {
		if !strings.Contains(list, `<a href="/console/reconciliation/`+village+`" class="registry-only">`+name+`</a>`) {
			t.Errorf("the village page does not name %s (%s) as only on a registry:\n%s", name, id, list)
		}
		if strings.Contains(list, "/console/households/"+id) {
			t.Errorf("the village page links %s to a household record it has not", id)
		}
	}
}
