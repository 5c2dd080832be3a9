package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

// RateLimits bound abuse. Logins count failures, not attempts: per user
// name and client address, and per client address (an IPv6 client by its
// /64, auth.AddressKey), so that nobody's wrong passwords lock out a user
// who logs in from elsewhere. Refreshes count attempts per address, pushes
// per device. The hashes a login costs are bounded apart, for the whole
// process (Config.HashGate).
type RateLimits struct {
	LoginPerUser      Rate // failed logins per (user name, address)
	LoginPerAddress   Rate // failed logins per address, whatever the name
	RefreshPerAddress Rate // refresh attempts per address
	PushPerDevice     Rate
}

// Rate is a token bucket: Burst events at once, one more every Every.
type Rate struct {
	Every time.Duration
	Burst int
}

// DefaultRateLimits are the limits the README documents.
var DefaultRateLimits = RateLimits{
	LoginPerUser:      Rate{Every: 12 * time.Second, Burst: 5}, // 5 failures, then one per 12 s
	LoginPerAddress:   Rate{Every: 2 * time.Second, Burst: 30}, // a team behind one NAT mistypes too
	RefreshPerAddress: Rate{Every: 2 * time.Second, Burst: 30}, // a team behind one NAT refreshes together
	PushPerDevice:     Rate{Every: 100 * time.Millisecond, Burst: 30},
}

func (r Rate) limiter() *auth.Limiter {
	if r.Burst <= 0 {
		return nil
	}
	return auth.NewLimiter(r.Every, r.Burst)
}

func unauthorized(msg string) error {
	return &syncproto.Error{Code: syncproto.EUnauthorized, Title: "Unauthorized", Message: msg}
}

// deviceRevoked is the answer to every request of a revoked tablet: its
// own problem type, so that the app can tell its user that logging in again
// will not help.
func deviceRevoked() error {
	return &syncproto.Error{Code: syncproto.ERevoked, Title: "Device revoked",
		Message: "this device was revoked; ask a supervisor"}
}

// accountDisabled is the answer to a disabled user's token (and to their
// login with the right password): its own problem type, so that the app
// tells its user to ask an admin rather than to log in again.
func accountDisabled() error {
	return &syncproto.Error{Code: syncproto.EAccountDisabled, Title: "Account disabled",
		Message: "this account is disabled; ask an admin to enable it, then log in again"}
}

// sessionEnded is the answer to a token of a session that has ended: the
// app should ask its user to log in again.
func sessionEnded(msg string) error {
	return &syncproto.Error{Code: syncproto.ESessionEnded, Title: "Session ended", Message: msg}
}

func rateLimited(retry int, what string) error {
	return &syncproto.Error{Code: syncproto.ERateLimited, Title: "Too many requests",
		Message: "too many " + what + "; try again later", RetryIn: time.Duration(retry) * time.Second}
}

// authenticate is the one gate of every /v1 endpoint but the two token
// endpoints: it verifies the bearer token (signature, algorithm, key id,
// expiry) and then the live state behind it (the user exists and is
// enabled, the session is not revoked, the device is not revoked). The
// request acts with the user's current role and scope, read from the
// database, so a narrowed scope or a disabled user takes effect at once.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a, ok := s.consoleActor(c); ok {
			c.Set(actorKey, a) // a console session's download (console.go)
			return next(c)
		}
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return unauthorized("send Authorization: Bearer <access token> (POST /v1/auth/token)")
		}
		claims, err := s.keys.Verify(strings.TrimSpace(token))
		if err != nil {
			s.reqLog(c).Info("token refused", "reason", err.Error())
			return unauthorized("the access token is invalid or expired")
		}
		st, err := s.accounts.Access(c.Request().Context(), claims.Subject, claims.Sid, claims.Dev, s.now())
		if err != nil {
			return err
		}
		switch {
		case st.DeviceRevoked:
			return deviceRevoked()
		case st.User == nil:
			return unauthorized("the access token is invalid or expired")
		case st.User.Disabled:
			return accountDisabled()
		case !st.SessionActive:
			return sessionEnded("this session has ended; log in again")
		}
		c.Set(actorKey, st.User.Actor(claims.Dev))
		return next(c)
	}
}

// requireRole lets only the given roles through (403 otherwise).
func requireRole(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			a, _ := c.Get(actorKey).(syncproto.Actor)
			for _, r := range roles {
				if a.Role == r {
					return next(c)
				}
			}
			return &syncproto.Error{Code: syncproto.EForbidden, Title: "Forbidden",
				Message: "your role (" + a.Role + ") may not use this endpoint; it needs " + strings.Join(roles, " or ")}
		}
	}
}

// TokenResponse is the answer of both token endpoints.
type TokenResponse struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
}

// decodeStrict decodes a request body into v: a key repeated in an
// object or a list over syncproto.DefaultMaxItems is refused first
// (syncproto.CheckJSON), then an unknown key, a wrong type or trailing
// data.
func decodeStrict(body []byte, v any) error {
	if err := syncproto.CheckJSON(body, nil); err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &syncproto.Error{Code: syncproto.EMalformed, Title: "Malformed JSON", Message: "the body could not be decoded",
			Errors: []syncproto.FieldError{{Path: "$", Message: "must be a JSON object with the documented keys"}}}
	}
	return nil
}

// handleToken is POST /v1/auth/token: a password login on a device.
func (s *Server) handleToken(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
		DeviceID string `json:"device_id"`
		// DeviceName is an optional name of the tablet for the devices
		// list (see checkDeviceName).
		DeviceName string `json:"device_name"`
	}
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	errs := checkDeviceName(req.DeviceName)
	if req.Username == "" {
		errs = append(errs, syncproto.FieldError{Path: "username", Message: "is required"})
	}
	if req.Password == "" {
		errs = append(errs, syncproto.FieldError{Path: "password", Message: "is required"})
	}
	if id, err := uuid.Parse(req.DeviceID); err != nil || len(req.DeviceID) != 36 {
		errs = append(errs, syncproto.FieldError{Path: "device_id", Message: "must be the device's UUID"})
	} else {
		req.DeviceID = id.String()
	}
	if len(errs) > 0 {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid login", Message: "the login is incomplete", Errors: errs}
	}
	// Every refusal here comes before the password is hashed: the hash
	// is what a flood would spend (19 MiB and a core for tens of ms).
	addr := auth.AddressKey(c.RealIP())
	if blocked, retry := s.loginFailsByAddr.Blocked(addr); blocked {
		return rateLimited(retry, "failed logins from this address")
	}
	if len(req.Username) > 64 || len(req.Password) > 1024 {
		s.loginFailsByAddr.Fail(addr)
		return unauthorized("unknown user, wrong password, or disabled account")
	}
	userAddr := strings.ToLower(req.Username) + " " + addr
	if blocked, retry := s.loginFailsByUser.Blocked(userAddr); blocked {
		return rateLimited(retry, "failed logins for this user from this address")
	}
	ctx := c.Request().Context()
	user, err := s.accounts.User(ctx, req.Username)
	if err != nil {
		return err
	}
	hash := ""
	if user != nil {
		hash = user.PasswordHash
	}
	release, refused, retry := s.hashGate.Enter(ctx, addr)
	switch refused {
	case auth.GateKeyBusy:
		return rateLimited(retry, "logins at once from this address")
	case auth.GateFull:
		return &syncproto.Error{Code: syncproto.EUnavailable, Title: "Too many logins",
			Message: "the server is checking too many passwords at once; try again shortly", RetryIn: time.Duration(retry) * time.Second}
	}
	// Verify even for an unknown user, so that timing does not tell
	// which names exist.
	matched := auth.VerifyPassword(hash, req.Password)
	release()
	if !matched || user == nil {
		s.loginFailsByUser.Fail(userAddr)
		s.loginFailsByAddr.Fail(addr)
		s.reqLog(c).Info("login refused", "user", req.Username, "addr", c.RealIP())
		return unauthorized("unknown user, wrong password, or disabled account")
	}
	s.loginFailsByUser.Forget(userAddr)
	if user.Disabled {
		// Only to whoever knows the password: that the account exists
		// and is disabled tells them what to do.
		s.reqLog(c).Info("login refused: account disabled", "user", req.Username, "addr", c.RealIP())
		return accountDisabled()
	}
	now := s.now()
	sess := auth.Session{ID: newUUIDv7(), User: user.Name, DeviceID: req.DeviceID, CreatedAt: now, ExpiresAt: now.Add(auth.RefreshTTL)}
	refresh, hashRefresh := auth.NewRefreshToken(sess.ID)
	// The device's claim is checked in the session's own write
	// transaction: two users logging in at once on a new device id cannot
	// both get it.
	switch err := s.accounts.CreateSession(ctx, sess, hashRefresh); {
	case errors.Is(err, auth.ErrDeviceRevoked):
		return deviceRevoked()
	case errors.Is(err, auth.ErrDeviceTaken):
		return &syncproto.Error{Code: syncproto.EForbidden, Title: "Device in use",
			Message: "this device id is registered to another user; a tablet that changes hands uses a new device id",
			Errors:  []syncproto.FieldError{{Path: "device_id", Message: "is registered to another user"}}}
	case err != nil:
		return err
	}
	if req.DeviceName != "" {
		if err := s.store.NameDevice(ctx, req.DeviceID, req.DeviceName); err != nil {
			return err
		}
	}
	s.reqLog(c).Info("login", "user", user.Name, "device", req.DeviceID, "session", sess.ID)
	return s.issue(c, *user, sess, refresh)
}

// handleRefresh is POST /v1/auth/refresh: a new access token and a new
// refresh token for the current refresh token. Presenting a rotated one
// revokes the session.
func (s *Server) handleRefresh(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if ok, retry := s.refreshByAddr.Allow(auth.AddressKey(c.RealIP())); !ok {
		return rateLimited(retry, "token requests from this address")
	}
	sid, presented, ok := auth.SplitRefreshToken(req.RefreshToken)
	if !ok {
		return &syncproto.Error{Code: syncproto.EUnauthorized, Title: "Unauthorized", Message: "the refresh token is invalid",
			Errors: []syncproto.FieldError{{Path: "refresh_token", Message: "is not a refresh token of this server"}}}
	}
	now := s.now()
	newToken, newHash := auth.NewRefreshToken(sid)
	ctx := c.Request().Context()
	outcome, sess, err := s.accounts.Refresh(ctx, sid, presented, newHash, now, now.Add(auth.RefreshTTL))
	if err != nil {
		return err
	}
	switch outcome {
	case auth.RefreshReused:
		s.reqLog(c).Warn("refresh token reused: session revoked", "user", sess.User, "device", sess.DeviceID, "session", sid)
		return sessionEnded("this refresh token was already used; the session is revoked, log in again")
	case auth.RefreshInvalid:
		return sessionEnded("the refresh token is invalid, expired or revoked; log in again")
	}
	st, err := s.accounts.Access(ctx, sess.User, sess.ID, sess.DeviceID, now)
	if err != nil {
		return err
	}
	if st.DeviceRevoked {
		return deviceRevoked()
	}
	if st.User == nil {
		return sessionEnded("this account no longer exists")
	}
	if st.User.Disabled {
		return accountDisabled()
	}
	return s.issue(c, *st.User, *sess, newToken)
}

func (s *Server) issue(c echo.Context, user auth.User, sess auth.Session, refresh string) error {
	now := s.now()
	scope := user.Scope
	if user.Role == syncproto.RoleAdmin {
		scope = []string{}
	}
	access, err := s.keys.Sign(auth.NewClaims(user.Name, user.Role, scope, sess.DeviceID, sess.ID, now))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return writeJSON(c, http.StatusOK, TokenResponse{AccessToken: access, TokenType: "Bearer",
		ExpiresIn: int(auth.AccessTTL.Seconds()), RefreshToken: refresh,
		RefreshExpiresIn: int(sess.ExpiresAt.Sub(now).Seconds())})
}

// handleRevokeDevice is POST /v1/devices/{device_id}/revoke: every token
// of the device stops working at once (a lost tablet). A supervisor may
// revoke a device whose users all work inside the supervisor's scope.
func (s *Server) handleRevokeDevice(c echo.Context) error {
	device, _, err := s.supervisedDevice(c)
	if err != nil {
		return err
	}
	actor := s.actor(c)
	ctx := c.Request().Context()
	now := s.now()
	if err := s.accounts.RevokeDevice(ctx, device, actor.UserID, now); err != nil {
		return err
	}
	s.reqLog(c).Warn("device revoked", "device", device, "by", actor.UserID)
	return writeJSON(c, http.StatusOK, map[string]any{"device_id": device, "revoked": true,
		"revoked_by": actor.UserID, "revoked_at": syncproto.FormatTime(now)})
}

// supervisedDevice reads the path's device_id and returns it with the users
// who logged in on it, when the caller may act on that device: an admin on
// any, a supervisor on one whose users all work inside the supervisor's
// scope (403 otherwise, 404 for a device nobody logged in on).
func (s *Server) supervisedDevice(c echo.Context) (string, []auth.User, error) {
	id, err := uuid.Parse(c.Param("device_id"))
	if err != nil || len(c.Param("device_id")) != 36 {
		return "", nil, &syncproto.Error{Code: syncproto.ENotFound, Message: "no such device",
			Errors: []syncproto.FieldError{{Path: "path.device_id", Message: "must be a UUID"}}}
	}
	device := id.String()
	actor := s.actor(c)
	users, err := s.accounts.DeviceUsers(c.Request().Context(), device)
	if err != nil {
		return "", nil, err
	}
	if len(users) == 0 {
		return "", nil, &syncproto.Error{Code: syncproto.ENotFound, Message: "no user has logged in on device " + device,
			Errors: []syncproto.FieldError{{Path: "path.device_id", Message: "is no device the server knows"}}}
	}
	for _, u := range users {
		if !actor.AllRegions && (u.Role == syncproto.RoleAdmin || !actor.Covers(u.Scope)) {
			return "", nil, &syncproto.Error{Code: syncproto.EForbidden, Message: "this device's user works outside your scope",
				Errors: []syncproto.FieldError{{Path: "path.device_id", Message: "belongs to a user outside your scope"}}}
		}
	}
	return device, users, nil
}

func newUUIDv7() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
