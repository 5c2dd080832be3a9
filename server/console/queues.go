package console

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// queueShown bounds each queue's page: the oldest entries first, which are
// the ones to work on.
const queueShown = 200

// conflictsPage is the open conflicts, each with its two values side by
// side.
type conflictsPage struct{ Conflicts []syncproto.ConflictEntry }

func (conflictsPage) pageTitle(lang string) string { return t(lang, "nav_conflicts") }

// handleConflicts is GET /console/conflicts.
func (c *Console) handleConflicts(q *request) {
	list, _, err := c.cfg.Store.ListConflicts(q.r.Context(), q.actor, syncproto.StateOpen, 0, queueShown)
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	c.renderPage(q, http.StatusOK, "conflicts", conflictsPage{Conflicts: list}, true)
}

// handleResolve is POST /console/conflicts/{id}/resolve (choose=stored or
// incoming, note, and override_note for a decided value without a verified
// verdict): the SupervisionService's decision, as the API's
// resolve makes it; then back to the queue, read afresh.
func (c *Console) handleResolve(q *request) {
	ctx := q.r.Context()
	cf, err := c.cfg.Store.Conflict(ctx, strings.ToLower(q.r.PathValue("id")))
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	var value json.RawMessage
	switch q.r.PostFormValue("choose") {
	case "stored":
		value = cf.Stored
	case "incoming":
		value = cf.Incoming
	default:
		c.fail(q.w, q.r, q.lang, &syncproto.Error{Code: syncproto.EInvalid, Message: "choose the value the field takes",
			Errors: []syncproto.FieldError{{Path: "choose", Message: "must be stored or incoming"}}})
		return
	}
	if _, err := c.cfg.Supervision.ResolveConflict(ctx, q.actor, syncproto.Resolution{ConflictID: cf.ID, Value: value,
		Note: q.r.PostFormValue("note"), OverrideNote: q.r.PostFormValue("override_note")}); err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	c.cfg.Log.Info("conflict resolved in the console", "conflict", cf.ID, "record", cf.RecordID, "field", cf.Field, "by", q.actor.UserID)
	back(q, "/console/conflicts")
}

// takesOverrideNote reports whether entity's field has decided values that
// a resolution may set with an override note (a household's status).
func (c *Console) takesOverrideNote(entity, field string) bool {
	f := c.cfg.Schema.Form(entity)
	if f == nil || f.Field(field) == nil {
		return false
	}
	w := f.Field(field).Write
	return w != nil && w.OverrideNote != ""
}

// back answers a decision by sending the browser to the page again (Post,
// Redirect, Get): the page is read afresh, nothing stale stays on screen.
func back(q *request, path string) {
	if next := q.r.PostFormValue("next"); next != "" {
		path = safeNext(next)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	http.Redirect(q.w, q.r, path+sep+"done=msg_done", http.StatusSeeOther)
}

// duplicatesPage is the open duplicate households.
type duplicatesPage struct{ Duplicates []syncproto.Duplicate }

func (duplicatesPage) pageTitle(lang string) string { return t(lang, "nav_duplicates") }

// handleDuplicates is GET /console/duplicates.
func (c *Console) handleDuplicates(q *request) {
	list, err := c.cfg.Store.ListDuplicates(q.r.Context(), q.actor, syncproto.StateOpen)
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	if len(list) > queueShown {
		list = list[:queueShown]
	}
	c.renderPage(q, http.StatusOK, "duplicates", duplicatesPage{Duplicates: list}, true)
}

// handleMerge is POST /console/duplicates/{id}/merge (survivor, note).
func (c *Console) handleMerge(q *request) {
	res, err := c.cfg.Supervision.MergeHouseholds(q.r.Context(), q.actor, strings.ToLower(q.r.PathValue("id")),
		strings.ToLower(q.r.PostFormValue("survivor")), q.r.PostFormValue("note"))
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	c.cfg.Log.Info("households merged in the console", "duplicate", res.Duplicate.ID, "survivor", res.Survivor, "by", q.actor.UserID)
	back(q, "/console/duplicates")
}

// handleDismiss is POST /console/duplicates/{id}/dismiss (note).
func (c *Console) handleDismiss(q *request) {
	d, err := c.cfg.Supervision.DismissDuplicate(q.r.Context(), q.actor, strings.ToLower(q.r.PathValue("id")), q.r.PostFormValue("note"))
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	c.cfg.Log.Info("duplicate dismissed in the console", "duplicate", d.ID, "by", q.actor.UserID)
	back(q, "/console/duplicates")
}

// quarantinePage is the open quarantined changes.
type quarantinePage struct{ Entries []syncproto.QuarantineEntry }

func (quarantinePage) pageTitle(lang string) string { return t(lang, "nav_quarantine") }

// handleQuarantine is GET /console/quarantine.
func (c *Console) handleQuarantine(q *request) {
	list, _, err := c.cfg.Store.ListQuarantine(q.r.Context(), q.actor, syncproto.StateOpen, 0, queueShown)
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	c.renderPage(q, http.StatusOK, "quarantine", quarantinePage{Entries: list}, true)
}

// handleCloseQuarantine is POST /console/quarantine/{id}/close (note).
func (c *Console) handleCloseQuarantine(q *request) {
	e, err := c.cfg.Supervision.CloseQuarantine(q.r.Context(), q.actor, strings.ToLower(q.r.PathValue("id")), q.r.PostFormValue("note"))
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	c.cfg.Log.Info("quarantine closed in the console", "entry", e.ID, "by", q.actor.UserID)
	back(q, "/console/quarantine")
}

// deviceRow is one tablet of the devices page.
type deviceRow struct {
	syncproto.DeviceState
	Behind    int64
	CanRevoke bool
}

// devicesPage is the tablets the actor may see: a field worker their own,
// a supervisor those of their region's users, an admin every one.
type devicesPage struct {
	Devices []deviceRow
	Own     bool
}

func (p devicesPage) pageTitle(lang string) string {
	if p.Own {
		return t(lang, "my_tablets")
	}
	return t(lang, "nav_devices")
}

// handleDevices is GET /console/devices: name, user, last push and pull,
// the records of the user's scope changed after the tablet's last pull,
// and (for a supervisor) a revoke button.
func (c *Console) handleDevices(q *request) {
	ctx := q.r.Context()
	all, err := c.cfg.Store.Devices(ctx)
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	p := devicesPage{Own: q.actor.Role == syncproto.RoleFieldWorker}
	for _, d := range all {
		if !deviceVisible(q.actor, d) || d.DeviceID == ConsoleDevice {
			continue
		}
		row := deviceRow{DeviceState: d, CanRevoke: !p.Own && !d.Revoked}
		scope := syncproto.Actor{Scope: d.UserScope, AllRegions: d.UserRole == syncproto.RoleAdmin}
		behind, err := c.cfg.Store.Behind(ctx, scope, []int64{d.LastPullSeq})
		if err != nil {
			c.fail(q.w, q.r, q.lang, err)
			return
		}
		row.Behind = behind[0]
		p.Devices = append(p.Devices, row)
	}
	c.renderPage(q, http.StatusOK, "devices", p, !p.Own) // the event stream is for supervisors
}

// deviceVisible: a field worker sees their own tablets; a supervisor the
// tablets of users working inside their scope; an admin every one.
func deviceVisible(actor syncproto.Actor, d syncproto.DeviceState) bool {
	switch {
	case actor.AllRegions:
		return true
	case actor.Role == syncproto.RoleFieldWorker:
		return d.UserID == actor.UserID
	case d.UserRole == syncproto.RoleAdmin:
		return false
	}
	return len(d.UserScope) > 0 && actor.Covers(d.UserScope)
}

// handleRevoke is POST /console/devices/{id}/revoke: as the API's revoke,
// for a device whose users all work inside the supervisor's scope.
func (c *Console) handleRevoke(q *request) {
	ctx := q.r.Context()
	device := strings.ToLower(q.r.PathValue("id"))
	users, err := c.cfg.Accounts.DeviceUsers(ctx, device)
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	if len(users) == 0 {
		c.refuse(q.w, q.r, q.lang, http.StatusNotFound, "not_found")
		return
	}
	for _, u := range users {
		if !q.actor.AllRegions && (u.Role == syncproto.RoleAdmin || !q.actor.Covers(u.Scope)) {
			c.refuse(q.w, q.r, q.lang, http.StatusForbidden, "msg_scope")
			return
		}
	}
	if err := c.cfg.Accounts.RevokeDevice(ctx, device, q.actor.UserID, c.cfg.Now()); err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	c.cfg.Log.Warn("device revoked in the console", "device", device, "by", q.actor.UserID)
	back(q, "/console/devices")
}

// reinspectionsPage is the households due for re-inspection.
type reinspectionsPage struct {
	Due   []*survey.DueHousehold
	More  bool
	Total int
}

func (reinspectionsPage) pageTitle(lang string) string { return t(lang, "nav_reinspections") }

// handleReinspections is GET /console/reinspections: the ReportService's
// list, as GET /v1/reinspections reads it.
func (c *Console) handleReinspections(q *request) {
	var p reinspectionsPage
	sum, err := c.cfg.Reports.Reinspections(q.r.Context(), q.actor, survey.ReinspectionQuery{Now: c.cfg.Now(), After: c.reinspectAfter()},
		func(d *survey.DueHousehold) error {
			p.Total++
			if len(p.Due) < queueShown {
				d.VillageName = c.regionName(d.Village)
				p.Due = append(p.Due, d)
			} else {
				p.More = true
			}
			return nil
		})
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	_ = sum
	c.renderPage(q, http.StatusOK, "reinspections", p, true)
}

func (c *Console) reinspectAfter() time.Duration {
	if c.cfg.ReinspectAfter > 0 {
		return c.cfg.ReinspectAfter
	}
	return 365 * 24 * time.Hour
}
