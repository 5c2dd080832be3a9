package schema

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// builtInWith is the built-in form set with version 3's files replaced
// (a nil content removes the file).
func builtInWith(tb testing.TB, files map[string]string) fs.FS {
	tb.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(formFiles, "forms", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(formFiles, p)
		out[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	for name, text := range files {
		out["forms/3/"+name] = &fstest.MapFile{Data: []byte(text)}
	}
	return out
}

func TestMonitoringLoadsWithVersion3(t *testing.T) {
	m := BuiltIn().Latest().Monitoring()
	if m == nil {
		t.Fatal("version 3 declares no monitoring")
	}
	var names []string
	for _, s := range m.Statuses {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "stable,borderline,unstable,sudden_hardship,relapsed" {
		t.Fatalf("statuses %v", names)
	}
	if m.Status("relapsed").FollowUpDays != 7 || m.Status("stable").FollowUpDays != 365 || m.Severity("relapsed") != 4 || m.Severity("none") != -1 {
		t.Fatalf("schedule or severity wrong: %+v", m.Statuses)
	}
	if BuiltIn().Version(2).Monitoring() != nil {
		t.Fatal("version 2 declares a monitoring")
	}
	// The published document carries it, and reads back.
	sch, _, err := ParseDocument(BuiltIn().Document(3))
	if err != nil {
		t.Fatal(err)
	}
	if got := sch.Monitoring(); got == nil || len(got.Triggers) != len(m.Triggers) || got.Visit != "followup_visit" {
		t.Fatalf("monitoring of the document = %+v", got)
	}
	visit := sch.Playing(RoleFollowupVisit)
	if visit == nil || visit.RoleField("date") != "visited_on" || visit.Parent.Entity != "household" {
		t.Fatalf("the visit form is not the household's child playing %s", RoleFollowupVisit)
	}
}

func TestMonitoringErrorsNameFileAndPath(t *testing.T) {
	const bad = `{"source": "",
 "statuses": [
  {"name": "stable", "labels": {"zh": "稳定", "en": "Stable"}, "follow_up_days": 365, "source": "s"},
  {"name": "stable", "labels": {"zh": "稳定"}, "follow_up_days": 0, "source": ""}],
 "households": [{"status": "lifted", "starts": "stable"}, {"status": "relapse_risk", "starts": "shaky"}],
 "triggers": [
  {"name": "t1", "labels": {"zh": "一", "en": "one"}, "households": ["lifted_out"], "guarantees": ["food", "shelter"], "leads_to": "relapsed", "source": "s"},
  {"name": "t2", "labels": {"zh": "二", "en": "two"}, "households": [], "form": "household", "met": "income_above_line", "not_met": "food_assured", "leads_to": "stable", "source": "s"},
  {"name": "t3", "labels": {"zh": "三", "en": "three"}, "households": ["", "poor"], "form": "pupil", "met": "x", "leads_to": "stable", "source": "s"},
  {"name": "t4", "labels": {"zh": "四", "en": "four"}, "households": [""], "form": "person", "met": "id_card_check_digit", "leads_to": "stable", "source": "s"},
  {"name": "t4", "labels": {"zh": "五", "en": "five"}, "households": [""], "form": "person", "not_met": "sick", "leads_to": "stable", "source": ""}],
 "visit": "housing_inspection"}`
	_, err := LoadCatalog(builtInWith(t, map[string]string{MonitoringFile: bad}), "forms")
	if err == nil {
		t.Fatal("a bad monitoring loaded")
	}
	got := err.Error()
	for _, want := range []string{
		`3/monitoring.json: source: names the document`,
		`3/monitoring.json: statuses[1].name: status "stable" is declared in statuses[0] already`,
		`3/monitoring.json: statuses[1].labels.en: status "stable" needs a label in en`,
		`3/monitoring.json: statuses[1].follow_up_days: status "stable" needs the days`,
		`3/monitoring.json: statuses[1].source: status "stable" names where its schedule comes from`,
		`3/monitoring.json: households[0].status: "lifted" is not a value of household.status`,
		`3/monitoring.json: households[1].starts: unknown monitoring status "shaky"`,
		`3/monitoring.json: triggers[0].guarantees[1]: unknown guarantee "shelter"`,
		`3/monitoring.json: triggers[0].leads_to: unknown monitoring status "relapsed"`,
		`3/monitoring.json: triggers[1].households: trigger "t2" names the poverty statuses`,
		`3/monitoring.json: triggers[1]: trigger "t2" holds by exactly one of guarantees, met and not_met`,
		`3/monitoring.json: triggers[2].households[1]: "poor" is not a value of household.status`,
		`3/monitoring.json: triggers[2].form: unknown form "pupil"`,
		`3/monitoring.json: triggers[3].met: rule "id_card_check_digit" of person is a requirement`,
		`3/monitoring.json: triggers[4].name: trigger "t4" is declared in triggers[3] already`,
		`3/monitoring.json: triggers[4].not_met: unknown rule "sick" of person`,
		`3/monitoring.json: triggers[4].source: trigger "t4" names the source`,
		`3/monitoring.json: visit: form "housing_inspection" plays no role followup_visit`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	// An unknown member is named by its path.
	good, _ := fs.ReadFile(formFiles, "forms/3/"+MonitoringFile)
	unknown := strings.Replace(string(good), `"follow_up_days": 7,`, `"follow_up_days": 7, "weeks": 1,`, 1)
	if _, err := LoadCatalog(builtInWith(t, map[string]string{MonitoringFile: unknown}), "forms"); err == nil ||
		!strings.Contains(err.Error(), `3/monitoring.json: statuses[4].weeks: unknown member "weeks"`) {
		t.Errorf("unknown member: %v", err)
	}
	// A visit form whose judged status offers a value no status has.
	visit, _ := fs.ReadFile(formFiles, "forms/3/followup_visit.json")
	more := strings.Replace(string(visit), `"values": ["stable", "borderline",`, `"values": ["stable", "fine", "borderline",`, 1)
	more = strings.Replace(more, `"severity": ["stable", "borderline",`, `"severity": ["stable", "fine", "borderline",`, 1)
	if _, err := LoadCatalog(builtInWith(t, map[string]string{"followup_visit.json": more}), "forms"); err == nil ||
		!strings.Contains(err.Error(), `3/monitoring.json: visit: followup_visit.next_status offers "fine", which is no monitoring status`) {
		t.Errorf("a judged status that is no monitoring status: %v", err)
	}
}
