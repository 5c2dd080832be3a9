package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/postgres/pgtest"
)

// consoleBrowser signs in to the web console of real servers as a browser
// does: a cookie jar (cookies are per host, not per port, so one jar
// carries a session to every instance on 127.0.0.1) and no redirects
// followed.
type consoleBrowser struct {
	t    *testing.T
	http *http.Client
	csrf string
}

func newConsoleBrowser(t *testing.T) *consoleBrowser {
	jar, _ := cookiejar.New(nil)
	return &consoleBrowser{t: t, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// do sends a request (a form post when form is not nil) and keeps the
// page's CSRF token.
func (b *consoleBrowser) do(method, target string, form url.Values) *http.Response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := consoleCSRF.FindSubmatch(page); m != nil {
		b.csrf = string(m[1])
	}
	return resp
}

// signIn signs in at base.
func (b *consoleBrowser) signIn(base, user, password string) {
	b.t.Helper()
	b.do("GET", base+"/console/login", nil)
	resp := b.do("POST", base+"/console/login", url.Values{"csrf": {b.csrf}, "username": {user}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		b.t.Fatalf("sign-in at %s: %d %s", base, resp.StatusCode, resp.Header.Get("Location"))
	}
}

// page reports whether a console page at base opens (200) or sends to the
// sign-in form (false); anything else fails the test.
func (b *consoleBrowser) page(base string) bool {
	b.t.Helper()
	resp := b.do("GET", base+"/console/conflicts", nil)
	switch {
	case resp.StatusCode == http.StatusOK:
		return true
	case resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/console/login"):
		return false
	}
	b.t.Fatalf("a console page at %s: %d", base, resp.StatusCode)
	return false
}

// signOut posts the sign-out form at base with the last page's token.
func (b *consoleBrowser) signOut(base string) {
	b.t.Helper()
	if resp := b.do("POST", base+"/console/logout", url.Values{"csrf": {b.csrf}}); resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign-out at %s: %d", base, resp.StatusCode)
	}
}

// cookieValue is the console session cookie the browser holds for base.
func (b *consoleBrowser) cookieValue(base string) string {
	u, _ := url.Parse(base)
	for _, c := range b.http.Jar.Cookies(u) {
		if c.Name == "fieldsync_console" {
			return c.Value
		}
	}
	return ""
}

// TestConsoleSessionSurvivesARestart: a supervisor signed in to the
// console stays signed in across a restart of the real server on the same
// SQLite file (the page opens, a form posts with the same CSRF token), and
// the database files hold no copy of the cookie's token.
func TestConsoleSessionSurvivesARestart(t *testing.T) {
	dataDir := t.TempDir()
	const password = "supervisor-password"
	cli(t, password+"\n", "user", "add", "--create", "--data", dataDir, "--name", "sup", "--role", "supervisor", "--scope", "500240")
	p := startBinary(t, dataDir)
	b := newConsoleBrowser(t)
	b.signIn(p.url, "sup", password)
	if !b.page(p.url) {
		t.Fatal("no page right after sign-in")
	}
	token, csrf := b.cookieValue(p.url), b.csrf
	if token == "" {
		t.Fatal("no session cookie")
	}
	p.stop(t)

	files, _ := filepath.Glob(filepath.Join(dataDir, "fieldsync.db*"))
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(token)) {
			t.Errorf("%s holds the session cookie's token", filepath.Base(f))
		}
	}

	q := startBinary(t, dataDir)
	if !b.page(q.url) {
		t.Fatal("the restarted server sent the signed-in supervisor to the sign-in page")
	}
	if b.csrf != csrf {
		t.Errorf("the session's CSRF token changed across the restart")
	}
	b.signOut(q.url)
	if b.page(q.url) {
		t.Error("a page opened after sign-out")
	}
}

// TestConsoleSessionsSharedByInstancesOnOnePostgres: two real servers on
// one PostgreSQL database share console sessions: signed in at A, a page
// opens at B; signed out at B, the session is gone at A; a user disabled
// with `fieldsync user disable --store` is refused at both.
func TestConsoleSessionsSharedByInstancesOnOnePostgres(t *testing.T) {
	c := pgtest.Shared(t)
	store, drop, err := c.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drop() })
	const password = "supervisor-password"
	cli(t, password+"\n", "user", "add", "--store", store, "--name", "sup", "--role", "supervisor", "--scope", "500240")
	ps := startInstances(t, 2, store, t.TempDir())
	a, b := ps[0].url, ps[1].url

	br := newConsoleBrowser(t)
	br.signIn(a, "sup", password)
	if !br.page(b) {
		t.Fatal("a session opened at A is unknown at B")
	}
	br.signOut(b) // with the token of B's page
	if br.page(a) {
		t.Fatal("signed out at B, the session still opens pages at A")
	}

	br.signIn(a, "sup", password)
	if !br.page(b) || !br.page(a) {
		t.Fatal("a second session is not shared")
	}
	cli(t, "", "user", "disable", "--store", store, "--name", "sup")
	for _, base := range []string{a, b} {
		if br.page(base) {
			t.Errorf("a disabled user's session opens pages at %s", base)
		}
	}
	cli(t, "", "user", "enable", "--store", store, "--name", "sup")
	if br.page(a) {
		t.Error("enabled again, the session that disabling ended is back")
	}
}
