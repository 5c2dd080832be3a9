package schema

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// rulesNow is the clock of the rule tests: today is 2026-11-20 (UTC).
var rulesNow = time.Date(2026, 11, 20, 23, 30, 0, 0, time.UTC)

// mustRulesExample loads the example form set of schema/testdata/rules.
func mustRulesExample(t *testing.T) *Schema {
	t.Helper()
	s, err := Load(os.DirFS("testdata"), "rules")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// probeForms is a form set whose water form carries the given rules: the
// fields of every type a condition may read, and a reference to a
// household for REF.NAME operands.
func probeForms(rules string) fstest.MapFS {
	return fstest.MapFS{
		"forms/household.json": {Data: []byte(`{"entity": "household", "scope_field": "village", "fields": [
			{"name": "village", "type": "division_code", "required": true, "policy": "manual"},
			{"name": "members", "type": "integer", "policy": "manual"},
			{"name": "registered_on", "type": "date", "policy": "manual"}]}`)},
		"forms/probe.json": {Data: []byte(`{"entity": "probe", "parent": {"field": "household_id", "entity": "household"}, "fields": [
			{"name": "household_id", "type": "reference", "entity": "household", "required": true, "policy": "manual"},
			{"name": "source", "type": "enum", "values": ["piped", "well", "cistern"], "policy": "lww"},
			{"name": "note", "type": "text", "policy": "lww"},
			{"name": "ok", "type": "boolean", "policy": "lww"},
			{"name": "a", "type": "number", "policy": "lww"},
			{"name": "b", "type": "integer", "policy": "lww"},
			{"name": "day", "type": "date", "policy": "lww"},
			{"name": "later", "type": "date", "policy": "lww"},
			{"name": "tags", "type": "set", "values": ["x", "y"], "policy": "union"}],
		 "rules": ` + rules + `}`)},
	}
}

func mustProbe(t *testing.T, rules string) *Form {
	t.Helper()
	s, err := Load(probeForms(rules), "forms")
	if err != nil {
		t.Fatal(err)
	}
	return s.Form("probe")
}

func facts(fields string) Facts {
	var f map[string]json.RawMessage
	if err := json.Unmarshal([]byte(fields), &f); err != nil {
		panic(err)
	}
	return Facts{Fields: f, Now: rulesNow}
}

// Each kind of condition, judged as a one-condition criterion: met, not
// met, and not evaluable when a field it compares is absent.
func TestRuleConditionKinds(t *testing.T) {
	cases := []struct {
		name, cond, fields string
		related            string // the household's fields, through household_id
		want               Verdict
	}{
		{"present", `{"present": "note"}`, `{"note": "x"}`, ``, Met},
		{"present of null", `{"present": "note"}`, `{"note": null}`, ``, NotMet},
		{"present absent", `{"present": "note"}`, `{}`, ``, NotMet},
		{"absent", `{"absent": "note"}`, `{}`, ``, Met},
		{"absent present", `{"absent": "note"}`, `{"note": "x"}`, ``, NotMet},
		{"equals enum", `{"field": "source", "equals": "piped"}`, `{"source": "piped"}`, ``, Met},
		{"equals enum other", `{"field": "source", "equals": "piped"}`, `{"source": "well"}`, ``, NotMet},
		{"equals absent", `{"field": "source", "equals": "piped"}`, `{}`, ``, NotEvaluable},
		{"equals boolean", `{"field": "ok", "equals": true}`, `{"ok": true}`, ``, Met},
		{"equals boolean false", `{"field": "ok", "equals": true}`, `{"ok": false}`, ``, NotMet},
		{"equals number", `{"field": "a", "equals": 20}`, `{"a": 20.0}`, ``, Met},
		{"equals text", `{"field": "note", "equals": "yard"}`, `{"note": "yard"}`, ``, Met},
		{"one_of", `{"field": "source", "one_of": ["piped", "well"]}`, `{"source": "well"}`, ``, Met},
		{"one_of none", `{"field": "source", "one_of": ["piped", "well"]}`, `{"source": "cistern"}`, ``, NotMet},
		{"number <= value", `{"field": "a", "op": "<=", "value": 20}`, `{"a": 20}`, ``, Met},
		{"number < value", `{"field": "a", "op": "<", "value": 20}`, `{"a": 20}`, ``, NotMet},
		{"number > value", `{"field": "a", "op": ">", "value": 20}`, `{"a": 20.5}`, ``, Met},
		{"number >= value", `{"field": "a", "op": ">=", "value": 20}`, `{"a": 19.9}`, ``, NotMet},
		{"number absent", `{"field": "a", "op": ">=", "value": 20}`, `{}`, ``, NotEvaluable},
		{"number vs field", `{"field": "a", "op": "<=", "other": "b"}`, `{"a": 3, "b": 4}`, ``, Met},
		{"number vs field fails", `{"field": "a", "op": "<=", "other": "b"}`, `{"a": 5, "b": 4}`, ``, NotMet},
		{"number vs absent field", `{"field": "a", "op": "<=", "other": "b"}`, `{"a": 5}`, ``, NotEvaluable},
		{"date vs value", `{"field": "day", "op": ">=", "value": "2020-01-01"}`, `{"day": "2020-01-01"}`, ``, Met},
		{"date vs value fails", `{"field": "day", "op": ">=", "value": "2020-01-01"}`, `{"day": "2019-12-31"}`, ``, NotMet},
		{"date vs field", `{"field": "later", "op": ">=", "other": "day"}`, `{"day": "2026-01-02", "later": "2026-01-10"}`, ``, Met},
		{"date vs field fails", `{"field": "later", "op": ">=", "other": "day"}`, `{"day": "2026-01-02", "later": "2025-12-31"}`, ``, NotMet},
		{"date vs today", `{"field": "day", "op": "<=", "today_plus_days": 1}`, `{"day": "2026-11-21"}`, ``, Met},
		{"date vs today fails", `{"field": "day", "op": "<=", "today_plus_days": 1}`, `{"day": "2026-11-22"}`, ``, NotMet},
		{"date vs today minus", `{"field": "day", "op": ">=", "today_plus_days": -30}`, `{"day": "2026-10-20"}`, ``, NotMet}, // today minus 30 days is 2026-10-21
		{"date vs related record", `{"field": "day", "op": ">=", "other": "household_id.registered_on"}`, `{"day": "2026-01-02"}`, `{"registered_on": "2026-01-01"}`, Met},
		{"date vs related record fails", `{"field": "day", "op": ">=", "other": "household_id.registered_on"}`, `{"day": "2025-01-02"}`, `{"registered_on": "2026-01-01"}`, NotMet},
		{"related record missing", `{"field": "day", "op": ">=", "other": "household_id.registered_on"}`, `{"day": "2025-01-02"}`, ``, NotEvaluable},
		{"related present", `{"present": "household_id.members"}`, `{}`, `{"members": 3}`, Met},
		{"all_of", `{"all_of": [{"present": "note"}, {"field": "a", "op": "<", "value": 5}]}`, `{"note": "x", "a": 1}`, ``, Met},
		{"all_of one fails", `{"all_of": [{"present": "note"}, {"field": "a", "op": "<", "value": 5}]}`, `{"a": 1}`, ``, NotMet},
		{"all_of unknown", `{"all_of": [{"present": "note"}, {"field": "a", "op": "<", "value": 5}]}`, `{"note": "x"}`, ``, NotEvaluable},
		{"all_of false beats unknown", `{"all_of": [{"field": "a", "op": "<", "value": 5}, {"present": "note"}]}`, `{}`, ``, NotMet},
		{"any_of", `{"any_of": [{"present": "note"}, {"field": "a", "op": "<", "value": 5}]}`, `{"a": 1}`, ``, Met},
		{"any_of none", `{"any_of": [{"present": "note"}, {"field": "a", "op": "<", "value": 5}]}`, `{"a": 9}`, ``, NotMet},
		{"any_of unknown", `{"any_of": [{"present": "note"}, {"field": "a", "op": "<", "value": 5}]}`, `{}`, ``, NotEvaluable},
		{"not", `{"not": {"field": "source", "equals": "piped"}}`, `{"source": "well"}`, ``, Met},
		{"not fails", `{"not": {"field": "source", "equals": "piped"}}`, `{"source": "piped"}`, ``, NotMet},
		{"not unknown", `{"not": {"field": "source", "equals": "piped"}}`, `{}`, ``, NotEvaluable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := mustProbe(t, `[{"name": "probe", "description": {"zh": "探", "en": "probe"}, "source": "test", "any_of": [`+tc.cond+`]}]`)
			fs := facts(tc.fields)
			if tc.related != "" {
				fs.Related = map[string]map[string]json.RawMessage{"household_id": facts(tc.related).Fields}
			}
			j, err := form.Judge("probe", fs)
			if err != nil {
				t.Fatal(err)
			}
			if j.Verdict != tc.want {
				t.Errorf("%s on %s: %s, want %s", tc.cond, tc.fields, j.Verdict, tc.want)
			}
		})
	}
}

// The convenience criterion of the example water form: any one of piped
// supply, time, horizontal or vertical distance suffices, and the judgement
// names the condition that decided.
func TestJudgeConvenienceAnyOf(t *testing.T) {
	water := mustRulesExample(t).Form("water_inspection")
	cases := []struct {
		fields  string
		want    Verdict
		decided string
	}{
		{`{"source": "piped"}`, Met, "rules[0].any_of[0]"},
		{`{"source": "well", "fetch_minutes": 20}`, Met, "rules[0].any_of[1]"},
		{`{"source": "well", "fetch_minutes": 45, "distance_horizontal_m": 800}`, Met, "rules[0].any_of[2]"},
		{`{"source": "well", "fetch_minutes": 45, "distance_horizontal_m": 1500, "distance_vertical_m": 80}`, Met, "rules[0].any_of[3]"},
		{`{"source": "well", "fetch_minutes": 45, "distance_horizontal_m": 1500, "distance_vertical_m": 81}`, NotMet, "rules[0].any_of"},
		{`{"source": "well", "fetch_minutes": 45}`, NotEvaluable, "rules[0].any_of[2]"},
		{`{}`, NotEvaluable, "rules[0].any_of[0]"},
	}
	for _, tc := range cases {
		j, err := water.Judge("water_convenience", facts(tc.fields))
		if err != nil {
			t.Fatal(err)
		}
		if j.Verdict != tc.want || j.Decided != tc.decided || j.Rule != "water_convenience" {
			t.Errorf("%s: %+v, want %s decided by %s", tc.fields, j, tc.want, tc.decided)
		}
	}
	if _, err := water.Judge("fetch_minutes_unless_piped", facts(`{}`)); err == nil {
		t.Error("Judge of a requirement: no error, want one (it is no criterion)")
	}
	if _, err := water.Judge("no_such_rule", facts(`{}`)); err == nil {
		t.Error("Judge of an unknown rule: no error")
	}
	if got := water.Rule("water_convenience").Kind(); got != KindCriterion {
		t.Errorf("convenience is a %s, want a criterion", got)
	}
	if errs := water.CheckRules(facts(`{"source": "piped", "distance_horizontal_m": 5000, "distance_vertical_m": 10}`), nil); len(errs) != 0 {
		t.Errorf("a criterion is not enforced: %v", errs)
	}
	if errs := water.CheckRules(facts(`{"source": "well", "fetch_minutes": 90, "distance_horizontal_m": 5000, "distance_vertical_m": 10}`), nil); len(errs) != 0 {
		t.Errorf("a criterion not met is not enforced: %v", errs)
	}
}

// Each kind of requirement rejects a record that fails it, with the path of
// the field, the rule's name and its English description, and passes one
// that meets it.
func TestCheckRulesRequirements(t *testing.T) {
	s := mustRulesExample(t)
	water, housing := s.Form("water_inspection"), s.Form("housing_inspection")
	previous := map[string]map[string]json.RawMessage{"previous_id": facts(`{"inspected_on": "2026-03-01"}`).Fields}
	cases := []struct {
		name    string
		form    *Form
		fields  string
		related map[string]map[string]json.RawMessage
		want    string // "rule at path", or "" for none
	}{
		{"unless: required when not piped", water, `{"source": "well"}`, nil, "fetch_minutes_unless_piped at fields.fetch_minutes"},
		{"unless: required when no source", water, `{}`, nil, "fetch_minutes_unless_piped at fields.fetch_minutes"},
		{"unless: given", water, `{"source": "well", "fetch_minutes": 30}`, nil, ""},
		{"unless: piped needs none", water, `{"source": "piped"}`, nil, ""},
		{"when: completed needs the date", housing, `{"inspected_on": "2026-05-01", "renovation": "completed"}`, nil, "renovation_date_when_completed at fields.renovated_on"},
		{"when: verified needs the date", housing, `{"inspected_on": "2026-05-01", "renovation": "verified"}`, nil, "renovation_date_when_completed at fields.renovated_on"},
		{"when: planned needs none", housing, `{"inspected_on": "2026-05-01", "renovation": "planned"}`, nil, ""},
		{"when: absent condition needs none", housing, `{"inspected_on": "2026-05-01"}`, nil, ""},
		{"check on one record", water, `{"source": "piped", "distance_horizontal_m": 100, "distance_vertical_m": 120}`, nil, "distance_vertical_within_horizontal at fields.distance_vertical_m"},
		{"check on one record holds", water, `{"source": "piped", "distance_horizontal_m": 100, "distance_vertical_m": 100}`, nil, ""},
		{"check with a field absent holds", water, `{"source": "piped", "distance_vertical_m": 120}`, nil, ""},
		{"check against the previous record", housing, `{"inspected_on": "2026-05-01", "renovated_on": "2026-02-01", "previous_id": "0193b7c2-4444-7000-8000-000000000004"}`, previous, "renovated_after_previous at fields.renovated_on"},
		{"check against the previous record holds", housing, `{"inspected_on": "2026-05-01", "renovated_on": "2026-04-01", "previous_id": "0193b7c2-4444-7000-8000-000000000004"}`, previous, ""},
		{"check without the previous record", housing, `{"inspected_on": "2026-05-01", "renovated_on": "2026-04-01"}`, nil, ""},
		{"date range: too early", housing, `{"inspected_on": "1999-12-31"}`, nil, "inspection_date_plausible at fields.inspected_on"},
		{"date range: after tomorrow", housing, `{"inspected_on": "2026-11-22"}`, nil, "inspection_date_plausible at fields.inspected_on"},
		{"date range: tomorrow", housing, `{"inspected_on": "2026-11-21"}`, nil, ""},
		{"date range: first day", housing, `{"inspected_on": "2000-01-01"}`, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := facts(tc.fields)
			fs.Related = tc.related
			errs := tc.form.CheckRules(fs, nil)
			var got []string
			for _, e := range errs {
				got = append(got, e.Rule+" at "+e.Path)
				if r := tc.form.Rule(e.Rule); r == nil || e.Message != r.Description["en"] {
					t.Errorf("%+v: message is not the rule's English description", e)
				}
			}
			if strings.Join(got, "; ") != tc.want {
				t.Errorf("%s: %v, want %q", tc.fields, got, tc.want)
			}
		})
	}
}

// A rule is checked on an update only when the change alters a field it
// reads: an older record that fails a rule added later can still be edited
// elsewhere.
func TestCheckRulesOnlyForChangedFields(t *testing.T) {
	water := mustRulesExample(t).Form("water_inspection")
	rec := facts(`{"source": "well", "operator": "x"}`)
	if errs := water.CheckRules(rec, []string{"operator"}); len(errs) != 0 {
		t.Errorf("change of operator only: %v, want no rule checked", errs)
	}
	for _, changed := range []string{"source", "fetch_minutes"} {
		if errs := water.CheckRules(rec, []string{changed}); len(errs) != 1 || errs[0].Rule != "fetch_minutes_unless_piped" {
			t.Errorf("change of %s: %v, want fetch_minutes_unless_piped", changed, errs)
		}
	}
	housing := mustRulesExample(t).Form("housing_inspection")
	prev := Facts{Fields: facts(`{"inspected_on": "2026-05-01", "renovated_on": "2026-02-01", "previous_id": "0193b7c2-4444-7000-8000-000000000004"}`).Fields,
		Related: map[string]map[string]json.RawMessage{"previous_id": facts(`{"inspected_on": "2026-03-01"}`).Fields}, Now: rulesNow}
	if errs := housing.CheckRules(prev, []string{"previous_id"}); len(errs) != 1 || errs[0].Rule != "renovated_after_previous" {
		t.Errorf("change of previous_id: %v, want renovated_after_previous (it reads the record previous_id points to)", errs)
	}
	if got := housing.RuleReferences(); strings.Join(got, ",") != "previous_id" {
		t.Errorf("RuleReferences %v, want [previous_id]", got)
	}
}

// Loading checks every rule against its form, and reports each error with
// its file and JSON path.
func TestRuleLoadErrors(t *testing.T) {
	desc := `"description": {"zh": "z", "en": "e"}, "source": "s"`
	cases := []struct {
		name, rules, path, msg string
	}{
		{"unknown field", `[{"name": "r", ` + desc + `, "any_of": [{"field": "nope", "equals": 1}]}]`, "rules[0].any_of[0].field", `unknown field "nope"`},
		{"unknown present field", `[{"name": "r", ` + desc + `, "any_of": [{"present": "nope"}]}]`, "rules[0].any_of[0].present", `unknown field "nope"`},
		{"unknown required field", `[{"name": "r", ` + desc + `, "require": ["nope"]}]`, "rules[0].require[0]", `unknown field "nope"`},
		{"unknown other field", `[{"name": "r", ` + desc + `, "check": {"field": "a", "op": "<=", "other": "nope"}}]`, "rules[0].check.other", `unknown field "nope"`},
		{"dotted through a non-reference", `[{"name": "r", ` + desc + `, "check": {"field": "day", "op": "<=", "other": "note.day"}}]`, "rules[0].check.other", `"note" is not a reference field`},
		{"unknown field of the referenced form", `[{"name": "r", ` + desc + `, "check": {"field": "day", "op": "<=", "other": "household_id.nope"}}]`, "rules[0].check.other", `unknown field "nope" of household`},
		{"numeric comparison on text", `[{"name": "r", ` + desc + `, "check": {"field": "note", "op": "<=", "value": 3}}]`, "rules[0].check.field", "note is a text field"},
		{"number against a date", `[{"name": "r", ` + desc + `, "check": {"field": "a", "op": "<=", "other": "day"}}]`, "rules[0].check.other", "do not compare"},
		{"today on a number", `[{"name": "r", ` + desc + `, "check": {"field": "a", "op": "<=", "today_plus_days": 1}}]`, "rules[0].check.today_plus_days", "for date fields"},
		{"a constant of the wrong type", `[{"name": "r", ` + desc + `, "any_of": [{"field": "a", "op": "<=", "value": "twenty"}]}]`, "rules[0].any_of[0].value", "must be a number"},
		{"an enum value the field lacks", `[{"name": "r", ` + desc + `, "unless": {"field": "source", "equals": "pipe"}, "require": ["a"]}]`, "rules[0].unless.equals", "must be one of piped, well, cistern"},
		{"a one_of value the field lacks", `[{"name": "r", ` + desc + `, "any_of": [{"field": "source", "one_of": ["piped", "tap"]}]}]`, "rules[0].any_of[0].one_of[1]", "must be one of"},
		{"equals on a set", `[{"name": "r", ` + desc + `, "any_of": [{"field": "tags", "equals": "x"}]}]`, "rules[0].any_of[0].field", "tags is a set field"},
		{"unknown operator", `[{"name": "r", ` + desc + `, "any_of": [{"field": "a", "op": "~=", "value": 1}]}]`, "rules[0].any_of[0].op", `unknown operator "~="`},
		{"a comparison without its test", `[{"name": "r", ` + desc + `, "any_of": [{"field": "a", "equal": 1}]}]`, "rules[0].any_of[0]", "needs exactly one of equals, one_of, op"},
		{"an op without its right side", `[{"name": "r", ` + desc + `, "any_of": [{"field": "a", "op": "<"}]}]`, "rules[0].any_of[0]", "needs exactly one of value, other, today_plus_days"},
		{"an empty condition", `[{"name": "r", ` + desc + `, "any_of": [{"all_of": [{}]}]}]`, "rules[0].any_of[0].all_of[0]", "empty condition"},
		{"two conditions in one", `[{"name": "r", ` + desc + `, "check": {"present": "a", "absent": "b"}}]`, "rules[0].check", "present and absent"},
		{"an empty group", `[{"name": "r", ` + desc + `, "check": {"any_of": []}}]`, "rules[0].check.any_of", "at least one condition"},
		{"duplicate names", `[{"name": "r", ` + desc + `, "require": ["a"]}, {"name": "r", ` + desc + `, "require": ["b"]}]`, "rules[1].name", `"r" is also the name of rules[0]`},
		{"no name", `[{` + desc + `, "require": ["a"]}]`, "rules[0].name", "is required"},
		{"no description", `[{"name": "r", "source": "s", "require": ["a"]}]`, "rules[0].description", "needs zh and en"},
		{"no source", `[{"name": "r", "description": {"zh": "z", "en": "e"}, "require": ["a"]}]`, "rules[0].source", "is required"},
		{"two shapes", `[{"name": "r", ` + desc + `, "require": ["a"], "check": {"present": "a"}}]`, "rules[0]", "exactly one of any_of, require, check, date_range"},
		{"no shape", `[{"name": "r", ` + desc + `}]`, "rules[0]", "exactly one of any_of, require, check, date_range"},
		{"when without require", `[{"name": "r", ` + desc + `, "check": {"present": "a"}, "when": {"present": "b"}}]`, "rules[0]", "when and unless go with require"},
		{"when and unless", `[{"name": "r", ` + desc + `, "require": ["a"], "when": {"present": "b"}, "unless": {"present": "b"}}]`, "rules[0]", "both when and unless"},
		{"date range on a number", `[{"name": "r", ` + desc + `, "date_range": {"field": "a", "min": "2000-01-01"}}]`, "rules[0].date_range.field", "a is a number field"},
		{"date range without bounds", `[{"name": "r", ` + desc + `, "date_range": {"field": "day"}}]`, "rules[0].date_range", "at least one of"},
		{"date range with a bad date", `[{"name": "r", ` + desc + `, "date_range": {"field": "day", "max": "2026-13-01"}}]`, "rules[0].date_range.max", "not a date"},
		{"date range upside down", `[{"name": "r", ` + desc + `, "date_range": {"field": "day", "min": "2026-01-01", "max": "2025-01-01"}}]`, "rules[0].date_range", "is after max"},
		{"date range with negative days", `[{"name": "r", ` + desc + `, "date_range": {"field": "day", "max_days_ahead": -1}}]`, "rules[0].date_range.max_days_ahead", "from 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(probeForms(tc.rules), "forms")
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("Load: %v, want a RuleError", err)
			}
			if re.File != "forms/probe.json" || re.Path != tc.path || !strings.Contains(re.Message, tc.msg) {
				t.Errorf("got %s; want forms/probe.json: %s: …%s…", re, tc.path, tc.msg)
			}
		})
	}
}

// Every error of a form set's rules comes at once, across forms.
func TestRuleLoadErrorsAllAtOnce(t *testing.T) {
	fsys := probeForms(`[
		{"name": "dup", "description": {"zh": "z", "en": "e"}, "source": "s", "require": ["a"]},
		{"name": "dup", "description": {"zh": "z", "en": "e"}, "source": "s",
		 "any_of": [{"field": "a", "op": "<=", "value": 1}, {"field": "nope", "equals": 1}, {"field": "note", "op": ">", "value": 2}]}]`)
	fsys["forms/other.json"] = &fstest.MapFile{Data: []byte(`{"entity": "other", "fields": [{"name": "x", "type": "text", "policy": "lww"}],
		"region_rules": [{"name": "taken", "prefixes": ["50"], "require": ["x"]}],
		"rules": [{"name": "taken", "description": {"zh": "z", "en": "e"}, "source": "s", "any_of": [{"field": "x", "op": "=", "value": "y"}]}]}`)}
	_, err := Load(fsys, "forms")
	if err == nil {
		t.Fatal("Load accepted broken rules")
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var re *RuleError
		if !errors.As(e, &re) {
			t.Fatalf("%v is no RuleError", e)
		}
		got = append(got, re.File+":"+re.Path)
	}
	want := []string{"forms/other.json:rules[0].name", "forms/other.json:rules[0].any_of[0].op", "forms/other.json:rules[0].any_of[0].field",
		"forms/probe.json:rules[1].name", "forms/probe.json:rules[1].any_of[1].field", "forms/probe.json:rules[1].any_of[2].field"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("errors\n%v\nwant\n%v", got, want)
	}
}

// The rules of a form are served with it (GET /v1/schema) and parse back
// to the same verdicts: what a tablet validates its edits against.
func TestRulesRoundTripThroughParse(t *testing.T) {
	s := mustRulesExample(t)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	fs := facts(`{"source": "well", "fetch_minutes": 45, "distance_horizontal_m": 1500, "distance_vertical_m": 80}`)
	j, err := back.Form("water_inspection").Judge("water_convenience", fs)
	if err != nil || j.Verdict != Met || j.Decided != "rules[0].any_of[3]" {
		t.Errorf("after Parse: %+v, %v", j, err)
	}
	if errs := back.Form("water_inspection").CheckRules(facts(`{"source": "well"}`), nil); len(errs) != 1 {
		t.Errorf("after Parse the requirement is lost: %v", errs)
	}
}

// The built-in forms declare no rules: v1 validation is what it was.
func TestBuiltInFormsDeclareNoRules(t *testing.T) {
	// Version 1 is published and immutable: it declares none. (Version 2
	// declares the water criterion: TestWaterCriteria.)
	for _, f := range V1().Forms {
		if len(f.Rules) != 0 {
			t.Errorf("%s declares %d rules", f.Entity, len(f.Rules))
		}
	}
}
