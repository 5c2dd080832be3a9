package api

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/console"
	"github.com/fieldsync/fieldsync/syncproto"
)

// newConsole builds the supervisors' web console over the same services
// as the API (its decisions are the SupervisionService's, its reports the
// ReportService's), with the API's password check.
func (s *Server) newConsole(cfg Config) *console.Console {
	return console.New(console.Config{Store: s.store, Accounts: s.accounts, Schema: s.schema, Supervision: s.supervision,
		Reports: s.reports, Login: s.consoleLogin, Divisions: s.divisions, Now: s.now, Idle: cfg.ConsoleIdle,
		ReinspectAfter: s.reinspectAfter, Tiles: cfg.MapTiles, TilesGCJ02: cfg.MapTilesGCJ02, Log: s.log})
}

// consoleLogin checks a console sign-in as handleToken checks a login:
// the same failure limits per user and address, the same hash gate, a
// hash even for an unknown name. It returns the user, or nil and the key
// of the console's message for the refusal.
func (s *Server) consoleLogin(ctx context.Context, r *http.Request, name, password string) (*auth.User, string) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr := auth.AddressKey(host)
	if blocked, _ := s.loginFailsByAddr.Blocked(addr); blocked {
		return nil, "msg_rate_limited"
	}
	if len(name) > 64 || len(password) > 1024 {
		s.loginFailsByAddr.Fail(addr)
		return nil, "msg_login_failed"
	}
	userAddr := strings.ToLower(name) + " " + addr
	if blocked, _ := s.loginFailsByUser.Blocked(userAddr); blocked {
		return nil, "msg_rate_limited"
	}
	user, err := s.accounts.User(ctx, name)
	if err != nil {
		s.log.Error("console sign-in", "err", err)
		return nil, "msg_internal"
	}
	hash := ""
	if user != nil {
		hash = user.PasswordHash
	}
	release, refused, _ := s.hashGate.Enter(ctx, addr)
	if refused != auth.GateAdmitted {
		return nil, "msg_rate_limited"
	}
	matched := auth.VerifyPassword(hash, password)
	release()
	if !matched || user == nil {
		s.loginFailsByUser.Fail(userAddr)
		s.loginFailsByAddr.Fail(addr)
		s.log.Info("console sign-in refused", "user", name, "addr", host)
		return nil, "msg_login_failed"
	}
	s.loginFailsByUser.Forget(userAddr)
	if user.Disabled {
		return nil, "msg_disabled"
	}
	s.log.Info("console sign-in", "user", user.Name, "addr", host)
	return user, ""
}

// consoleDownloads are the GET endpoints a console session may call
// without a bearer token: the photos and exports the console links to.
var consoleDownloads = []string{"/v1/attachments/", "/v1/snapshot", "/v1/reports/", "/v1/reinspections"}

// consoleActor is the actor of the console session of a GET
// download request without an Authorization header, if it has a live one.
// (The session cookie is SameSite=Strict, and these requests only read.)
func (s *Server) consoleActor(c echo.Context) (syncproto.Actor, bool) {
	r := c.Request()
	if s.console == nil || r.Method != http.MethodGet || r.Header.Get(echo.HeaderAuthorization) != "" {
		return syncproto.Actor{}, false
	}
	for _, p := range consoleDownloads {
		if strings.HasPrefix(r.URL.Path, p) {
			return s.console.Actor(r)
		}
	}
	return syncproto.Actor{}, false
}
