package export

import (
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/monitor"
)

// FollowupTables are the table of the follow-up list: one row per listed
// household with its poverty status and monitoring status labelled, the
// reasons (each trigger's label and its evidence), the last visit, the
// due date and what it counts from.
type FollowupTables struct {
	// Tables is the one table, the households.
	Tables   []Table
	l        Labels
	names    schema.Divisions
	statuses []schema.MonitoringStatus
	triggers map[string]schema.Trigger
	status   string // the household form's status field
}

// NewFollowupTables designs the table in l's language for the monitor's
// statuses and triggers, naming villages from names.
func NewFollowupTables(l Labels, names schema.Divisions, sch *schema.Schema) *FollowupTables {
	f := l.Forms()
	h := f.HouseholdEntity()
	m := sch.Monitoring()
	t := &FollowupTables{l: l, names: names, statuses: m.Statuses, triggers: map[string]schema.Trigger{}, status: f.Status}
	for _, tr := range m.Triggers {
		t.triggers[tr.Name] = tr
	}
	t.Tables = []Table{{Key: "followups", Cols: []Column{
		l.Own("household_id", schema.TypeReference), l.FormField(h, f.Village, schema.TypeDivisionCode),
		l.Own("village_name", schema.TypeText), l.FormField(h, f.HeadName, schema.TypeText),
		l.FormField(h, f.Status, schema.TypeText), l.Own("monitoring_status", schema.TypeText),
		l.Own("monitoring_reasons", schema.TypeText), l.Own("last_visit", schema.TypeText), l.Own("judged_status", schema.TypeText),
		l.Own("due_date", schema.TypeText), l.Own("due_from", schema.TypeText), l.Own("due", schema.TypeText),
		l.Own("as_of", schema.TypeText)}}}
	return t
}

// statusLabel is a monitoring status's label in the language (its name in
// codes).
func (t *FollowupTables) statusLabel(name string) string {
	for _, s := range t.statuses {
		if s.Name == name && !t.l.Codes() && s.Labels[t.l.Lang()] != "" {
			return s.Labels[t.l.Lang()]
		}
	}
	return name
}

// Household is a listed household's row (due as true or false); its reasons one "trigger: form
// record field=value date" each, the trigger labelled, joined by ';'.
func (t *FollowupTables) Household(f *monitor.Followup) []any {
	var reasons []string
	for _, r := range f.Reasons {
		label := r.Trigger
		if tr, ok := t.triggers[r.Trigger]; ok && !t.l.Codes() && tr.Labels[t.l.Lang()] != "" {
			label = tr.Labels[t.l.Lang()]
		}
		d := []string{label + ":", r.Form, r.Record}
		if r.Field != "" {
			d = append(d, r.Field+"="+string(r.Value))
		}
		if r.Date != "" {
			d = append(d, r.Date)
		}
		reasons = append(reasons, strings.Join(d, " "))
	}
	visit, judged := "", ""
	if f.LastVisit != nil {
		visit, judged = f.LastVisit.Date, t.statusLabel(f.LastVisit.Judged)
	}
	return []any{f.Household, f.Village, t.names.Name(f.Village), f.HeadName,
		t.l.FieldValue(t.l.Forms().HouseholdEntity(), t.status, f.PovertyStatus), t.statusLabel(f.Status),
		strings.Join(reasons, ";"), visit, judged, f.DueDate, t.l.Value("due_from", f.DueFrom), strconv.FormatBool(f.Due), f.AsOf}
}
