package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/schema"
)

// TestVillageFollowups: a village's page of the demo shows its follow-ups
// as GET /v1/followups gives them for that village — the monitored and
// due counts, the households of each monitoring status — and lists every
// household on the follow-up list with its reasons (labelled) and due
// date, linking to it.
func TestVillageFollowups(t *testing.T) {
	ts := demo(t)
	token := ts.Login(t, "supervisor.shizhu", uuid.NewString())
	asOf := ts.Clock.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	type report struct {
		Households []struct {
			Household string `json:"household"`
			HeadName  string `json:"head_name"`
			DueDate   string `json:"due_date"`
			Reasons   []struct {
				Trigger string `json:"trigger"`
			} `json:"reasons"`
		} `json:"households"`
		Villages []struct {
			Code      string         `json:"code"`
			Monitored int            `json:"monitored"`
			Listed    int            `json:"listed"`
			Due       int            `json:"due"`
			ByStatus  map[string]int `json:"by_status"`
		} `json:"villages"`
	}
	get := func(region string) report {
		resp, body := ts.DoAs(t, token, http.MethodGet, "/v1/followups?region="+region+"&as_of="+asOf, "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("followups of %s: %d %s", region, resp.StatusCode, body)
		}
		var r report
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	code := ""
	for _, v := range get("500240").Villages {
		if code == "" && v.Listed > 1 && v.Due > 0 {
			code = v.Code
		}
	}
	if code == "" {
		t.Fatal("the demo has no village of 石柱 with follow-ups due")
	}
	want := get(code)
	if len(want.Villages) != 1 {
		t.Fatalf("followups of %s: %d villages", code, len(want.Villages))
	}
	vc := want.Villages[0]
	v := newVisitor(t, ts)
	v.signIn("supervisor.shizhu", nil)
	_, page := v.do("GET", "/console/region/"+code, nil, nil)
	figures := map[string]int{"fu-monitored": vc.Monitored, "fu-due": vc.Due}
	for st, n := range vc.ByStatus {
		figures["fu-status-"+st] = n
	}
	for id, n := range figures {
		if got := figure(t, page, id); got != fmt.Sprint(n) {
			t.Errorf("village %s: #%s %s, GET /v1/followups %d", code, id, got, n)
		}
	}
	labels := map[string]string{}
	for _, tr := range schema.BuiltIn().Latest().Monitoring().Triggers {
		labels[tr.Name] = tr.Labels["zh"]
	}
	list := between(page, `id="followups"`, `</table>`)
	if got := strings.Count(list, `href="/console/households/`); got != len(want.Households) || got != vc.Listed {
		t.Errorf("%d households listed, GET /v1/followups %d", got, len(want.Households))
	}
	for _, h := range want.Households {
		if !strings.Contains(list, `<a href="/console/households/`+h.Household+`">`+h.HeadName+`</a>`) || !strings.Contains(list, h.DueDate) {
			t.Errorf("%s due %s not listed with its link and date", h.Household, h.DueDate)
		}
		for _, r := range h.Reasons {
			if !strings.Contains(list, labels[r.Trigger]) || labels[r.Trigger] == "" {
				t.Errorf("%s: reason %s (%q) not on the page", h.Household, r.Trigger, labels[r.Trigger])
			}
		}
	}
}
