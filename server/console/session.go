package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/fieldsync/fieldsync/server/auth"
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

// maxForm bounds the body of a form post: every form of the console is
// a few fields.
const maxForm = 64 << 10

// Sessions are kept in the store (auth.ConsoleSessions), so that a restart
// signs nobody out and every instance on one database shares them: the
// cookie holds a random token, the store its hash only. A session ends
// after Config.Idle without a request, after Config.MaxAge in all, at
// sign-out, and when its user is disabled or gets a new password or role.
// A request renews the session's last-seen time only when it is at least
// auth.ConsoleSeenEvery old, so that reading pages does not write on every
// click; a sign-in sweeps up to auth.ConsoleSweepBatch expired sessions.

// session is one signed-in browser.
type session struct {
	token, hash, user, csrf string
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() string { return auth.NewConsoleToken() }

// startSession opens a session for user and returns its token, first
// sweeping a batch of expired ones.
func (c *Console) startSession(ctx context.Context, user string) (string, error) {
	now := c.cfg.Now()
	if _, err := c.cfg.Accounts.SweepConsoleSessions(ctx, now, auth.ConsoleSweepBatch); err != nil {
		c.cfg.Log.Error("console: sweep sessions", "err", err)
	}
	token := auth.NewConsoleToken()
	err := c.cfg.Accounts.CreateConsoleSession(ctx, auth.ConsoleSession{TokenHash: auth.ConsoleTokenHash(token), User: user,
		CreatedAt: now, SeenAt: now, IdleExpiresAt: now.Add(c.cfg.Idle), ExpiresAt: now.Add(c.cfg.MaxAge)})
	return token, err
}

// sessionOf returns the live session of a request's cookie, or nil,
// renewing its last-seen time when that is auth.ConsoleSeenEvery old (or
// half the idle time, when that is shorter).
func (c *Console) sessionOf(r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		return nil, nil
	}
	ctx := r.Context()
	hash := auth.ConsoleTokenHash(ck.Value)
	now := c.cfg.Now()
	cs, err := c.cfg.Accounts.ConsoleSession(ctx, hash, now)
	if err != nil || cs == nil {
		return nil, err
	}
	// At most once a minute, and at least twice an idle time (a short
	// --console-idle must not end busy sessions).
	if now.Sub(cs.SeenAt) >= min(auth.ConsoleSeenEvery, c.cfg.Idle/2) {
		if err := c.cfg.Accounts.TouchConsoleSession(ctx, hash, now, now.Add(c.cfg.Idle)); err != nil {
			return nil, err
		}
	}
	return &session{token: ck.Value, hash: hash, user: cs.User, csrf: auth.ConsoleCSRF(ck.Value)}, nil
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
		s, err := c.sessionOf(r)
		if err != nil {
			c.fail(w, r, lang, err)
			return
		}
		var actor syncproto.Actor
		if s != nil {
			u, err := c.cfg.Accounts.User(r.Context(), s.user)
			switch {
			case err != nil:
				c.fail(w, r, lang, err)
				return
			case u == nil || u.Disabled:
				if err := c.cfg.Accounts.EndConsoleSession(r.Context(), s.hash); err != nil {
					c.fail(w, r, lang, err)
					return
				}
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
	token, err := c.startSession(r.Context(), u.Name)
	if err != nil {
		c.fail(w, r, lang, err)
		return
	}
	setCookie(w, r, sessionCookie, token, 0)
	setCookie(w, r, loginCookie, "", -1)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// handleLogout ends the session.
func (c *Console) handleLogout(q *request) {
	if err := c.cfg.Accounts.EndConsoleSession(q.r.Context(), q.session.hash); err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
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
