package schema

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// The built-in version 3 declares the seven departments and the six
// registry sources, each with its department, level, key and the
// demo's own columns with their Chinese aliases.
func TestBuiltInRegistries(t *testing.T) {
	reg := BuiltIn().Version(3).Registries()
	if reg == nil {
		t.Fatal("version 3 declares no registries")
	}
	var depts []string
	for _, d := range reg.Departments {
		depts = append(depts, d.Name)
	}
	want := []string{"poverty_alleviation", "housing", "water", "education", "health_insurance", "civil_affairs", "disabled_persons_federation"}
	if !slices.Equal(depts, want) {
		t.Errorf("departments = %v, want %v", depts, want)
	}
	if got := reg.SourceNames(); !slices.Equal(got, []string{"poverty_registry", "subsistence_allowance", "extreme_poverty", "disability", "school_enrolment", "medical_insurance"}) {
		t.Errorf("sources = %v", got)
	}
	pr := reg.Source("poverty_registry")
	m := pr.DefaultMapping()
	for header, field := range map[string]string{"registration_no": "registration_no", "户编号": "registration_no", "建档立卡编号": "registration_no",
		"行政区划代码": "village", "村": "village", "户主姓名": "head_name", "家庭人口": "members", "人数": "members",
		"户类型": "category", "监测对象类别": "category", " \ufeffCategory： ": "category"} {
		if m[NormalizeHeader(header)] != field {
			t.Errorf("header %q maps to %q, want %q", header, m[NormalizeHeader(header)], field)
		}
	}
	if s := reg.Source("school_enrolment"); s.Level != LevelPerson || s.Department != "education" || s.Key != "id_card" {
		t.Errorf("school_enrolment = %+v", s)
	}
	// The document a server publishes carries them: a version read back
	// from the store has them too.
	sch, _, err := ParseDocument(BuiltIn().Document(3))
	if err != nil {
		t.Fatal(err)
	}
	if got := sch.Registries().SourceNames(); len(got) != 6 {
		t.Errorf("the document's sources = %v", got)
	}
}

// registriesSet is the built-in version 3 as a set of its own directory
// with the two files replaced (an empty string removes a file).
func registriesSet(tb testing.TB, departments, registries string) fs.FS {
	tb.Helper()
	root := os.DirFS("forms")
	out := fstest.MapFS{}
	for n := 1; n <= 3; n++ {
		names, _ := fs.Glob(root, strconv.Itoa(n)+"/*.json")
		for _, p := range names {
			b, err := fs.ReadFile(root, p)
			if err != nil {
				tb.Fatal(err)
			}
			out["set/"+p] = &fstest.MapFile{Data: b}
		}
	}
	for name, doc := range map[string]string{DepartmentsFile: departments, RegistriesFile: registries} {
		if doc == "" {
			delete(out, "set/3/"+name)
		} else {
			out["set/3/"+name] = &fstest.MapFile{Data: []byte(doc)}
		}
	}
	return out
}

// Every problem of departments.json and registries.json at once, each with
// its file and JSON path.
func TestRegistriesLoadErrors(t *testing.T) {
	departments := `{"departments": [
	  {"name": "education", "labels": {"zh": "教育局", "en": "Education"}},
	  {"name": "education", "labels": {"zh": "教育局"}},
	  {"name": "Civil Affairs", "labels": {"zh": "民政局", "en": "Civil affairs"}}]}`
	registries := `{"sources": [
	  {"name": "school", "department": "schools", "level": "pupil", "key": "id",
	   "labels": {"zh": "学籍", "en": "School"},
	   "fields": [
	     {"name": "village", "labels": {"zh": "村", "en": "Village"}, "type": "text", "required": true},
	     {"name": "grade", "labels": {"zh": "年级", "en": "Grade"}, "type": "float"}]},
	  {"name": "insured", "department": "education", "level": "person", "key": "id_card",
	   "labels": {"zh": "参保", "en": "Insured"},
	   "fields": [
	     {"name": "id_card", "labels": {"zh": "身份证号", "en": "ID"}, "type": "text", "required": true, "states": "idcard"},
	     {"name": "village", "labels": {"zh": "村", "en": "Village"}, "type": "division_code", "required": true, "aliases": ["ID_Card"]},
	     {"name": "state", "labels": {"zh": "状态", "en": "State"}, "type": "enum", "values": ["yes"], "value_aliases": {"是": "yes", "否": "no"}}]}]}`
	_, err := LoadCatalog(registriesSet(t, departments, registries), "set")
	var errs SetErrors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		`3/departments.json: departments[1].name: department "education" is declared in departments[0] already`,
		`3/departments.json: departments[1].labels.en: needs a label in en`,
		`3/departments.json: departments[2].name: a department's name is a code of lower-case letters, digits and underscores, not "Civil Affairs"`,
		`3/registries.json: sources[0].department: unknown department "schools" (departments.json declares them)`,
		`3/registries.json: sources[0].level: must be "household" or "person", not "pupil"`,
		`3/registries.json: sources[0].fields[1].type: unknown type "float" (one of [text integer boolean division_code date enum])`,
		`3/registries.json: sources[0].fields: source "school" needs a required field "village" of type division_code: it places a row in its region`,
		`3/registries.json: sources[0].key: unknown field "id"`,
		`3/registries.json: sources[1].fields[0].states: unknown field "idcard" of the form "person"`,
		`3/registries.json: sources[1].fields[2].value_aliases.否: "no" is not one of the field's values [yes]`,
		`3/registries.json: sources[1].fields[1].aliases[0]: header "ID_Card" maps to "id_card" already`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Sources without the departments' file.
	if _, err := LoadCatalog(registriesSet(t, "", registries), "set"); err == nil || !strings.Contains(err.Error(), "3/registries.json: $: the sources' departments are declared in departments.json, which the version lacks") {
		t.Errorf("without departments.json: %v", err)
	}
	// Neither file: a version without registries.
	c, err := LoadCatalog(registriesSet(t, "", ""), "set")
	if err != nil || c.Latest().Registries() != nil {
		t.Errorf("without both files: %v, %v", err, c)
	}
}
