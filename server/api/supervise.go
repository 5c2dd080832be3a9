package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// regionScope returns the scope a supervisor endpoint works in: the
// region= parameter (a division-code prefix of 2 to 12 digits), which must
// lie inside the caller's scope (403 otherwise), or the caller's whole scope
// when it is absent. The returned Actor carries the caller's identity with
// Scope narrowed to that region, so that store queries filter by it; region
// is the prefix asked for ("" when absent).
func (s *Server) regionScope(c echo.Context) (actor syncproto.Actor, region string, err error) {
	actor = s.actor(c)
	region = strings.TrimSpace(c.QueryParam("region"))
	if region == "" {
		return actor, "", nil
	}
	if err := checkRegion(region); err != nil {
		return actor, "", err
	}
	if !actor.InScope(region) {
		return actor, "", &syncproto.Error{Code: syncproto.EForbidden, Title: "Outside your scope",
			Message: "region " + region + " is not inside your scope",
			Errors:  []syncproto.FieldError{{Path: "query.region", Message: "is outside your scope"}}}
	}
	actor.Scope, actor.AllRegions = []string{region}, false
	return actor, region, nil
}

// checkRegion refuses a region that is not a division-code prefix of 2 to
// 12 digits (422, path query.region).
func checkRegion(region string) error {
	if len(region) < 2 || len(region) > 12 || !schema.IsDigits(region) {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid region",
			Message: "region must be a division-code prefix of 2 to 12 digits",
			Errors:  []syncproto.FieldError{{Path: "query.region", Message: "must be 2 to 12 digits"}}}
	}
	return nil
}

// listPage reads the limit and cursor of a paged supervisor list; a
// cursor of another list, or a change-log cursor, is a 422.
func (s *Server) listPage(c echo.Context, list string) (after int64, limit int, err error) {
	after, err = s.cursors.ParseList(list, c.QueryParam("cursor"))
	if err != nil {
		return 0, 0, err
	}
	limit, err = s.pullLimit(c.QueryParam("limit"))
	return after, limit, err
}

// writeListPage answers one page of a supervisor list: it reads the limit
// and cursor (listPage), fetches the page and writes
// {key: [...], "cursor": ..., "has_more": ...}.
func writeListPage[T any](s *Server, c echo.Context, list, key string,
	fetch func(ctx context.Context, after int64, limit int) ([]T, int64, error), toJSON func(T) map[string]any) error {
	after, limit, err := s.listPage(c, list)
	if err != nil {
		return err
	}
	page, next, err := fetch(c.Request().Context(), after, limit)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(page))
	for _, v := range page {
		out = append(out, toJSON(v))
	}
	return writeJSON(c, http.StatusOK, map[string]any{key: out, "cursor": s.cursors.EncodeList(list, next), "has_more": len(page) == limit})
}

// handleConflicts is GET /v1/conflicts?region=&state=&limit=&cursor=;
// with format=csv or xlsx every page as one table (conflictTable).
func (s *Server) handleConflicts(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "region", "state", "limit", "cursor", "format", "lang"); err != nil {
		return err
	}
	actor, region, err := s.regionScope(c)
	if err != nil {
		return err
	}
	state := c.QueryParam("state")
	switch state {
	case "", syncproto.StateOpen, syncproto.StateAutoResolved, syncproto.StateResolved:
	default:
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid state", Message: "state must be open, auto_resolved or resolved",
			Errors: []syncproto.FieldError{{Path: "query.state", Message: "must be open, auto_resolved or resolved"}}}
	}
	f, errs := parseReportFormat(c)
	if f.tabular() {
		// A table holds every page: limit and cursor are the JSON's.
		for _, p := range []string{"limit", "cursor"} {
			if c.QueryParam(p) != "" {
				errs = append(errs, syncproto.FieldError{Path: "query." + p, Message: "is for format json: a table holds every page"})
			}
		}
	}
	if len(errs) > 0 {
		return invalidReport(errs)
	}
	if f.tabular() {
		return s.conflictTable(c, f, actor, region, state)
	}
	return writeListPage(s, c, "conflicts", "conflicts", func(ctx context.Context, after int64, limit int) ([]syncproto.ConflictEntry, int64, error) {
		return s.store.ListConflicts(ctx, actor, state, after, limit)
	}, conflictJSON)
}

// handleResolve is POST /v1/conflicts/{id}/resolve
// {"value": ..., "note": "..."} or {"choose": "kept"|"stored"|"incoming", "note"},
// with "override_note" for a decided value (lifted_out) set without a
// verified verdict.
func (s *Server) handleResolve(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	var req struct {
		Value  json.RawMessage `json:"value"`
		Choose string          `json:"choose"`
		Note   string          `json:"note"`
		// OverrideNote goes into the form's override-note field
		// (status_note) with a decided value the verdict does not allow.
		OverrideNote string `json:"override_note"`
	}
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := strings.ToLower(c.Param("id"))
	cf, err := s.store.Conflict(ctx, id)
	if err != nil {
		return err
	}
	if req.Value, err = resolutionValue(cf, req.Value, req.Choose); err != nil {
		return err
	}
	res, err := s.supervision.ResolveConflict(ctx, s.actor(c), syncproto.Resolution{ConflictID: cf.ID, Value: req.Value, Note: req.Note, OverrideNote: req.OverrideNote})
	if err != nil {
		return err
	}
	s.metrics.conflictsResolved.Inc()
	s.reqLog(c).Info("conflict resolved", "conflict", cf.ID, "record", cf.RecordID, "field", cf.Field, "by", s.actor(c).UserID)
	return writeJSON(c, http.StatusOK, map[string]any{"conflict": conflictJSON(res.Conflict), "record": res.Record})
}

// handleQuarantine is GET /v1/quarantine?region=&state=&limit=&cursor=.
func (s *Server) handleQuarantine(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "region", "state", "limit", "cursor"); err != nil {
		return err
	}
	actor, _, err := s.regionScope(c)
	if err != nil {
		return err
	}
	state := c.QueryParam("state")
	if state != "" && state != syncproto.StateOpen && state != syncproto.StateClosed {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid state", Message: "state must be open or closed",
			Errors: []syncproto.FieldError{{Path: "query.state", Message: "must be open or closed"}}}
	}
	return writeListPage(s, c, "quarantine", "quarantine", func(ctx context.Context, after int64, limit int) ([]syncproto.QuarantineEntry, int64, error) {
		return s.store.ListQuarantine(ctx, actor, state, after, limit)
	}, quarantineJSON)
}

func quarantineJSON(q syncproto.QuarantineEntry) map[string]any {
	out := map[string]any{"id": q.ID, "changeset_id": q.ChangesetID, "device": q.DeviceID, "user": q.UserID,
		"entity": q.Entity, "record_id": q.RecordID, "village": q.Village, "errors": q.Errors, "change": q.Raw,
		"received_at": syncproto.FormatTime(q.ReceivedAt), "state": q.State}
	if q.HouseholdName != "" {
		out["household_name"] = q.HouseholdName
	}
	if d := q.Closed; d != nil {
		out["closed"] = map[string]any{"by": d.By, "at": syncproto.FormatTime(d.At), "note": d.Note}
	}
	return out
}

// noteRequest decodes the body {"note": "..."} of a supervisor's decision.
func (s *Server) noteRequest(c echo.Context) (string, error) {
	body, err := s.readBody(c)
	if err != nil {
		return "", err
	}
	var req struct {
		Note string `json:"note"`
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return "", nil // the decision refuses a missing note with its path
	}
	if err := decodeStrict(body, &req); err != nil {
		return "", err
	}
	return req.Note, nil
}

// handleCloseQuarantine is POST /v1/quarantine/{id}/close {"note": "..."}:
// the supervisor has dealt with a rejected change.
func (s *Server) handleCloseQuarantine(c echo.Context) error {
	note, err := s.noteRequest(c)
	if err != nil {
		return err
	}
	q, err := s.supervision.CloseQuarantine(c.Request().Context(), s.actor(c), strings.ToLower(c.Param("id")), note)
	if err != nil {
		return err
	}
	s.reqLog(c).Info("quarantine entry closed", "quarantine", q.ID, "by", s.actor(c).UserID)
	return writeJSON(c, http.StatusOK, quarantineJSON(q))
}

// deviceVisible reports whether a supervisor working in actor's scope
// oversees a tablet whose user has the given role and scope: some region
// of the user lies in the actor's scope, or contains part of it.
func deviceVisible(actor syncproto.Actor, d syncproto.DeviceState) bool {
	if actor.AllRegions {
		return true
	}
	if d.UserRole == syncproto.RoleAdmin {
		return false
	}
	for _, p := range d.UserScope {
		if actor.InScope(p) {
			return true
		}
		for _, a := range actor.Scope {
			if strings.HasPrefix(a, p) {
				return true
			}
		}
	}
	return false
}

// handleDevices is GET /v1/devices?region=: each tablet with its user and
// name, last push and pull, last accepted device_seq, how many records of
// its user's scope changed after its pull cursor, and its counts. Devices
// without a name whose user is a supervisor or an administrator (a curl or
// script login) are listed apart, under api_sessions.
func (s *Server) handleDevices(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "region"); err != nil {
		return err
	}
	actor, _, err := s.regionScope(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	devices, err := s.store.Devices(ctx)
	if err != nil {
		return err
	}
	head, err := s.store.Head(ctx)
	if err != nil {
		return err
	}
	visible := devices[:0]
	for _, d := range devices {
		if deviceVisible(actor, d) {
			visible = append(visible, d)
		}
	}
	behind, err := s.devicesBehind(c, visible)
	if err != nil {
		return err
	}
	tablets, sessions := []map[string]any{}, []map[string]any{}
	for i, d := range visible {
		entry := map[string]any{"device_id": d.DeviceID, "user": d.UserID, "user_scope": d.UserScope,
			"last_push_at": timeOrNil(d.LastPushAt), "last_pull_at": timeOrNil(d.LastPullAt),
			"last_device_seq": d.LastSeq, "behind": behind[i], "applied": d.Applied, "merged": d.Merged,
			"conflicts": d.Conflicts, "rejected": d.Rejected, "revoked": d.Revoked}
		if d.Name != "" {
			entry["name"] = d.Name
		}
		if d.Name == "" && (d.UserRole == syncproto.RoleSupervisor || d.UserRole == syncproto.RoleAdmin) {
			sessions = append(sessions, entry)
		} else {
			tablets = append(tablets, entry)
		}
	}
	return writeJSON(c, http.StatusOK, map[string]any{"devices": tablets, "api_sessions": sessions,
		"head": s.cursors.Encode(syncproto.Cursor{Seq: head}), "pull_lag_seconds": s.pulls.every.Seconds()})
}

// devicesBehind counts, for each device, the records of its user's scope
// changed after its pull cursor: one store call per distinct scope, not
// one per device.
func (s *Server) devicesBehind(c echo.Context, devices []syncproto.DeviceState) ([]int64, error) {
	type group struct {
		actor   syncproto.Actor
		devices []int
		after   []int64
	}
	groups := map[string]*group{}
	var order []string
	for i, d := range devices {
		a := syncproto.Actor{Scope: d.UserScope, AllRegions: d.UserRole == syncproto.RoleAdmin}
		key := a.ScopeKey()
		g := groups[key]
		if g == nil {
			g = &group{actor: a}
			groups[key] = g
			order = append(order, key)
		}
		g.devices, g.after = append(g.devices, i), append(g.after, d.LastPullSeq)
	}
	out := make([]int64, len(devices))
	for _, key := range order {
		g := groups[key]
		counts, err := s.store.Behind(c.Request().Context(), g.actor, g.after)
		if err != nil {
			return nil, err
		}
		for j, i := range g.devices {
			out[i] = counts[j]
		}
	}
	return out, nil
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return syncproto.FormatTime(t)
}

func receiptJSON(r syncproto.Receipt) map[string]any {
	return map[string]any{"changeset_id": r.ChangesetID, "device": r.DeviceID, "device_seq": r.DeviceSeq, "user": r.UserID,
		"received_at": syncproto.FormatTime(r.ReceivedAt), "applied": r.Applied, "merged": r.Merged,
		"conflicts": r.Conflicts, "rejected": r.Rejected}
}

// deviceInScope finds a device and checks the caller oversees it.
func (s *Server) deviceInScope(c echo.Context, device string) error {
	devices, err := s.store.Devices(c.Request().Context())
	if err != nil {
		return err
	}
	for _, d := range devices {
		if d.DeviceID == device {
			if !deviceVisible(s.actor(c), d) {
				return syncproto.Errorf(syncproto.EForbidden, "this device's user works outside your scope")
			}
			return nil
		}
	}
	return syncproto.Errorf(syncproto.ENotFound, "no device %s has synced", device)
}

// handleDeviceReceipts is GET /v1/devices/{device_id}/receipts: the
// device's change sets, newest first.
func (s *Server) handleDeviceReceipts(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "limit", "cursor"); err != nil {
		return err
	}
	device := strings.ToLower(c.Param("device_id"))
	if err := s.deviceInScope(c, device); err != nil {
		return err
	}
	return writeListPage(s, c, "receipts:"+device, "receipts", func(ctx context.Context, after int64, limit int) ([]syncproto.Receipt, int64, error) {
		return s.store.Receipts(ctx, device, after, limit)
	}, receiptJSON)
}

// handleReceipt is GET /v1/receipts/{changeset_id}.
func (s *Server) handleReceipt(c echo.Context) error {
	r, err := s.store.ReceiptOf(c.Request().Context(), strings.ToLower(c.Param("changeset_id")))
	if err != nil {
		return err
	}
	if err := s.deviceInScope(c, r.DeviceID); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, receiptJSON(*r))
}

func duplicateJSON(d syncproto.Duplicate) map[string]any {
	out := map[string]any{"id": d.ID, "village": d.Village, "household_a": d.HouseholdA, "household_b": d.HouseholdB,
		"reason": d.Reason, "state": d.State, "created_at": syncproto.FormatTime(d.CreatedAt)}
	if d.NameA != "" {
		out["household_a_name"] = d.NameA
	}
	if d.NameB != "" {
		out["household_b_name"] = d.NameB
	}
	if d.State != syncproto.StateOpen {
		out["decided_at"], out["decided_by"], out["note"] = syncproto.FormatTime(d.DecidedAt), d.DecidedBy, d.Note
	}
	if d.State == syncproto.StateMerged {
		out["survivor"] = d.Survivor
	}
	return out
}

// handleDuplicates is GET /v1/duplicates?region=&state=; with format=csv
// or xlsx a table (duplicateTable).
func (s *Server) handleDuplicates(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "region", "state", "format", "lang"); err != nil {
		return err
	}
	actor, region, err := s.regionScope(c)
	if err != nil {
		return err
	}
	state := c.QueryParam("state")
	switch state {
	case "", syncproto.StateOpen, syncproto.StateMerged, syncproto.StateDismissed:
	default:
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid state", Message: "state must be open, merged or dismissed",
			Errors: []syncproto.FieldError{{Path: "query.state", Message: "must be open, merged or dismissed"}}}
	}
	if f, errs := parseReportFormat(c); len(errs) > 0 {
		return invalidReport(errs)
	} else if f.tabular() {
		return s.duplicateTable(c, f, actor, region, state)
	}
	list, err := s.store.ListDuplicates(c.Request().Context(), actor, state)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(list))
	for _, d := range list {
		out = append(out, duplicateJSON(d))
	}
	return writeJSON(c, http.StatusOK, map[string]any{"duplicates": out})
}

// handleMergeDuplicate is POST /v1/duplicates/{id}/merge
// {"survivor": id (required: one of the two), "note": "..."}; a body
// without a survivor is a 422 with the path survivor.
func (s *Server) handleMergeDuplicate(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	var req struct {
		Survivor string `json:"survivor"`
		Note     string `json:"note"`
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Survivor required", Message: "name the household that survives the merge",
			Errors: []syncproto.FieldError{{Path: "survivor", Message: "is required"}}}
	}
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	res, err := s.supervision.MergeHouseholds(c.Request().Context(), s.actor(c), strings.ToLower(c.Param("id")),
		strings.ToLower(req.Survivor), req.Note)
	if err != nil {
		return err
	}
	s.reqLog(c).Info("households merged", "duplicate", res.Duplicate.ID, "survivor", res.Survivor, "tombstone", res.Tombstone,
		"by", s.actor(c).UserID)
	return writeJSON(c, http.StatusOK, map[string]any{"duplicate": duplicateJSON(res.Duplicate), "survivor": res.Survivor,
		"tombstone": res.Tombstone, "repointed": nonNilStrings(res.Repointed)})
}

// handleDismissDuplicate is POST /v1/duplicates/{id}/dismiss {"note":
// "..."}: the two households are different ones and both stay.
func (s *Server) handleDismissDuplicate(c echo.Context) error {
	note, err := s.noteRequest(c)
	if err != nil {
		return err
	}
	d, err := s.supervision.DismissDuplicate(c.Request().Context(), s.actor(c), strings.ToLower(c.Param("id")), note)
	if err != nil {
		return err
	}
	s.reqLog(c).Info("duplicate dismissed", "duplicate", d.ID, "by", s.actor(c).UserID)
	return writeJSON(c, http.StatusOK, map[string]any{"duplicate": duplicateJSON(d)})
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
