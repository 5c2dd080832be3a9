package console_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/server/apitest"
)

// TestRegistryScreensInBrowser drives the import and the reconciliation
// screens in headless chromium as the supervisor of 石柱: the demo's lists
// but the extreme-poverty one are imported already (by an admin, through
// the API); the supervisor uploads the extreme-poverty list of the county
// (a file with a Chinese name) through the screen and sees the rows read
// and added, then the whole list of both counties refused row by row
// ("village lies outside your region", nothing imported), then opens the
// reconciliation from the overview: the blind spot the list planned in the
// county is on it by name. Nothing is cut, at 1366 px and on an 800×1280
// tablet held upright (no page or table wider than the window). It leaves
// a screenshot of each.
func TestRegistryScreensInBrowser(t *testing.T) {
	exe := chromiumPath(t)
	ts := demo(t)
	admin := ts.Login(t, "admin", apitest.AdminDevice)
	files, plan := fixtures.DemoRegistries()
	var extreme fixtures.RegistryFile
	for _, f := range files {
		if f.Source == "extreme_poverty" {
			extreme = f
			continue
		}
		resp, body := ts.DoAs(t, admin, http.MethodPost, "/v1/imports?source="+f.Source, "text/csv", f.Data)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("import %s: %d %s", f.Name, resp.StatusCode, body)
		}
	}
	// The county's part of the list: its header and the rows of 石柱.
	var county []string
	for i, line := range strings.Split(strings.TrimSpace(string(extreme.Data)), "\n") {
		if i == 0 || strings.Contains(line, ",500240") {
			county = append(county, line)
		}
	}
	dir := t.TempDir()
	mine := filepath.Join(dir, "石柱县特困供养名单.csv")
	whole := filepath.Join(dir, "特困供养名单（两县）.csv")
	if err := os.WriteFile(mine, []byte(strings.Join(county, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(whole, extreme.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	var blind string
	for _, f := range plan {
		if f.Source == "extreme_poverty" && f.Kind == "not_in_field" && strings.HasPrefix(f.Village, "500240") {
			blind = f.Key
		}
	}
	if blind == "" {
		t.Fatal("the plan has no extreme-poverty blind spot in 500240")
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("lang", "zh-CN"), chromedp.WindowSize(1366, 768))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// A bound for a stuck browser, not a measure of speed.
	bctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	br := &browser{t: t, ctx: bctx, base: ts.URL, dir: screenshotDir(t)}
	br.run(chromedp.EmulateViewport(1366, 768))
	// uncut reports what is wider than the window: the page, or a table's
	// scrolling box.
	uncut := func(what string) {
		t.Helper()
		var wide []string
		br.run(chromedp.Evaluate(`[...document.querySelectorAll("main, .scroll, table")].filter(e => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + "." + e.className + " " + e.scrollWidth + ">" + e.clientWidth)
			.concat(document.documentElement.scrollWidth > window.innerWidth ? ["page " + document.documentElement.scrollWidth + ">" + window.innerWidth] : [])`, &wide))
		if len(wide) > 0 {
			t.Errorf("%s: cut at the window's width: %v", what, wide)
		}
	}

	br.signIn("supervisor.shizhu")
	// The overview (a live page, which may reload as syncs arrive) links
	// to the screen; the test opens the link's address, as a click would,
	// and waits for the page to have loaded whole.
	var link string
	br.run(chromedp.AttributeValue(`nav a[href="/console/imports"]`, "href", &link, nil, chromedp.ByQuery))
	if link != "/console/imports" {
		t.Fatalf("the overview's link to the import screen: %q", link)
	}
	br.open("/console/imports")
	br.run(chromedp.WaitVisible("#imp-file", chromedp.ByID))
	if h := br.text("main h1"); h != "导入部门名单" {
		t.Errorf("import page heading %q", h)
	}
	br.run(chromedp.SetValue("#imp-source", "extreme_poverty", chromedp.ByID), chromedp.SetUploadFiles("#imp-file", []string{mine}, chromedp.ByID))
	br.submit(`form.import button[type="submit"]`)
	rows := len(county) - 1
	if got := br.text("#imp-rows"); got != strconv.Itoa(rows) {
		t.Fatalf("rows read %q, want %d", got, rows)
	}
	if got := br.text("#imp-added"); got != strconv.Itoa(rows) {
		t.Errorf("added %q, want %d", got, rows)
	}
	if past := br.text("#past-extreme_poverty + .scroll"); !strings.Contains(past, "石柱县特困供养名单.csv") || !strings.Contains(past, "supervisor.shizhu") {
		t.Errorf("the past imports of the list: %q", past)
	}
	var recon string
	br.run(chromedp.AttributeValue("#imp-to-recon", "href", &recon, nil, chromedp.ByID))
	if recon != "/console/reconciliation/500240" {
		t.Errorf("the outcome links to %q, not the county's reconciliation", recon)
	}
	uncut("the import's outcome")
	br.shot("12-import-outcome")

	br.run(chromedp.SetValue("#imp-source", "extreme_poverty", chromedp.ByID), chromedp.SetUploadFiles("#imp-file", []string{whole}, chromedp.ByID))
	br.submit(`form.import button[type="submit"]`)
	if msg := br.text("#imp-message"); !strings.Contains(msg, "nothing of the file was imported") {
		t.Errorf("the whole list: %q", msg)
	}
	if problems := br.text("table.problems"); !strings.Contains(problems, "village lies outside your region") || !strings.Contains(problems, "column 3") {
		t.Errorf("the refused rows: %q", problems)
	}
	uncut("the refused import")
	br.shot("13-import-refused")

	br.open("/console/region/500240")
	br.run(chromedp.Click("#to-reconciliation", chromedp.ByID), chromedp.WaitVisible("#rec-blind", chromedp.ByID))
	if p := br.path(); p != "/console/reconciliation/500240" {
		t.Errorf("the overview's link leads to %s", p)
	}
	if body := br.text("main"); !strings.Contains(body, blind) || !strings.Contains(body, "供养") || !strings.Contains(body, "特困人员救助供养") {
		t.Errorf("the reconciliation lacks the planned blind spot %s of the extreme-poverty list", blind)
	}
	uncut("the reconciliation at 1366 px")
	br.shot("14-reconciliation")

	br.run(chromedp.EmulateViewport(800, 1280))
	br.open("/console/reconciliation/500240")
	uncut("the reconciliation on a tablet")
	br.shot("15-reconciliation-tablet-portrait")
	br.open("/console/imports")
	uncut("the import screen on a tablet")
	br.shot("16-imports-tablet-portrait")
}
