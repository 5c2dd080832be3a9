package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/fieldsync/fieldsync/syncproto"
)

// reconShown bounds the villages the reconciliation page lists (those with
// findings, in code order); the tables linked beside them hold them all.
const reconShown = 200

// reconConflictsRead bounds the open conflicts read to link the
// disagreements to the queue.
const reconConflictsRead = 20000

// reconDisagreement is a disagreement as the page shows it: the form its
// field belongs to and the open conflict it raised in the queue, if any.
type reconDisagreement struct {
	syncproto.Disagreement
	Entity     string
	ConflictID string
	// PersonName is the person's name on the field roster; ADate and
	// BDate the statements' days.
	PersonName   string
	ADate, BDate string
}

// reconVillage is one village of the page with its findings.
type reconVillage struct {
	*syncproto.VillageReconciliation
	Disagreements []reconDisagreement
}

// reconPage is the reconciliation of a region: its totals, the villages
// with findings, and the tables to download.
type reconPage struct {
	Code, Name string
	Totals     *syncproto.ReconciliationReport
	Villages   []reconVillage
	Truncated  bool
	Exports    []exportLink
}

func (p *reconPage) pageTitle(lang string) string {
	return t(lang, "nav_reconciliation") + " · " + p.Name
}

// handleReconciliation is GET /console/reconciliation/{code}: the
// registries reconciled with the field records of the region as GET
// /v1/reports/reconciliation reads them (ReconciliationService.Reconcile,
// identity numbers masked for a viewer), each village's blind spots,
// households visited but on no list, and disagreements with both values,
// sources and dates, linked to the household and its open conflict.
func (c *Console) handleReconciliation(q *request) {
	code := q.r.PathValue("code")
	actor, ok := regionActor(q.actor, code)
	if !ok {
		c.refuse(q.w, q.r, q.lang, http.StatusForbidden, "msg_scope")
		return
	}
	ctx := q.r.Context()
	p := &reconPage{Code: code, Name: t(q.lang, "all_regions")}
	if code != allRegions {
		p.Name = c.regionName(code)
	}
	conflicts, err := c.registryConflicts(q, actor)
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	names := map[string]string{}
	sum, err := syncproto.NewReconciliationService(c.cfg.Store, c.cfg.Schema).Reconcile(ctx, actor, func(v *syncproto.VillageReconciliation) error {
		if len(v.BlindSpots)+len(v.Unregistered)+len(v.Ambiguous)+len(v.Disagreements) == 0 {
			return nil
		}
		if len(p.Villages) == reconShown {
			p.Truncated = true
			return nil
		}
		rv := reconVillage{VillageReconciliation: v}
		for _, d := range v.Disagreements {
			rd := reconDisagreement{Disagreement: d, Entity: "household"}
			id := d.HouseholdID
			if d.PersonID != "" {
				rd.Entity, id = "person", d.PersonID
			}
			// Two lists that disagree each disagree with the field
			// record too, unless it lacks the value: the row links to
			// the conflict either raised.
			rd.ConflictID = conflicts[id+"\x00"+d.Field+"\x00"+syncproto.RegistryDevice(d.A.Source)]
			if rd.ConflictID == "" && d.Kind == syncproto.DisagreeDepartments {
				rd.ConflictID = conflicts[id+"\x00"+d.Field+"\x00"+syncproto.RegistryDevice(d.B.Source)]
			}
			rd.ADate, rd.BDate = day(d.A.Date), day(d.B.Date)
			if d.PersonID != "" {
				rd.PersonName = c.personName(q, names, d.PersonID)
			}
			rv.Disagreements = append(rv.Disagreements, rd)
		}
		p.Villages = append(p.Villages, rv)
		return nil
	})
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	p.Totals = sum
	for _, f := range []string{"csv", "xlsx"} {
		for _, l := range tableLangs {
			v := url.Values{"format": {f}, "lang": {l}}
			if code != allRegions {
				v.Set("region", code)
			}
			p.Exports = append(p.Exports, exportLink{What: "reconciliation_report", Format: f, Lang: l, URL: "/v1/reports/reconciliation?" + v.Encode()})
		}
	}
	c.renderPage(q, http.StatusOK, "reconciliation", p, false)
}

// personName is the name of a person record (read once per page, into
// names), or "" when it cannot be read.
func (c *Console) personName(q *request, names map[string]string, id string) string {
	if n, ok := names[id]; ok {
		return n
	}
	names[id] = ""
	if rec, err := c.cfg.Store.Record(q.r.Context(), id); err == nil && rec != nil {
		var n string
		if json.Unmarshal(rec.Fields["name"], &n) == nil {
			names[id] = n
		}
	}
	return names[id]
}

// day is the day of a statement's date (an import's time, an inspection's
// day).
func day(date string) string {
	if len(date) >= 10 {
		return date[:10]
	}
	return date
}

// registryConflicts maps the open cross-department conflicts of the
// actor's scope by record, field and device (the registry that raised
// it) to their ids.
func (c *Console) registryConflicts(q *request, actor syncproto.Actor) (map[string]string, error) {
	out := map[string]string{}
	var after int64
	for read := 0; read < reconConflictsRead; {
		list, next, err := c.cfg.Store.ListConflicts(q.r.Context(), actor, syncproto.StateOpen, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, cf := range list {
			if strings.HasPrefix(cf.DeviceID, "registry:") {
				out[cf.RecordID+"\x00"+cf.Field+"\x00"+cf.DeviceID] = cf.ID
			}
		}
		read += len(list)
		if len(list) < 1000 || next == after {
			break
		}
		after = next
	}
	return out, nil
}

// sourceLabel is a registry source by its label in lang, the field
// teams' record (syncproto.FieldSource) as such.
func (c *Console) sourceLabel(name, lang string) string {
	if name == syncproto.FieldSource {
		return t(lang, "recon_field_record")
	}
	if s := c.cfg.Schema.Registries().Source(name); s != nil {
		return labelIn(s.Labels, lang, name)
	}
	return name
}
