package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// The cookies of the console. The session cookie is HttpOnly and
// SameSite=Strict, and Secure when the request came over TLS or through a
// proxy that says so (X-Forwarded-Proto: https).
const (
	sessionCookie = "fieldsync_console"
	loginCookie   = "fieldsync_login" // the sign-in form's CSRF token, before there is a session
	langCookie    = "fieldsync_lang"
)

// Sessions are kept in memory: a restart signs everyone out (a supervisor
// signs in again), and nothing of them reaches the database. At most
// maxSessionsPerUser per user (a new sign-in ends the oldest) and
// maxSessions in all (the least recently used go first).
const (
	maxSessionsPerUser = 20
	maxSessions        = 10000
)

// maxForm bounds the body of a form post: every form of the console is
// a few fields.
const maxForm = 64 << 10

// session is one signed-in browser.
type session struct {
	id, user, csrf string
	created, seen  time.Time
}

// sessions is the console's session table.
type sessions struct {
	mu   sync.Mutex
	idle time.Duration
	now  func() time.Time
	byID map[string]*session
}

func newSessions(idle time.Duration, now func() time.Time) *sessions {
	return &sessions{idle: idle, now: now, byID: map[string]*session{}}
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// start opens a session for user.
func (ss *sessions) start(user string) *session {
	now := ss.now()
	s := &session{id: randomToken(), user: user, csrf: randomToken(), created: now, seen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var mine []*session
	var oldest *session
	for _, o := range ss.byID {
		if now.Sub(o.seen) > ss.idle {
			delete(ss.byID, o.id)
			continue
		}
		if o.user == user {
			mine = append(mine, o)
		}
		if oldest == nil || o.seen.Before(oldest.seen) {
			oldest = o
		}
	}
	if len(mine) >= maxSessionsPerUser {
		first := mine[0]
		for _, o := range mine {
			if o.created.Before(first.created) {
				first = o
			}
		}
		delete(ss.byID, first.id)
	} else if len(ss.byID) >= maxSessions && oldest != nil {
		delete(ss.byID, oldest.id)
	}
	ss.byID[s.id] = s
	return s
}

// of returns the live session of a request's cookie and marks it seen, or
// nil; an idle one is ended.
func (ss *sessions) of(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[ck.Value]
	if s == nil {
		return nil
	}
	now := ss.now()
	if now.Sub(s.seen) > ss.idle {
		delete(ss.byID, s.id)
		return nil
	}
	s.seen = now
	return s
}

// end ends a session.
func (ss *sessions) end(s *session) {
	ss.mu.Lock()
	delete(ss.byID, s.id)
	ss.mu.Unlock()
}

// secure reports whether the browser reached us over HTTPS.
func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge})
}

// sameToken compares tokens in constant time.
func sameToken(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// request is what a signed-in page handler is given.
type request struct {
	w       http.ResponseWriter
	r       *http.Request
	session *session
	actor   syncproto.Actor
	lang    string
}

// signedIn lets a request through with a live session of an enabled user
// (else to the sign-in page, or 403 for a form post), and every POST only
// with the session's CSRF token (a 403 page otherwise).
func (c *Console) signedIn(h func(*request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lang := langOf(r)
		r.Body = http.MaxBytesReader(w, r.Body, bodyLimit(r))
		s := c.sessions.of(r)
		var actor syncproto.Actor
		if s != nil {
			u, err := c.cfg.Accounts.User(r.Context(), s.user)
			switch {
			case err != nil:
				c.fail(w, r, lang, err)
				return
			case u == nil || u.Disabled:
				c.sessions.end(s)
				s = nil
			default:
				actor = u.Actor(ConsoleDevice)
			}
		}
		if s == nil {
			if r.Method != http.MethodGet {
				c.refuse(w, r, lang, http.StatusForbidden, "msg_signin_again")
				return
			}
			http.Redirect(w, r, "/console/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			var tooLarge *http.MaxBytesError
			if err := parseForm(r); errors.As(err, &tooLarge) {
				c.refuse(w, r, lang, http.StatusRequestEntityTooLarge, "msg_too_large")
				return
			}
		}
		if r.Method == http.MethodPost && !sameToken(r.PostFormValue("csrf"), s.csrf) {
			c.refuse(w, r, lang, http.StatusForbidden, "msg_csrf")
			return
		}
		h(&request{w: w, r: r, session: s, actor: actor, lang: lang})
	}
}

// supervisor is signedIn for supervisors and admins only (a 403 page for
// a field worker).
func (c *Console) supervisor(h func(*request)) http.HandlerFunc {
	return c.signedIn(func(q *request) {
		if q.actor.Role != syncproto.RoleSupervisor && q.actor.Role != syncproto.RoleAdmin {
			c.refuse(q.w, q.r, q.lang, http.StatusForbidden, "msg_role")
			return
		}
		h(q)
	})
}

// reader is signedIn for the roles that read a region's pages
// (supervisors, admins and viewers; a 403 page for a field worker). A
// viewer changes nothing: every decision stays supervisor.
func (c *Console) reader(h func(*request)) http.HandlerFunc {
	return c.signedIn(func(q *request) {
		switch q.actor.Role {
		case syncproto.RoleSupervisor, syncproto.RoleAdmin, syncproto.RoleViewer:
			h(q)
		default:
			c.refuse(q.w, q.r, q.lang, http.StatusForbidden, "msg_role")
		}
	})
}

// handleLoginPage shows the sign-in form with a fresh CSRF token in a
// cookie of its own.
func (c *Console) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	c.loginForm(w, r, http.StatusOK, "")
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomToken()
	setCookie(w, r, loginCookie, token, 3600)
	lang := langOf(r)
	c.render(w, r, status, "login", lang, nil, map[string]any{"CSRF": token, "Next": safeNext(r.FormValue("next")),
		"Message": msg, "User": r.PostFormValue("username")})
}

// handleLogin checks the password (through Config.Login, the API's
// limits) and opens a session.
func (c *Console) handleLogin(w http.ResponseWriter, r *http.Request) {
	lang := langOf(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(r.PostFormValue("csrf"), ck.Value) {
		c.refuse(w, r, lang, http.StatusForbidden, "msg_csrf")
		return
	}
	name, password := r.PostFormValue("username"), r.PostFormValue("password")
	if name == "" || password == "" {
		c.loginForm(w, r, http.StatusUnprocessableEntity, t(lang, "msg_login_incomplete"))
		return
	}
	u, msg := c.cfg.Login(r.Context(), r, name, password)
	if u == nil {
		c.loginForm(w, r, http.StatusUnauthorized, t(lang, msg))
		return
	}
	s := c.sessions.start(u.Name)
	setCookie(w, r, sessionCookie, s.id, 0)
	setCookie(w, r, loginCookie, "", -1)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// handleLogout ends the session.
func (c *Console) handleLogout(q *request) {
	c.sessions.end(q.session)
	setCookie(q.w, q.r, sessionCookie, "", -1)
	http.Redirect(q.w, q.r, "/console/login", http.StatusSeeOther)
}

// safeNext is a same-site path to go to after signing in.
func safeNext(next string) string {
	if len(next) < 9 || next[:9] != "/console/" || len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "/console/"
	}
	for _, ch := range next {
		if ch == '\\' || ch < ' ' {
			return "/console/"
		}
	}
	return next
}
