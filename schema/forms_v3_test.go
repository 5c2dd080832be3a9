package schema

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Version 3 loads with the person form; every form has titles and every
// field labels in zh and en; every rule is described in both; name,
// head_name and id_card are personal, id_card an identity number.
func TestV3FormsLoad(t *testing.T) {
	v3 := BuiltIn().Version(3)
	if v3 == nil || v3.Form("person") == nil {
		t.Fatal("version 3 has no person form")
	}
	for _, f := range v3.Forms {
		if f.Titles[LangZH] == "" || f.Titles[LangEN] == "" {
			t.Errorf("%s: titles %v", f.Entity, f.Titles)
		}
		for _, fd := range f.Fields {
			if fd.Labels[LangZH] == "" || fd.Labels[LangEN] == "" {
				t.Errorf("%s.%s: labels %v", f.Entity, fd.Name, fd.Labels)
			}
			for _, v := range fd.Values {
				if l := fd.ValueLabels[v]; l[LangZH] == "" || l[LangEN] == "" {
					t.Errorf("%s.%s: value %s unlabelled", f.Entity, fd.Name, v)
				}
			}
		}
		for _, r := range f.Rules {
			if r.Description[LangZH] == "" || r.Description[LangEN] == "" || r.Source == "" {
				t.Errorf("%s: rule %s undescribed", f.Entity, r.Name)
			}
		}
	}
	personal := map[string]Personal{}
	for _, f := range v3.Forms {
		for _, fd := range f.Fields {
			if fd.IsPersonal() {
				personal[f.Entity+"."+fd.Name] = fd.Personal
			}
		}
	}
	want := map[string]Personal{"household.head_name": PersonalData, "household.status_note": PersonalData, "person.name": PersonalData, "person.id_card": PersonalIdentity,
		"followup_visit.visitor": PersonalData, "followup_visit.finding": PersonalData}
	if !reflect.DeepEqual(personal, want) {
		t.Fatalf("personal fields %v, want %v", personal, want)
	}
	// The attribute survives the canonical document (what the store
	// publishes and GET /v1/schema serves).
	doc := string(BuiltIn().Document(3))
	if !strings.Contains(doc, `"personal":"identity"`) || !strings.Contains(doc, `"personal":true`) {
		t.Fatal("the document lost the personal attributes")
	}
	if strings.Contains(string(BuiltIn().Document(2)), `"personal"`) {
		t.Fatal("version 2's document changed: it has no personal fields")
	}
	for _, name := range []string{"income_line", "school_age_min", "school_age_max", "evidence_age_months_housing", "evidence_age_months_water", "water_quantity"} {
		if v3.Standards.Standard(name) == nil {
			t.Errorf("v3 standards lack %s", name)
		}
	}
	criteria := map[string][]string{
		"household":          {"food_assured", "clothing_assured"},
		"person":             {"of_school_age", "in_compulsory_education", "medical_insured", "ill", "illness_cared_for"},
		"housing_inspection": {"house_safe"},
		"water_inspection":   {"water_quality", "water_quantity", "water_convenience", "water_reliability"},
	}
	for entity, names := range criteria {
		for _, name := range names {
			if r := v3.Form(entity).Rule(name); r == nil || r.Kind() != KindCriterion {
				t.Errorf("%s has no criterion %s", entity, name)
			}
		}
	}
}

// A form's personal attribute is true, false or "identity", on text
// fields only.
func TestPersonalAttribute(t *testing.T) {
	for _, c := range []struct{ attr, typ, wantErr string }{
		{`true`, "text", ""},
		{`"identity"`, "text", ""},
		{`false`, "text", ""},
		{`"yes"`, "text", "personal"},
		{`true`, "integer", "fields[1].personal"},
	} {
		form := `{"entity":"household","title":"H","scope_field":"village","fields":[
			{"name":"village","type":"division_code","required":true,"policy":"manual"},
			{"name":"x","type":"` + c.typ + `","policy":"lww","personal":` + c.attr + `}]}`
		_, err := Parse([]byte(`{"schema_version":1,"forms":[` + form + `]}`))
		if (err == nil) != (c.wantErr == "") || err != nil && !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("personal %s on %s: %v, want %q", c.attr, c.typ, err, c.wantErr)
		}
	}
}

func fieldsOf(t *testing.T, s string) map[string]json.RawMessage {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &fields); err != nil {
		t.Fatal(err)
	}
	return fields
}

// Each criterion of version 3 at its boundaries, judged as of 2026-12-01.
func TestV3Criteria(t *testing.T) {
	v3 := BuiltIn().Version(3)
	const region = "500240107201"
	for _, c := range []struct {
		name, entity, rule, fields string
		want                       Verdict
	}{
		{"age 6 (born 2020)", "person", "of_school_age", `{"birth_year": 2020}`, Met},
		{"age 5 (born 2021)", "person", "of_school_age", `{"birth_year": 2021}`, NotMet},
		{"age 15 (born 2011)", "person", "of_school_age", `{"birth_year": 2011}`, Met},
		{"age 16 (born 2010)", "person", "of_school_age", `{"birth_year": 2010}`, NotMet},
		{"birth year unrecorded", "person", "of_school_age", `{}`, NotEvaluable},

		{"enrolled", "person", "in_compulsory_education", `{"schooling": "enrolled"}`, Met},
		{"boarding", "person", "in_compulsory_education", `{"schooling": "boarding"}`, Met},
		{"taught at home", "person", "in_compulsory_education", `{"schooling": "home_schooling"}`, Met},
		{"dropped out", "person", "in_compulsory_education", `{"schooling": "dropped_out"}`, NotMet},
		{"exempt with a reason", "person", "in_compulsory_education", `{"schooling": "exempt", "exempt_reason": "severe disability"}`, Met},
		{"exempt without a reason", "person", "in_compulsory_education", `{"schooling": "exempt"}`, NotMet},
		{"schooling unrecorded", "person", "in_compulsory_education", `{}`, NotEvaluable},

		{"insured", "person", "medical_insured", `{"medical_insurance": true}`, Met},
		{"uninsured", "person", "medical_insured", `{"medical_insurance": false}`, NotMet},
		{"insurance unrecorded", "person", "medical_insured", `{}`, NotEvaluable},

		{"chronic", "person", "ill", `{"illness": "chronic"}`, Met},
		{"serious", "person", "ill", `{"illness": "serious"}`, Met},
		{"healthy", "person", "ill", `{"illness": "none"}`, NotMet},

		{"under treatment, a family doctor", "person", "illness_cared_for", `{"treatment": "under_treatment", "family_doctor": true}`, Met},
		{"treated, a family doctor", "person", "illness_cared_for", `{"treatment": "treated", "family_doctor": true}`, Met},
		{"treated, no family doctor", "person", "illness_cared_for", `{"treatment": "treated", "family_doctor": false}`, NotMet},
		{"untreated, a family doctor", "person", "illness_cared_for", `{"treatment": "none", "family_doctor": true}`, NotMet},
		{"treated, doctor unrecorded", "person", "illness_cared_for", `{"treatment": "treated"}`, NotEvaluable},

		{"grade A", "housing_inspection", "house_safe", `{"grade": "A"}`, Met},
		{"grade B", "housing_inspection", "house_safe", `{"grade": "B"}`, Met},
		{"grade C, renovation completed only", "housing_inspection", "house_safe", `{"grade": "C", "renovation": "completed"}`, NotMet},
		{"grade C, renovation verified", "housing_inspection", "house_safe", `{"grade": "C", "renovation": "verified"}`, Met},
		{"grade D, no renovation", "housing_inspection", "house_safe", `{"grade": "D", "renovation": "none"}`, NotMet},
		{"grade D, renovation unrecorded", "housing_inspection", "house_safe", `{"grade": "D"}`, NotEvaluable},

		{"food assured", "household", "food_assured", `{"food_assured": true}`, Met},
		{"food not assured", "household", "food_assured", `{"food_assured": false}`, NotMet},
		{"food unrecorded", "household", "food_assured", `{}`, NotEvaluable},
		{"clothing assured", "household", "clothing_assured", `{"clothing_assured": true}`, Met},
		{"clothing not assured", "household", "clothing_assured", `{"clothing_assured": false}`, NotMet},

		{"income 7300 in 2026 (line 7300)", "household", "income_above_line", `{"income_per_person": 7300}`, Met},
		{"income 7299 in 2026", "household", "income_above_line", `{"income_per_person": 7299}`, NotMet},
	} {
		t.Run(c.name, func(t *testing.T) {
			j, err := v3.Form(c.entity).Judge(c.rule, Facts{Fields: fieldsOf(t, c.fields), Region: region, Now: day("2026-12-01")})
			if err != nil || j.Verdict != c.want {
				t.Fatalf("%s: %+v %v, want %s", c.rule, j, err, c.want)
			}
		})
	}
}

// The age is counted to the judgement's as-of date, and the judgement
// names the standards (school ages; the income line by its edition in
// effect on that date).
func TestV3AgeAndIncomeAsOf(t *testing.T) {
	v3 := BuiltIn().Version(3)
	person := v3.Form("person")
	born2020 := fieldsOf(t, `{"birth_year": 2020}`)
	for _, c := range []struct {
		asOf string
		want Verdict
	}{{"2025-12-31", NotMet}, {"2026-01-01", Met}, {"2035-12-31", Met}, {"2036-01-01", NotMet}} {
		j, _ := person.Judge("of_school_age", Facts{Fields: born2020, Now: day("2026-12-01"), AsOf: day(c.asOf)})
		if j.Verdict != c.want {
			t.Errorf("born 2020 as of %s: %s, want %s", c.asOf, j.Verdict, c.want)
		}
		if names := []string{j.Standards[0].Name, j.Standards[1].Name}; !slices.Equal(names, []string{"school_age_max", "school_age_min"}) || j.Standards[1].Value != 6 {
			t.Errorf("standards %+v", j.Standards)
		}
	}
	household := v3.Form("household")
	for _, c := range []struct {
		asOf    string
		income  string
		want    Verdict
		edition string
	}{
		{"2022-06-30", `6600`, Met, "2022"},
		{"2022-06-30", `6599`, NotMet, "2022"},
		{"2023-01-01", `6600`, NotMet, "2023"},
		{"2023-01-01", `6900`, Met, "2023"},
		{"2021-03-01", `6000`, Met, "2021"},
	} {
		j, _ := household.Judge("income_above_line", Facts{Fields: fieldsOf(t, `{"income_per_person": `+c.income+`}`),
			Region: "500240107201", Now: day("2026-12-01"), AsOf: day(c.asOf)})
		if j.Verdict != c.want || len(j.Standards) != 1 || j.Standards[0].Version != c.edition {
			t.Errorf("income %s as of %s: %+v, want %s by edition %s", c.income, c.asOf, j, c.want, c.edition)
		}
	}
	j, _ := household.Judge("income_above_line", Facts{Fields: fieldsOf(t, `{"income_per_person": 9000}`), AsOf: day("2020-12-31"), Now: day("2026-12-01")})
	if j.Verdict != NotEvaluable {
		t.Errorf("before the first edition: %s, want not evaluable", j.Verdict)
	}
}

// The requirements of version 3: a reason with an exemption, the identity
// number's check digit, a birth year not in the future, how food and
// clothing were checked, the income's year.
func TestV3Requirements(t *testing.T) {
	v3 := BuiltIn().Version(3)
	now := day("2026-12-01")
	for _, c := range []struct {
		name, entity, fields, rule string // rule "": passes
	}{
		{"exempt without a reason", "person", `{"schooling": "exempt"}`, "exempt_reason_when_exempt"},
		{"exempt with a reason", "person", `{"schooling": "exempt", "exempt_reason": "illness"}`, ""},
		{"dropped out without a reason", "person", `{"schooling": "dropped_out"}`, ""},
		{"a valid identity number", "person", `{"id_card": "11010519491231002X"}`, ""},
		{"a valid identity number, lower-case x", "person", `{"id_card": "11010519491231002x"}`, ""},
		{"a wrong check digit", "person", `{"id_card": "110105194912310021"}`, "id_card_check_digit"},
		{"17 characters", "person", `{"id_card": "11010519491231002"}`, "id_card_check_digit"},
		{"a letter inside", "person", `{"id_card": "1101051949A231002X"}`, "id_card_check_digit"},
		{"born this year", "person", `{"birth_year": 2026}`, ""},
		{"born next year", "person", `{"birth_year": 2027}`, "birth_year_plausible"},
		{"food answered, check unrecorded", "household", `{"food_assured": true}`, "food_clothing_checked_with_answer"},
		{"clothing answered, checked", "household", `{"clothing_assured": false, "food_clothing_checked": "home_visit"}`, ""},
		{"income without its year", "household", `{"income_per_person": 8000}`, "income_year_with_income"},
		{"income with its year", "household", `{"income_per_person": 8000, "income_year": 2025}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			errs := v3.Form(c.entity).CheckRules(Facts{Fields: fieldsOf(t, c.fields), Now: now}, nil)
			var rules []string
			for _, e := range errs {
				rules = append(rules, e.Rule)
			}
			if c.rule == "" && len(rules) > 0 || c.rule != "" && !slices.Equal(rules, []string{c.rule}) {
				t.Fatalf("failing %v, want %q", rules, c.rule)
			}
		})
	}
	for _, id := range []string{"11010519491231002X", "500240201001010018", "15042219900307451X"} {
		if !ValidGB11643(id) {
			t.Errorf("%s: valid, judged invalid", id)
		}
	}
}

// An age comparison and a format check are checked when the form loads.
func TestAgeAndFormatConditionErrors(t *testing.T) {
	for _, c := range []struct{ cond, want string }{
		{`{"age_from": "note", "op": ">=", "value": 6}`, "rules[0].check.age_from: note is a text field"},
		{`{"age_from": "born", "op": ">=", "value": 6, "other": "born"}`, "an age compares with op and one of value, standard"},
		{`{"age_from": "born", "op": "=>", "value": 6}`, `unknown operator "=>"`},
		{`{"age_from": "born", "op": ">="}`, "exactly one of value, standard"},
		{`{"field": "note", "format": "iban"}`, `rules[0].check.format: unknown format "iban"`},
		{`{"field": "born", "format": "gb11643"}`, "born is a integer field: a format is checked on text fields"},
	} {
		form := `{"entity":"household","title":"H","scope_field":"village","fields":[
			{"name":"village","type":"division_code","required":true,"policy":"manual"},
			{"name":"note","type":"text","policy":"lww"},{"name":"born","type":"integer","policy":"lww"}],
			"rules":[{"name":"r","description":{"zh":"r","en":"r"},"source":"s","check":` + c.cond + `}]}`
		_, err := Parse([]byte(`{"schema_version":1,"forms":[` + form + `]}`))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.cond, err, c.want)
		}
	}
}

// v2 → v3: a household's category becomes the one-element set categories
// and category goes; back down, a one-element set is category again and a
// set of two cannot be said in version 2.
func TestV3CategoriesMigration(t *testing.T) {
	c := BuiltIn()
	up, dropped, err := c.Up(2, "household", fieldsOf(t, `{"village": "500240107201", "head_name": "x", "category": "extreme_poverty"}`), true)
	if err != nil || string(up["categories"]) != `["extreme_poverty"]` || up["category"] != nil || !slices.Equal(dropped, []string{"category"}) {
		t.Fatalf("Up: %s %v %v", up, dropped, err)
	}
	up, _, _ = c.Up(2, "household", fieldsOf(t, `{"category": null}`), false)
	if string(up["categories"]) != "null" {
		t.Fatalf("a null category: %s", up)
	}
	down, lost := c.Down(2, "household", fieldsOf(t, `{"village": "500240107201", "categories": ["subsistence_allowance"]}`))
	if string(down["category"]) != `"subsistence_allowance"` || down["categories"] != nil || len(lost) != 0 {
		t.Fatalf("Down of one group: %s lost %v", down, lost)
	}
	down, lost = c.Down(2, "household", fieldsOf(t, `{"village": "500240107201", "categories": ["disabled_poor", "registered_poor"]}`))
	if down["category"] != nil || down["categories"] != nil || !slices.Equal(lost, []string{"categories"}) {
		t.Fatalf("Down of two groups: %s lost %v", down, lost)
	}
	down, lost = c.Down(2, "household", fieldsOf(t, `{"village": "500240107201"}`))
	if down["category"] != nil || len(lost) != 0 {
		t.Fatalf("Down of no groups: %s lost %v", down, lost)
	}
}
