package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/server/api"
	"github.com/fieldsync/fieldsync/server/apitest"
	"github.com/fieldsync/fieldsync/server/sqlite"
	"github.com/fieldsync/fieldsync/server/storetest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// visitor is a browser without a browser: a cookie jar, no redirects
// followed, so that each answer is seen as sent.
type visitor struct {
	t    *testing.T
	ts   *apitest.Server
	http *http.Client
	csrf string
}

func newVisitor(t *testing.T, ts *apitest.Server) *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{t: t, ts: ts, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (v *visitor) do(method, path string, form url.Values, header map[string]string) (*http.Response, string) {
	v.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, v.ts.URL+path, body)
	if err != nil {
		v.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, val := range header {
		req.Header.Set(k, val)
	}
	resp, err := v.http.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindStringSubmatch(string(b)); m != nil {
		v.csrf = m[1]
	}
	return resp, string(b)
}

// signIn signs in through the form and returns the answer to the post.
func (v *visitor) signIn(user string, header map[string]string) *http.Response {
	v.t.Helper()
	v.do("GET", "/console/login", nil, header)
	resp, _ := v.do("POST", "/console/login", url.Values{"csrf": {v.csrf}, "username": {user}, "password": {apitest.TestPassword}}, header)
	if resp.StatusCode != http.StatusSeeOther {
		v.t.Fatalf("sign-in of %s: %d", user, resp.StatusCode)
	}
	return resp
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "fieldsync_console" {
			return c
		}
	}
	return nil
}

// TestSessionCookieAttributes: the session cookie is HttpOnly and
// SameSite=Strict, Secure when a proxy says the browser came over HTTPS,
// and a wrong password opens no session.
func TestSessionCookieAttributes(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	plain := sessionCookie(newVisitor(t, ts).signIn("sup", nil))
	if plain == nil || !plain.HttpOnly || plain.SameSite != http.SameSiteStrictMode || plain.Secure {
		t.Errorf("cookie over plain HTTP: %+v", plain)
	}
	tls := sessionCookie(newVisitor(t, ts).signIn("sup", map[string]string{"X-Forwarded-Proto": "https"}))
	if tls == nil || !tls.Secure || !tls.HttpOnly || tls.SameSite != http.SameSiteStrictMode {
		t.Errorf("cookie behind an HTTPS proxy: %+v", tls)
	}
	v := newVisitor(t, ts)
	v.do("GET", "/console/login", nil, nil)
	resp, body := v.do("POST", "/console/login", url.Values{"csrf": {v.csrf}, "username": {"sup"}, "password": {"wrong"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || sessionCookie(resp) != nil || !strings.Contains(body, "用户名或密码错误") {
		t.Errorf("wrong password: %d %v", resp.StatusCode, resp.Cookies())
	}
}

// TestIdleSessionExpires: a session lives while it is used and ends
// after the configured idle time without a request.
func TestIdleSessionExpires(t *testing.T) {
	ts := apitest.MustServeConfig(t, sqlite.Options{}, func(cfg *api.Config) { cfg.ConsoleIdle = 10 * time.Minute })
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	for range 3 {
		ts.Clock.Advance(6 * time.Minute)
		if resp, _ := v.do("GET", "/console/conflicts", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("a session in use ended: %d", resp.StatusCode)
		}
	}
	ts.Clock.Advance(11 * time.Minute)
	resp, _ := v.do("GET", "/console/conflicts", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/login") {
		t.Errorf("after 11 idle minutes: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestLogoutEndsTheSession: logout needs the CSRF token, and ends the
// session on the server (the old cookie is refused afterwards).
func TestLogoutEndsTheSession(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	v := newVisitor(t, ts)
	old := sessionCookie(v.signIn("sup", nil))
	v.do("GET", "/console/conflicts", nil, nil)
	if resp, _ := v.do("POST", "/console/logout", url.Values{}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout without the token: %d", resp.StatusCode)
	}
	if resp, _ := v.do("POST", "/console/logout", url.Values{"csrf": {v.csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/console/conflicts", nil)
	req.AddCookie(old)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the logged-out cookie still opens pages: %d", resp.StatusCode)
	}
}

// TestPostWithoutCSRFTokenIsRefused: a decision posted without the
// session's token, or with another, is a 403 page and changes nothing.
func TestPostWithoutCSRFTokenIsRefused(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	d := storetest.NewDevice("w")
	at := ts.Clock.Now()
	for _, id := range []string{uuid.NewString(), uuid.NewString()} {
		d.Push(t, ts.Push, storetest.RegisteredHousehold(id, storetest.SouthVillage, "DUP-1", at))
	}
	sup := syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	dups, err := ts.Store.ListDuplicates(context.Background(), sup, syncproto.StateOpen)
	if err != nil || len(dups) != 1 {
		t.Fatalf("duplicates: %v %v", dups, err)
	}
	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	v.do("GET", "/console/duplicates", nil, nil)
	// Another token: the session's with its first character changed (to
	// one it is not: a random token starts with "x" one time in 64).
	other := "x" + v.csrf[1:]
	if other == v.csrf {
		other = "y" + v.csrf[1:]
	}
	for name, form := range map[string]url.Values{"no token": {"note": {"x"}}, "another token": {"note": {"x"}, "csrf": {other}}} {
		resp, body := v.do("POST", "/console/duplicates/"+dups[0].ID+"/dismiss", form, nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "<html") {
			t.Errorf("%s: %d", name, resp.StatusCode)
		}
	}
	if still, _ := ts.Store.ListDuplicates(context.Background(), sup, syncproto.StateOpen); len(still) != 1 {
		t.Errorf("a refused post dismissed the duplicate")
	}
	resp, _ := v.do("POST", "/console/duplicates/"+dups[0].ID+"/dismiss", url.Values{"note": {"两户"}, "csrf": {v.csrf}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("with the token: %d", resp.StatusCode)
	}
}

// TestPhotoThroughTheSession: the household page's photo links open with
// the console session; a session of a supervisor of another county, and
// no session, do not.
func TestPhotoThroughTheSession(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "north", syncproto.RoleSupervisor, "150422")
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	device := uuid.NewString()
	photo, hash := apitest.PhotoPNG(t, 7, 32)
	if st := ts.PhotoClient(t, "worker", device).Upload(t, hash, photo, len(photo)); st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("upload: %d", st)
	}
	hh, ins := uuid.NewString(), uuid.NewString()
	inspection := storetest.HousingInspection(ins, hh, "B", ts.Clock.Now())
	inspection.Fields["photos"] = []byte(`["` + hash + `"]`)
	w := storetest.NewDevice("worker", "500240107")
	w.Actor.DeviceID = device
	w.Push(t, ts.Push, storetest.Household(hh, storetest.SouthVillage, ts.Clock.Now()), inspection)

	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	_, page := v.do("GET", "/console/households/"+hh, nil, nil)
	if !strings.Contains(page, `src="/v1/attachments/`+hash+`"`) {
		t.Fatalf("the household page has no thumbnail of the photo")
	}
	if resp, body := v.do("GET", "/v1/attachments/"+hash, nil, nil); resp.StatusCode != http.StatusOK || body != string(photo) {
		t.Errorf("the photo with the session: %d (%d bytes)", resp.StatusCode, len(body))
	}
	other := newVisitor(t, ts)
	other.signIn("north", nil)
	if resp, _ := other.do("GET", "/v1/attachments/"+hash, nil, nil); resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
		t.Errorf("the photo with another county's session: %d", resp.StatusCode)
	}
	if resp, _ := newVisitor(t, ts).do("GET", "/v1/attachments/"+hash, nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the photo without a session: %d", resp.StatusCode)
	}
	// A session opens downloads only: it is no bearer token for the rest.
	if resp, _ := v.do("GET", "/v1/sync/pull", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a pull with the console session: %d", resp.StatusCode)
	}
}

// TestRevokeATablet: a supervisor revokes a tablet of their region from
// the devices page, and the tablet's next request is refused; a
// supervisor of another county may not, and does not see it.
func TestRevokeATablet(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	ts.AddUser(t, "north", syncproto.RoleSupervisor, "150422")
	ts.AddUser(t, "worker", syncproto.RoleFieldWorker, "500240107")
	device := uuid.NewString()
	token := ts.Login(t, "worker", device)
	w := storetest.NewDevice("worker", "500240107")
	w.Actor.DeviceID = device
	w.Push(t, ts.Push, storetest.Household(uuid.NewString(), storetest.SouthVillage, ts.Clock.Now()))

	other := newVisitor(t, ts)
	other.signIn("north", nil)
	if _, page := other.do("GET", "/console/devices", nil, nil); strings.Contains(page, device) {
		t.Error("another county's supervisor sees the tablet")
	}
	if resp, _ := other.do("POST", "/console/devices/"+device+"/revoke", url.Values{"csrf": {other.csrf}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("revoke by another county's supervisor: %d", resp.StatusCode)
	}
	if resp, _ := ts.DoAs(t, token, "GET", "/v1/sync/pull", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the tablet before the revoke: %d", resp.StatusCode)
	}

	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	if _, page := v.do("GET", "/console/devices", nil, nil); !strings.Contains(page, device) {
		t.Fatal("the supervisor does not see the tablet")
	}
	if resp, _ := v.do("POST", "/console/devices/"+device+"/revoke", url.Values{"csrf": {v.csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if resp, body := ts.DoAs(t, token, "GET", "/v1/sync/pull", "", nil); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "revoked") {
		t.Errorf("the revoked tablet's pull: %d %s", resp.StatusCode, body)
	}
	if _, page := v.do("GET", "/console/devices", nil, nil); !strings.Contains(page, `class="revoked"`) {
		t.Error("the devices page does not show the tablet revoked")
	}
}

// TestCloseAQuarantinedChange: closing needs a note (a 422 page without
// one, and the entry stays open) and closes the entry with it.
func TestCloseAQuarantinedChange(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	hh := uuid.NewString()
	d := storetest.NewDevice("w")
	d.Push(t, ts.Push, storetest.Household(hh, storetest.SouthVillage, ts.Clock.Now()),
		storetest.HousingInspection(uuid.NewString(), hh, "Z", ts.Clock.Now()))
	sup := syncproto.Actor{UserID: "sup", Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	open, _, err := ts.Store.ListQuarantine(context.Background(), sup, syncproto.StateOpen, 0, 10)
	if err != nil || len(open) != 1 {
		t.Fatalf("quarantine: %v %v", open, err)
	}
	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	if _, page := v.do("GET", "/console/quarantine", nil, nil); !strings.Contains(page, "/console/quarantine/"+open[0].ID+"/close") {
		t.Fatal("the entry is not on the quarantine page")
	}
	if resp, _ := v.do("POST", "/console/quarantine/"+open[0].ID+"/close", url.Values{"csrf": {v.csrf}}, nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("close without a note: %d", resp.StatusCode)
	}
	v.do("GET", "/console/quarantine", nil, nil)
	if resp, _ := v.do("POST", "/console/quarantine/"+open[0].ID+"/close", url.Values{"csrf": {v.csrf}, "note": {"等级填错，已重新鉴定"}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("close: %d", resp.StatusCode)
	}
	closed, _, _ := ts.Store.ListQuarantine(context.Background(), sup, syncproto.StateClosed, 0, 10)
	if len(closed) != 1 || closed[0].Closed == nil || closed[0].Closed.Note != "等级填错，已重新鉴定" || closed[0].Closed.By != "sup" {
		t.Errorf("closed: %+v", closed)
	}
	if _, page := v.do("GET", "/console/quarantine", nil, nil); strings.Contains(page, open[0].ID) {
		t.Error("the closed entry is still on the page")
	}
}

// TestBadInputIsAPage: a wrong region, record or decision is a 4xx page
// saying why, never a 500.
func TestBadInputIsAPage(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	d := storetest.NewDevice("w")
	for _, id := range []string{uuid.NewString(), uuid.NewString()} {
		d.Push(t, ts.Push, storetest.RegisteredHousehold(id, storetest.SouthVillage, "DUP-9", ts.Clock.Now()))
	}
	dups, _ := ts.Store.ListDuplicates(context.Background(), syncproto.Actor{AllRegions: true}, syncproto.StateOpen)
	if len(dups) != 1 {
		t.Fatalf("duplicates: %v", dups)
	}
	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	v.do("GET", "/console/conflicts", nil, nil)
	tests := []struct {
		name, method, path string
		form               url.Values
		status             int
	}{
		{"region not a code", "GET", "/console/region/abc", nil, 404},
		{"region too long", "GET", "/console/map/5002401072011", nil, 404},
		{"region outside the scope", "GET", "/console/region/150422", nil, 403},
		{"household not a uuid", "GET", "/console/households/xyz", nil, 404},
		{"household unknown", "GET", "/console/households/" + uuid.NewString(), nil, 404},
		{"conflict unknown", "POST", "/console/conflicts/" + uuid.NewString() + "/resolve", url.Values{"choose": {"stored"}}, 404},
		{"survivor not of the pair", "POST", "/console/duplicates/" + dups[0].ID + "/merge", url.Values{"survivor": {uuid.NewString()}}, 422},
		{"note too long", "POST", "/console/duplicates/" + dups[0].ID + "/dismiss", url.Values{"note": {strings.Repeat("长", 5000)}}, 422},
		{"body too large", "POST", "/console/duplicates/" + dups[0].ID + "/dismiss", url.Values{"note": {strings.Repeat("x", 100<<10)}}, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.form != nil {
				tc.form.Set("csrf", v.csrf)
			}
			resp, body := v.do(tc.method, tc.path, tc.form, nil)
			if resp.StatusCode != tc.status || !strings.Contains(body, "<h1>") {
				t.Errorf("%d, want %d: %.300s", resp.StatusCode, tc.status, body)
			}
		})
	}
}

// TestOverviewLabelsTheWaterCriteria: the overview's water table names
// version 2's criteria by their labels in the console's language, not by
// their keys.
func TestOverviewLabelsTheWaterCriteria(t *testing.T) {
	ts := apitest.MustServe(t)
	ts.AddUser(t, "sup", syncproto.RoleSupervisor, "500240")
	hh, water := uuid.NewString(), uuid.NewString()
	w := storetest.NewDevice("worker", "500240107")
	w.Push(t, ts.Push, storetest.Household(hh, storetest.SouthVillage, ts.Clock.Now()),
		storetest.WaterInspection(water, hh, ts.Clock.Now()))
	v := newVisitor(t, ts)
	v.signIn("sup", nil)
	for _, c := range []struct {
		lang string
		want []string
	}{{"zh", []string{"水质", "水量", "用水方便程度", "供水保障率"}},
		{"en", []string{"Water quality", "Water quantity", "Convenience", "Reliability of supply"}}} {
		lang, want := c.lang, c.want
		v.do("GET", "/console/lang/"+lang, nil, nil)
		_, page := v.do("GET", "/console/region/500240", nil, nil)
		for _, label := range want {
			if !strings.Contains(page, `<th scope="row">`+label+`</th>`) {
				t.Errorf("lang %s: the overview's water table lacks %q", lang, label)
			}
		}
		if strings.Contains(page, `<th scope="row">convenience</th>`) {
			t.Errorf("lang %s: the overview names a criterion by its key", lang)
		}
	}
}
