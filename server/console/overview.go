package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// allRegions is the region code of an admin's whole view.
const allRegions = "all"

// handleHome sends a supervisor to their region, an admin to every
// region, a field worker to their tablets.
func (c *Console) handleHome(q *request) {
	switch {
	case q.actor.AllRegions:
		http.Redirect(q.w, q.r, "/console/region/"+allRegions, http.StatusSeeOther)
	case (q.actor.Role == syncproto.RoleSupervisor || q.actor.Role == syncproto.RoleViewer) && len(q.actor.Scope) > 0:
		http.Redirect(q.w, q.r, "/console/region/"+q.actor.Scope[0], http.StatusSeeOther)
	default:
		http.Redirect(q.w, q.r, "/console/devices", http.StatusSeeOther)
	}
}

// regionActor is the actor narrowed to region code (allRegions: the
// actor itself), or ok=false when the region is outside the actor's scope
// or no region code.
func regionActor(actor syncproto.Actor, code string) (syncproto.Actor, bool) {
	if code == allRegions {
		return actor, actor.AllRegions
	}
	if !schema.IsRegion(code) || !actor.InScope(code) {
		return actor, false
	}
	actor.Scope, actor.AllRegions = []string{code}, false
	return actor, true
}

// areaRow is one area of the overview's tables.
type areaRow struct {
	Code, Name string
	Counts     survey.CoverageCounts
	// Cover is the share inspected: the smaller of the housing and the
	// water share, in percent.
	Cover int
}

func newAreaRow(code, name string, counts survey.CoverageCounts) areaRow {
	return areaRow{Code: code, Name: name, Counts: counts,
		Cover: min(percentOf(counts.WithHousing, counts.Households), percentOf(counts.WithWater, counts.Households))}
}

// neverRow is a household nobody has visited.
type neverRow struct {
	survey.HouseholdMark
	Village, VillageName string
	// Registry: only a registry lists the household (the row links to
	// the village's reconciliation, which names its list and key).
	Registry bool
}

// householdRow is one household of a village's table.
type householdRow struct {
	ID, HeadName, Status string
	Grade, GradeEntity   string
	Water                string // "safe", "unsafe" or "" (no water inspection)
}

// overview is the overview page of a region.
type overview struct {
	Code, Name, Up string
	Totals         survey.CoverageCounts
	ChildLevel     string
	Children       []areaRow
	Behind         []areaRow
	Never          []neverRow
	Households     []householdRow
	Grades         []string
	Renovations    []string
	Indicators     []string
	PerDay         []dayCount
	MaxDay         int
	HousingEntity  string
	WaterEntity    string
	Household      string
	GradeField     string
	RenovField     string
	StatusField    string

	// NeverVillages, above a village, are the villages with households
	// never inspected, most first (bounded like Behind).
	NeverVillages []areaRow
	// Verdicts, on a village's page, are its households' verdicts (nil
	// when the forms declare no verification).
	Verdicts *villageVerdicts
	// Followups are a village's follow-ups, nil above a village.
	Followups *villageFollowups
	// AreaVerdicts, above a village, are the verdicts of the areas one
	// level down, from the kept sums (verdictsums.go).
	AreaVerdicts *areaVerdicts
	// JudgedNotice, when the figures are judged as of a day before today
	// (their sums being judged again under a standard's new edition),
	// says so with that day; "" otherwise.
	JudgedNotice string
}

func (o *overview) pageTitle(lang string) string { return t(lang, "nav_overview") + " · " + o.Name }

// behindShown bounds the villages-behind table.
const behindShown = 30

// handleOverview is GET /console/region/{code}: the region's figures and
// its areas one level down (county → township → village → household).
func (c *Console) handleOverview(q *request) {
	code := q.r.PathValue("code")
	if code != allRegions && !schema.IsRegion(code) {
		c.refuse(q.w, q.r, q.lang, http.StatusNotFound, "msg_no_region")
		return
	}
	actor, ok := regionActor(q.actor, code)
	if !ok {
		c.refuse(q.w, q.r, q.lang, http.StatusForbidden, "msg_scope")
		return
	}
	ctx := q.r.Context()
	var village string
	if len(code) == 12 {
		village = code
	}
	sum, err := c.readRegion(ctx, actor, code)
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	forms := survey.FormsOf(c.cfg.Schema)
	o := &overview{Code: code, Name: t(q.lang, "all_regions"), Totals: sum.Totals, PerDay: sum.PerDay,
		Indicators: survey.WaterIndicators(c.cfg.Schema), Household: forms.Household.Entity, StatusField: forms.Status}
	if forms.Housing != nil {
		o.HousingEntity, o.GradeField, o.RenovField = forms.Housing.Entity, forms.Grade, forms.Renovation
		o.Grades = fieldValues(forms.Housing, forms.Grade)
		o.Renovations = fieldValues(forms.Housing, forms.Renovation)
	}
	if forms.Water != nil {
		o.WaterEntity = forms.Water.Entity
	}
	if code != allRegions {
		o.Name = c.regionName(code)
		o.Up = upOf(code, q.actor)
	}
	for _, d := range sum.PerDay {
		o.MaxDay = max(o.MaxDay, d.Housing+d.Water)
	}
	if sum.JudgedAsOf != "" && sum.JudgedAsOf < c.cfg.Now().UTC().Format(time.DateOnly) {
		o.JudgedNotice = fmt.Sprintf(t(q.lang, "msg_judged_as_of"), sum.JudgedAsOf)
	}
	switch {
	case len(code) == 12:
	case len(code) == 9:
		o.ChildLevel = "village"
		for _, v := range sum.Villages {
			o.Children = append(o.Children, newAreaRow(v.Code, c.nameOr(v.Code, v.Name), v.Counts))
		}
	case len(code) == 6:
		o.ChildLevel = survey.LevelTownship
		for _, a := range sum.Townships {
			o.Children = append(o.Children, newAreaRow(a.Code, c.nameOr(a.Code, a.Name), a.Counts))
		}
	default:
		o.ChildLevel = survey.LevelCounty
		for _, a := range sum.Counties {
			o.Children = append(o.Children, newAreaRow(a.Code, c.nameOr(a.Code, a.Name), a.Counts))
		}
	}
	for _, v := range sum.Behind {
		o.Behind = append(o.Behind, newAreaRow(v.Code, c.nameOr(v.Code, v.Name), v.Counts))
	}
	if village == "" {
		// Above a village, the villages with the most households never
		// inspected (each names them on its own page).
		for _, v := range sum.NeverVillages {
			o.NeverVillages = append(o.NeverVillages, newAreaRow(v.Code, c.nameOr(v.Code, v.Name), v.Counts))
		}
	}
	for _, m := range sum.Never {
		o.Never = append(o.Never, neverRow{HouseholdMark: m, Village: village, VillageName: c.nameOr(village, ""), Registry: sum.RegistryOnly[m.ID]})
	}
	if o.ChildLevel != "" {
		if o.AreaVerdicts, err = c.readAreaVerdicts(ctx, actor, o.ChildLevel); err != nil {
			c.fail(q.w, q.r, q.lang, err)
			return
		}
	}
	if len(code) == 12 {
		o.Households, err = c.villageHouseholds(ctx, actor, code)
		if err == nil {
			o.Verdicts, o.Followups, err = c.judgeVillage(ctx, actor, code)
		}
		if err != nil {
			c.fail(q.w, q.r, q.lang, err)
			return
		}
	}
	c.renderPage(q, http.StatusOK, "overview", o, true)
}

// renderPage renders a signed-in page; a live one reloads when syncs
// arrive.
func (c *Console) renderPage(q *request, status int, name string, data any, live bool) {
	c.renderWith(q.w, q.r, status, name, q.lang, q, data, live)
}

// nameOr is a region's name: the register's, the report's, or the code.
func (c *Console) nameOr(code, name string) string {
	if n := c.regionName(code); n != code {
		return n
	}
	if name != "" {
		return name
	}
	return code
}

// upOf is the region one level up that the actor may see, or "".
func upOf(code string, actor syncproto.Actor) string {
	var up string
	switch len(code) {
	case 12:
		up = code[:9]
	case 9:
		up = code[:6]
	case 6:
		up = code[:4]
	case 4:
		up = code[:2]
	default:
		if actor.AllRegions {
			return allRegions
		}
		return ""
	}
	if actor.InScope(up) {
		return up
	}
	if len(code) == 6 || len(code) == 4 {
		if actor.AllRegions {
			return allRegions
		}
	}
	return ""
}

// fieldValues are the values an enum field declares, in its order.
func fieldValues(f *schema.Form, field string) []string {
	if f == nil {
		return nil
	}
	if fd := f.Field(field); fd != nil {
		return fd.Values
	}
	return nil
}

// households calls fn with every household of the actor's scope, with its
// latest housing and water inspection (by their dates), from one snapshot
// read.
func (c *Console) households(ctx context.Context, actor syncproto.Actor, fn func(h syncproto.SnapshotRow) error) error {
	forms := survey.FormsOf(c.cfg.Schema)
	q := syncproto.SnapshotQuery{Schema: c.cfg.Schema, Entities: []string{forms.Household.Entity}, LatestByEntity: map[string]string{}}
	for _, f := range []struct {
		form *schema.Form
		date string
	}{{forms.Housing, forms.HousingDate}, {forms.Water, forms.WaterDate}} {
		if f.form != nil {
			q.Latest = append(q.Latest, f.form.Entity)
			q.LatestByEntity[f.form.Entity] = f.date
			q.LatestBy = f.date
		}
	}
	return c.cfg.Store.Snapshot(ctx, actor, q, sinkFunc(fn))
}

// sinkFunc is a SnapshotSink that only takes rows.
type sinkFunc func(syncproto.SnapshotRow) error

func (f sinkFunc) Start(syncproto.Cursor) error      { return nil }
func (f sinkFunc) Row(r syncproto.SnapshotRow) error { return f(r) }

// judged is a household's latest grade and water verdict, the water
// judged by judge (survey.NewWaterJudge of the console's schema: the
// water role's criteria and their standards as of now, as the overview's
// figures judge it).
func (c *Console) judged(row syncproto.SnapshotRow, judge *survey.WaterJudge) (grade, water string) {
	forms := survey.FormsOf(c.cfg.Schema)
	if forms.Housing != nil {
		if in := row.Latest[forms.Housing.Entity]; in != nil {
			_ = json.Unmarshal(in.Fields[forms.Grade], &grade)
		}
	}
	if forms.Water != nil {
		if in := row.Latest[forms.Water.Entity]; in != nil {
			water = "unsafe"
			if judge.Judge(in.Fields, row.Record.Village, c.cfg.Now()).Safe() {
				water = "safe"
			}
		}
	}
	return grade, water
}

// villageHouseholds lists a village's households by head's name.
func (c *Console) villageHouseholds(ctx context.Context, actor syncproto.Actor, village string) ([]householdRow, error) {
	forms := survey.FormsOf(c.cfg.Schema)
	var out []householdRow
	judge := survey.NewWaterJudge(c.cfg.Schema)
	err := c.households(ctx, actor, func(row syncproto.SnapshotRow) error {
		if row.Record.Village != village {
			return nil
		}
		h := householdRow{ID: row.Record.ID}
		_ = json.Unmarshal(row.Record.Fields[forms.HeadName], &h.HeadName)
		_ = json.Unmarshal(row.Record.Fields[forms.Status], &h.Status)
		h.Grade, h.Water = c.judged(row, judge)
		out = append(out, h)
		return nil
	})
	slices.SortStableFunc(out, func(a, b householdRow) int {
		if a.HeadName < b.HeadName {
			return -1
		} else if a.HeadName > b.HeadName {
			return 1
		}
		return 0
	})
	return out, err
}

// handleEvents is GET /console/events: a server-sent event stream that
// says "sync" whenever the change log's head moves (a push, a decision),
// so that the overview reloads (static/console.js). It checks every
// eventsEvery and ends after eventsFor (the browser reconnects).
func (c *Console) handleEvents(q *request) {
	fl, ok := q.w.(http.Flusher)
	if !ok {
		http.Error(q.w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ctx := q.r.Context()
	head, err := c.cfg.Store.Head(ctx)
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	h := q.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	q.w.WriteHeader(http.StatusOK)
	_, _ = q.w.Write([]byte("retry: 3000\n\n"))
	fl.Flush()
	tick := time.NewTicker(eventsEvery)
	defer tick.Stop()
	end := time.After(eventsFor)
	for {
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-tick.C:
			now, err := c.cfg.Store.Head(ctx)
			if err != nil {
				return
			}
			if now != head {
				head = now
				if _, err := q.w.Write([]byte("event: sync\ndata: {}\n\n")); err != nil {
					return
				}
				fl.Flush()
			}
		}
	}
}

// How often the event stream looks at the change log, and how long one
// stream lasts.
const (
	eventsEvery = time.Second
	eventsFor   = 5 * time.Minute
)
