package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
)

// MonitoringFile is the file of a version directory that declares how
// households that could slip back into poverty are followed up: the
// monitoring statuses with their visit schedules, the triggers that put a
// household in a status, and the form a follow-up visit is recorded on
// (docs/forms.md, "Monitoring").
const MonitoringFile = "monitoring.json"

// Monitoring is what a version's MonitoringFile declares.
type Monitoring struct {
	// Source names the document the monitoring implements.
	Source string `json:"source"`
	// Statuses are the monitoring statuses from the least severe (the
	// first: a household with nothing wrong) to the most severe; a
	// household in several is in the most severe.
	Statuses []MonitoringStatus `json:"statuses"`
	// Households are the poverty statuses (values of the household role's
	// status field) whose households are monitored whether or not a
	// trigger holds, each with the monitoring status it starts from.
	Households []MonitoredHousehold `json:"households"`
	// Triggers are the conditions that put a household in a status.
	Triggers []Trigger `json:"triggers"`
	// Visit names the form a follow-up visit is recorded on: a child of
	// the household playing the role RoleFollowupVisit.
	Visit string `json:"visit"`
}

// MonitoringStatus is one monitoring status: its name, labels in zh and
// en, the days from the last visit (or the evidence no visit has seen
// yet) until the next follow-up visit is due, and where that figure
// comes from.
type MonitoringStatus struct {
	Name         string            `json:"name"`
	Labels       map[string]string `json:"labels"`
	FollowUpDays int               `json:"follow_up_days"`
	Source       string            `json:"source"`
}

// MonitoredHousehold says that households of a poverty status are
// monitored, starting from a monitoring status.
type MonitoredHousehold struct {
	Status string `json:"status"`
	Starts string `json:"starts"`
}

// Trigger is one condition that puts a household in the status LeadsTo,
// for households whose poverty status is one of Households ("" stands for
// a household with no status recorded: not registered as poor). It holds
// either when one of Guarantees is not met by the household's verdict
// (the verification's guarantees), or when a record of Form (the
// household's own record, or each record of a child form) meets the
// criterion rule Met, or does not meet the criterion rule NotMet: exactly
// one of Guarantees, Met and NotMet.
type Trigger struct {
	Name       string            `json:"name"`
	Labels     map[string]string `json:"labels"`
	Households []string          `json:"households"`
	Guarantees []string          `json:"guarantees,omitempty"`
	Form       string            `json:"form,omitempty"`
	Met        string            `json:"met,omitempty"`
	NotMet     string            `json:"not_met,omitempty"`
	LeadsTo    string            `json:"leads_to"`
	Source     string            `json:"source"`
}

// Monitoring returns the version's monitoring, or nil when its directory
// has no MonitoringFile.
func (s *Schema) Monitoring() *Monitoring { return s.monitoring }

// Status returns the named status, or nil.
func (m *Monitoring) Status(name string) *MonitoringStatus {
	for i := range m.Statuses {
		if m.Statuses[i].Name == name {
			return &m.Statuses[i]
		}
	}
	return nil
}

// Severity is the status's place from the least severe (0); -1 for a
// name that is no status.
func (m *Monitoring) Severity(name string) int {
	return slices.IndexFunc(m.Statuses, func(s MonitoringStatus) bool { return s.Name == name })
}

// loadMonitoring reads the version directory's MonitoringFile, if it has
// one, and checks it against the version's forms and verification (sch
// may be nil when the forms did not load: only the file's own shape is
// checked then).
func loadMonitoring(fsys fs.FS, vdir string, rel func(string) string, sch *Schema, ver *Verification) (*Monitoring, SetErrors) {
	name := path.Join(vdir, MonitoringFile)
	b, err := fs.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, SetErrors{{File: rel(name), Path: "$", Message: errText(err)}}
	}
	var m Monitoring
	if p, msg := strictDecode(b, &m); msg != "" {
		return nil, SetErrors{{File: rel(name), Path: p, Message: msg}}
	}
	errs := m.check(sch, ver)
	for i := range errs {
		errs[i].File = rel(name)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &m, nil
}

// check returns every problem of the monitoring at once, each with its
// JSON path: a missing source or label, a status repeated or without a
// schedule, a monitored poverty status or a trigger's household status
// that is not a value of the household's status, an unknown status, a
// trigger that names its condition by none or several of guarantees, met
// and not_met, an unknown guarantee, form or rule, a visit form that is
// not the household's child playing RoleFollowupVisit or whose next
// status offers a value that is no monitoring status. With sch nil the
// references to forms are not checked; guarantees are checked against
// ver, which must then be declared.
func (m *Monitoring) check(sch *Schema, ver *Verification) SetErrors {
	var errs SetErrors
	bad := func(p, format string, a ...any) {
		errs = append(errs, SetError{Path: p, Message: fmt.Sprintf(format, a...)})
	}
	labels := func(p, what string, l map[string]string) {
		for _, lang := range []string{LangZH, LangEN} {
			if l[lang] == "" {
				bad(p+".labels."+lang, "%s needs a label in %s", what, lang)
			}
		}
	}
	if m.Source == "" {
		bad("source", "names the document the monitoring implements")
	}
	if len(m.Statuses) == 0 {
		bad("statuses", "declares the monitoring statuses, from the least severe to the most")
	}
	statuses := map[string]string{}
	for i, s := range m.Statuses {
		p := fmt.Sprintf("statuses[%d]", i)
		switch {
		case s.Name == "":
			bad(p+".name", "a status needs a name")
		case statuses[s.Name] != "":
			bad(p+".name", "status %q is declared in %s already", s.Name, statuses[s.Name])
		default:
			statuses[s.Name] = p
		}
		labels(p, fmt.Sprintf("status %q", s.Name), s.Labels)
		if s.FollowUpDays < 1 {
			bad(p+".follow_up_days", "status %q needs the days (at least 1) until its follow-up visit is due", s.Name)
		}
		if s.Source == "" {
			bad(p+".source", "status %q names where its schedule comes from", s.Name)
		}
	}
	status := func(p, name string) {
		if statuses[name] == "" {
			bad(p, "unknown monitoring status %q", name)
		}
	}
	var household *Form
	var povertyValues []string
	if sch != nil {
		household = sch.Playing(RoleHousehold)
		if household == nil {
			bad("$", "a monitoring needs a form playing the role %s", RoleHousehold)
		} else if fd := household.Field(household.RoleField("status")); fd != nil {
			povertyValues = fd.Values
		}
	}
	poverty := func(p, v string, empty bool) {
		if household == nil || (empty && v == "") || slices.Contains(povertyValues, v) {
			return
		}
		bad(p, "%q is not a value of %s.%s (one of %v)", v, household.Entity, household.RoleField("status"), povertyValues)
	}
	seenHousehold := map[string]bool{}
	for i, h := range m.Households {
		p := fmt.Sprintf("households[%d]", i)
		poverty(p+".status", h.Status, false)
		if seenHousehold[h.Status] {
			bad(p+".status", "poverty status %q is monitored once", h.Status)
		}
		seenHousehold[h.Status] = true
		status(p+".starts", h.Starts)
	}
	triggers := map[string]string{}
	for i := range m.Triggers {
		t := &m.Triggers[i]
		p := fmt.Sprintf("triggers[%d]", i)
		switch {
		case t.Name == "":
			bad(p+".name", "a trigger needs a name")
		case triggers[t.Name] != "":
			bad(p+".name", "trigger %q is declared in %s already", t.Name, triggers[t.Name])
		default:
			triggers[t.Name] = p
		}
		labels(p, fmt.Sprintf("trigger %q", t.Name), t.Labels)
		if t.Source == "" {
			bad(p+".source", "trigger %q names the source it implements", t.Name)
		}
		status(p+".leads_to", t.LeadsTo)
		if len(t.Households) == 0 {
			bad(p+".households", "trigger %q names the poverty statuses it applies to (\"\" for none recorded)", t.Name)
		}
		for j, v := range t.Households {
			poverty(fmt.Sprintf("%s.households[%d]", p, j), v, true)
		}
		n := 0
		for _, set := range []bool{len(t.Guarantees) > 0, t.Met != "", t.NotMet != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad(p, "trigger %q holds by exactly one of guarantees, met and not_met", t.Name)
		}
		if len(t.Guarantees) > 0 {
			if t.Form != "" {
				bad(p+".form", "a trigger on guarantees reads the verdict, not a form")
			}
			for j, g := range t.Guarantees {
				gp := fmt.Sprintf("%s.guarantees[%d]", p, j)
				switch {
				case ver == nil && sch != nil:
					bad(gp, "guarantee %q: the version declares no verification (%s)", g, VerificationFile)
				case !slices.Contains(GuaranteeNames, g):
					bad(gp, "unknown guarantee %q (one of %v)", g, GuaranteeNames)
				}
			}
			continue
		}
		if t.Form == "" {
			bad(p+".form", "trigger %q names the form whose records it judges", t.Name)
			continue
		}
		if household == nil {
			continue
		}
		f := sch.Form(t.Form)
		switch {
		case f == nil:
			bad(p+".form", "unknown form %q", t.Form)
			continue
		case f != household && (f.Parent == nil || f.Parent.Entity != household.Entity):
			bad(p+".form", "form %q is neither the household form %q nor its child", t.Form, household.Entity)
			continue
		}
		for _, kr := range [][2]string{{".met", t.Met}, {".not_met", t.NotMet}} {
			key, rule := kr[0], kr[1]
			if rule == "" {
				continue
			}
			switch r := f.Rule(rule); {
			case r == nil:
				bad(p+key, "unknown rule %q of %s", rule, f.Entity)
			case r.Kind() != KindCriterion:
				bad(p+key, "rule %q of %s is a requirement: a trigger judges criterion rules (any_of)", rule, f.Entity)
			}
		}
	}
	if m.Visit == "" {
		bad("visit", "names the form a follow-up visit is recorded on")
	} else if household != nil {
		f := sch.Form(m.Visit)
		switch {
		case f == nil:
			bad("visit", "unknown form %q", m.Visit)
		case f.Parent == nil || f.Parent.Entity != household.Entity:
			bad("visit", "form %q is no child of the household form %q", m.Visit, household.Entity)
		case f.Role == nil || f.Role.Plays != RoleFollowupVisit:
			bad("visit", "form %q plays no role %s", m.Visit, RoleFollowupVisit)
		default:
			if fd := f.Field(f.RoleField("next_status")); fd != nil {
				for _, v := range fd.Values {
					if statuses[v] == "" && len(statuses) > 0 {
						bad("visit", "%s.%s offers %q, which is no monitoring status", f.Entity, fd.Name, v)
					}
				}
			}
		}
	}
	return errs
}
