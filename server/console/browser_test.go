package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

// chromiumPath is Debian's chromium (.ci/run installs it); CHROMIUM
// names another.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium: .ci/run installs Debian's chromium and fonts-wqy-microhei")
	}
	t.Skip("no chromium at /usr/bin/chromium (apt-get install chromium fonts-wqy-microhei)")
	return ""
}

// screenshotDir is where the browser tests leave their screenshots:
// $FIELDSYNC_SCREENSHOTS, else bin/screenshots at the repository's root.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FIELDSYNC_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser drives one headless chromium.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
}

func (b *browser) run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// open navigates to path and waits for the page's heading.
func (b *browser) open(path string) {
	b.t.Helper()
	b.run(chromedp.Navigate(b.base+path), chromedp.WaitVisible("main h1", chromedp.ByQuery))
}

// text is the text of the first element sel matches.
func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// path is the page's path and query.
func (b *browser) path() string {
	b.t.Helper()
	var s string
	b.run(chromedp.Evaluate(`location.pathname + location.search`, &s))
	return s
}

// eval runs a script that returns a promise and gives its value.
func (b *browser) eval(js string, out any) {
	b.t.Helper()
	b.run(chromedp.Evaluate(js, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
}

// shot saves a screenshot of the whole page as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	var png []byte
	b.run(chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// signIn signs in as user through the form and waits for the first page.
func (b *browser) signIn(user string) {
	b.t.Helper()
	b.run(network.ClearBrowserCookies())
	b.open("/console/login")
	b.run(chromedp.SendKeys("#username", user, chromedp.ByID), chromedp.SendKeys("#password", apitest.TestPassword, chromedp.ByID),
		chromedp.Click(`form.login button[type="submit"]`, chromedp.ByQuery), chromedp.WaitNotPresent("form.login", chromedp.ByQuery),
		chromedp.WaitVisible("main h1", chromedp.ByQuery))
}

// submit clicks a button and waits for the page that answers the post
// (the old page carries a mark the new one lacks; an evaluation that
// meets the navigation half-way is tried again).
func (b *browser) submit(sel string) {
	b.t.Helper()
	b.run(chromedp.Evaluate(`window.consoleTestMark = 1`, nil), chromedp.Click(sel, chromedp.ByQuery))
	for {
		var fresh bool
		err := chromedp.Run(b.ctx, chromedp.Evaluate(`window.consoleTestMark === undefined && document.readyState === "complete"`, &fresh))
		if err == nil && fresh {
			break
		}
		if b.ctx.Err() != nil {
			b.t.Fatalf("no page after submitting %s: %v", sel, b.ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.run(chromedp.WaitVisible("main h1", chromedp.ByQuery))
}

// demo is the harness server with the demo data set, the demo's
// division register and users, its clock a week after the last visits.
func demo(t *testing.T) *apitest.Server {
	t.Helper()
	divisions, err := schema.LoadDivisions(filepath.Join("..", "..", "fixtures", "divisions-demo.csv"))
	if err != nil {
		t.Fatal(err)
	}
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.Divisions = divisions })
	ts.Clock.Advance(8 * 24 * time.Hour)
	l := &fixtures.Loader{Service: ts.Push, Name: "demo", BatchSize: 500}
	ctx := context.Background()
	if err := fixtures.Demo(func(ch syncproto.Change) error { return l.Add(ctx, ch) }); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ts.AddUser(t, "supervisor.shizhu", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "supervisor.bairin", syncproto.RoleSupervisor, "150422")
	ts.AddUser(t, "worker.xituo", syncproto.RoleFieldWorker, "500240107")
	return ts
}

// TestConsoleInBrowser drives the console in headless chromium as a
// supervisor, a supervisor of another county and a field worker: sign-in,
// drill-down to a village and its never-inspected households by name, a
// conflict resolved (gone from the queue, in the history, in a tablet's
// next pull), a duplicate merged and one dismissed, an export downloaded
// with the session, what the others may not see, and a post without its
// CSRF token refused. It leaves a screenshot of each main screen.
func TestConsoleInBrowser(t *testing.T) {
	exe := chromiumPath(t)
	ts := demo(t)
	ctx := context.Background()

	// A village of 西沱镇 with households nobody visited, as the coverage
	// report finds them.
	shizhu := syncproto.Actor{UserID: "supervisor.shizhu", Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	reports := syncproto.NewReportService(ts.Store, syncproto.ReportOptions{Schema: schema.BuiltIn().Latest()})
	var village *survey.VillageCoverage
	var shizhuNames []string
	if _, err := reports.Coverage(ctx, shizhu, func(v *survey.VillageCoverage) error {
		for _, m := range v.NeverInspected {
			shizhuNames = append(shizhuNames, m.HeadName)
		}
		if village == nil && strings.HasPrefix(v.Code, "500240107") && len(v.NeverInspected) > 0 {
			village = v
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if village == nil {
		t.Fatal("the demo has no never-inspected household in 西沱镇")
	}

	// An open conflict on a household of that village (two tablets set
	// its members from the same version; the field is manual), and two
	// suspected duplicates (one registration number twice).
	hh := "0193c0de-0000-7000-8000-000000000001"
	a, b1, b2 := storetest.NewDevice("worker.a"), storetest.NewDevice("worker.b"), storetest.NewDevice("worker.c")
	at := ts.Clock.Now()
	a.Push(t, ts.Push, storetest.Upsert("household", hh, 0, at, map[string]any{"village": village.Code, "head_name": "谭冲突",
		"registration_no": "CQ-CONFLICT-1", "members": 5, "category": "registered_poor", "status": "in_poverty"}))
	b1.Push(t, ts.Push, storetest.Upsert("household", hh, 1, at, map[string]any{"members": 6}))
	b2.Push(t, ts.Push, storetest.Upsert("household", hh, 1, at, map[string]any{"members": 7}))
	open, _, err := ts.Store.ListConflicts(ctx, shizhu, syncproto.StateOpen, 0, 10)
	if err != nil || len(open) != 1 {
		t.Fatalf("open conflicts: %v %v", open, err)
	}
	for i, pair := range [][2]string{{"谭重甲", "谭重乙"}, {"谭另甲", "谭另乙"}} {
		for j, name := range pair {
			a.Push(t, ts.Push, storetest.Upsert("household", fmt.Sprintf("0193c0de-0000-7000-8000-0000000001%d%d", i, j), 0, at,
				map[string]any{"village": village.Code, "head_name": name, "registration_no": fmt.Sprintf("CQ-DUP-%d", i),
					"members": 3, "category": "registered_poor", "status": "in_poverty"}))
		}
	}
	dups, err := ts.Store.ListDuplicates(ctx, shizhu, syncproto.StateOpen)
	if err != nil || len(dups) != 2 {
		t.Fatalf("duplicates: %v %v", dups, err)
	}
	// A tablet of 西沱镇 that has pulled the conflict's household.
	tablet := apitest.NewTablet(t, ts, "worker.xituo", client.Options{})
	apitest.MustSync(t, tablet)
	if err := ts.Store.NameDevice(ctx, tablet.DeviceID(), "西沱一号"); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("lang", "zh-CN"), chromedp.WindowSize(1366, 768))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// A bound for a stuck browser, not a measure of speed: the test takes
	// about 15 s with -race on an idle machine of 2 cores.
	bctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	br := &browser{t: t, ctx: bctx, base: ts.URL, dir: screenshotDir(t)}
	br.run(chromedp.EmulateViewport(1366, 768))

	t.Run("SignInAndDrillDownToAVillage", func(t *testing.T) {
		br.t = t
		br.open("/console/region/500240")
		if p := br.path(); !strings.HasPrefix(p, "/console/login") {
			t.Fatalf("without a session the console is at %s, not the sign-in page", p)
		}
		br.shot("01-login")
		br.signIn("supervisor.shizhu")
		if p := br.path(); p != "/console/region/500240" {
			t.Fatalf("signed in at %s", p)
		}
		if h := br.text("main h1"); !strings.Contains(h, "石柱") {
			t.Errorf("overview heading %q", h)
		}
		br.shot("02-overview-county")
		br.run(chromedp.Click(`table.areas a[href="/console/region/500240107"]`, chromedp.ByQuery), chromedp.WaitVisible("main h1", chromedp.ByQuery))
		if h := br.text("main h1"); !strings.Contains(h, "西沱镇") {
			t.Errorf("township heading %q", h)
		}
		br.run(chromedp.Click(fmt.Sprintf(`table.areas a[href="/console/region/%s"]`, village.Code), chromedp.ByQuery),
			chromedp.WaitVisible("#households", chromedp.ByID))
		never := br.text("#never-inspected")
		for _, m := range village.NeverInspected {
			if !strings.Contains(never, m.HeadName) {
				t.Errorf("never-inspected table lacks %s: %q", m.HeadName, never)
			}
		}
		if v := br.text("#verdict-counts"); !strings.Contains(v, "已核验") || !strings.Contains(v, "证据不全") {
			t.Errorf("the village's verdicts: %q", v)
		}
		br.shot("03-village")
	})

	t.Run("SupervisorOfAnotherCountySeesNothingOfIt", func(t *testing.T) {
		br.t = t
		br.signIn("supervisor.bairin")
		if p := br.path(); p != "/console/region/150422" {
			t.Fatalf("bairin signed in at %s", p)
		}
		var body string
		for _, path := range []string{"/console/region/150422", "/console/conflicts", "/console/duplicates", "/console/reinspections",
			"/console/region/500240", "/console/region/" + village.Code, "/console/households/" + hh, "/console/map/500240"} {
			br.open(path)
			br.run(chromedp.Text("main", &body, chromedp.ByQuery))
			for _, name := range append(shizhuNames, "谭冲突", "谭重甲", "谭另甲") {
				if strings.Contains(body, name) {
					t.Errorf("%s shows %s of 石柱 to the supervisor of 巴林左旗", path, name)
				}
			}
		}
		br.open("/console/region/500240")
		if h := br.text("main h1"); h != "无权访问" {
			t.Errorf("another county's overview: %q", h)
		}
		var status int
		br.eval(`fetch("/v1/snapshot?region=500240&entity=household&format=ndjson").then(r => r.status)`, &status)
		if status != 403 {
			t.Errorf("another county's snapshot with bairin's session: %d", status)
		}
	})

	t.Run("FieldWorkerSeesOnlyTheirTablets", func(t *testing.T) {
		br.t = t
		br.signIn("worker.xituo")
		if p := br.path(); p != "/console/devices" {
			t.Fatalf("worker signed in at %s", p)
		}
		devices := br.text("#devices")
		if !strings.Contains(devices, "西沱一号") {
			t.Errorf("the worker's tablet is not listed: %q", devices)
		}
		if strings.Contains(devices, "loader:demo") || strings.Contains(devices, "worker.a") {
			t.Errorf("the worker sees others' tablets: %q", devices)
		}
		br.shot("04-worker-tablets")
		var body string
		for _, path := range []string{"/console/region/500240107", "/console/households/" + hh, "/console/conflicts"} {
			br.open(path)
			br.run(chromedp.Text("main", &body, chromedp.ByQuery))
			if h := br.text("main h1"); h != "无权访问" {
				t.Errorf("%s for a field worker: %q", path, h)
			}
			for _, name := range append(shizhuNames, "谭冲突") {
				if strings.Contains(body, name) {
					t.Errorf("%s shows %s to a field worker", path, name)
				}
			}
		}
	})

	t.Run("FormPostWithoutCSRFTokenIsRefused", func(t *testing.T) {
		br.t = t
		br.signIn("supervisor.shizhu")
		var statuses []int
		br.eval(fmt.Sprintf(`Promise.all([
			fetch("/console/duplicates/%[1]s/dismiss", {method: "POST", body: new URLSearchParams({note: "x"})}).then(r => r.status),
			fetch("/console/duplicates/%[1]s/dismiss", {method: "POST", body: new URLSearchParams({note: "x", csrf: "forged"})}).then(r => r.status),
			fetch("/console/login", {method: "POST", body: new URLSearchParams({username: "admin", password: "x"})}).then(r => r.status)])`, dups[0].ID), &statuses)
		if fmt.Sprint(statuses) != "[403 403 403]" {
			t.Errorf("posts without the token: %v, want 403 each", statuses)
		}
		still, err := ts.Store.ListDuplicates(ctx, shizhu, syncproto.StateOpen)
		if err != nil || len(still) != 2 {
			t.Errorf("a refused post changed the queue: %v %v", still, err)
		}
	})

	t.Run("ResolveAConflict", func(t *testing.T) {
		br.t = t
		br.open("/console/conflicts")
		if !strings.Contains(br.text("main"), "谭冲突") {
			t.Fatal("the conflict is not in the queue")
		}
		br.shot("05-conflicts")
		sel := fmt.Sprintf(`form[action="/console/conflicts/%s/resolve"]`, open[0].ID)
		br.run(chromedp.Click(sel+` input[value="incoming"]`, chromedp.ByQuery),
			chromedp.SendKeys(sel+` input[name="note"]`, "电话核实为7人", chromedp.ByQuery))
		br.submit(sel + ` button[type="submit"]`)
		if strings.Contains(br.text("main"), "谭冲突") {
			t.Error("the resolved conflict is still on the page after the resolve")
		}
		br.open("/console/households/" + hh)
		history := br.text("table.history")
		if !strings.Contains(history, "supervisor.shizhu") || !strings.Contains(history, "电话核实为7人") {
			t.Errorf("the history lacks the resolution: %q", history)
		}
		br.shot("06-household")
		apitest.MustSync(t, tablet)
		rec, err := tablet.Get(ctx, hh)
		if err != nil {
			t.Fatal(err)
		}
		if got := apitest.FieldOf(t, rec, "members"); got != "7" {
			t.Errorf("the tablet's next pull has members %s, want 7", got)
		}
	})

	t.Run("MergeAndDismissDuplicates", func(t *testing.T) {
		br.t = t
		br.open("/console/duplicates")
		br.shot("07-duplicates")
		merge := fmt.Sprintf(`form[action="/console/duplicates/%s/merge"]`, dups[0].ID)
		br.run(chromedp.Click(fmt.Sprintf(`%s input[value="%s"]`, merge, dups[0].HouseholdA), chromedp.ByQuery))
		br.submit(merge + ` button[type="submit"]`)
		dismiss := fmt.Sprintf(`form[action="/console/duplicates/%s/dismiss"]`, dups[1].ID)
		br.run(chromedp.SendKeys(dismiss+` input[name="note"]`, "两户不同：户主不同人", chromedp.ByQuery))
		br.submit(dismiss + ` button[type="submit"]`)
		if n := br.text("main h1"); !strings.Contains(n, "(0)") {
			t.Errorf("after merge and dismiss the queue is %q", n)
		}
		merged, _ := ts.Store.ListDuplicates(ctx, shizhu, syncproto.StateMerged)
		dismissed, _ := ts.Store.ListDuplicates(ctx, shizhu, syncproto.StateDismissed)
		if len(merged) != 1 || merged[0].ID != dups[0].ID || len(dismissed) != 1 || dismissed[0].ID != dups[1].ID {
			t.Errorf("merged %v, dismissed %v", merged, dismissed)
		}
	})

	t.Run("DownloadAnExport", func(t *testing.T) {
		br.t = t
		br.open("/console/exports")
		br.shot("08-exports")
		var got struct {
			Status int    `json:"status"`
			Type   string `json:"type"`
			Size   int    `json:"size"`
		}
		br.eval(`(async () => {
			const a = [...document.querySelectorAll("table.exports a")].find(a => a.href.includes("format=xlsx") && a.href.includes("lang=zh") && a.href.includes("snapshot"));
			const r = await fetch(a.href);
			const b = await r.arrayBuffer();
			return {status: r.status, type: r.headers.get("content-type"), size: b.byteLength};
		})()`, &got)
		if got.Status != 200 || !strings.Contains(got.Type, "spreadsheet") || got.Size < 1000 {
			t.Errorf("the XLSX export with the session: %+v", got)
		}
	})

	t.Run("OverviewRefreshesWhenASyncArrives", func(t *testing.T) {
		br.t = t
		br.open("/console/region/" + village.Code)
		if strings.Contains(br.text("#households"), "谭新户") {
			t.Fatal("the household is there before its push")
		}
		// The page reloads by itself (server-sent events): the old page's
		// mark goes, and the new household is in the table.
		br.run(chromedp.Evaluate(`window.consoleTestMark = 1`, nil))
		a.Push(t, ts.Push, storetest.Upsert("household", "0193c0de-0000-7000-8000-000000000201", 0, ts.Clock.Now(),
			map[string]any{"village": village.Code, "head_name": "谭新户", "registration_no": "CQ-NEW-1", "members": 2,
				"category": "registered_poor", "status": "in_poverty"}))
		give := time.Now().Add(20 * time.Second)
		for {
			var fresh bool
			err := chromedp.Run(br.ctx, chromedp.Evaluate(`window.consoleTestMark === undefined && document.readyState === "complete" &&
				(document.getElementById("households") || {textContent: ""}).textContent.includes("谭新户")`, &fresh))
			if err == nil && fresh {
				break
			}
			if br.ctx.Err() != nil || time.Now().After(give) {
				t.Fatal("the overview did not refresh after the push")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("MapAndEnglish", func(t *testing.T) {
		br.t = t
		br.open("/console/map/500240107")
		var n int
		br.run(chromedp.Evaluate(`document.querySelectorAll("svg circle.pt").length`, &n))
		if n == 0 {
			t.Error("no household on the map")
		}
		br.shot("09-map")
		br.run(chromedp.Click(`a.lang`, chromedp.ByQuery), chromedp.WaitVisible("main h1", chromedp.ByQuery))
		if h := br.text("main h1"); !strings.HasPrefix(h, "Map") {
			t.Errorf("after the language switch: %q", h)
		}
		br.open("/console/region/500240")
		br.shot("10-overview-english")
		br.run(chromedp.EmulateViewport(800, 1280))
		br.open("/console/region/" + village.Code)
		br.shot("11-village-tablet-portrait")
	})
}
