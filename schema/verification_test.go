package schema

import (
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// verificationSet is the verification's test form set (schema/verify's
// testdata) with verification.json replaced.
func verificationSet(tb testing.TB, verification string) fs.FS {
	tb.Helper()
	root := os.DirFS("verify/testdata")
	out := fstest.MapFS{}
	err := fs.WalkDir(root, "set", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		out[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	out["set/1/"+VerificationFile] = &fstest.MapFile{Data: []byte(verification)}
	return out
}

func TestVerificationLoadsWithItsVersion(t *testing.T) {
	c, err := LoadCatalog(os.DirFS("verify/testdata"), "set")
	if err != nil {
		t.Fatal(err)
	}
	v := c.Latest().Verification()
	if v == nil || len(v.Guarantees) != 6 || v.Guarantees[4].Criteria[0].Form != "housing_inspection" {
		t.Fatalf("verification = %+v", v)
	}
	// The published document carries it, and reads back.
	sch, _, err := ParseDocument(c.Document(1))
	if err != nil {
		t.Fatal(err)
	}
	if sch.Verification() == nil || sch.Verification().Guarantees[2].Criteria[0].Where != "of_school_age" {
		t.Fatalf("verification of the document = %+v", sch.Verification())
	}
	if BuiltIn().Version(1).Verification() != nil || BuiltIn().Version(2).Verification() != nil {
		t.Fatal("versions 1 and 2 declare no verification")
	}
}

func TestVerificationErrorsNameFileAndPath(t *testing.T) {
	const bad = `{"source": "test",
 "guarantees": [
  {"name": "food", "labels": {"zh": "不愁吃", "en": "Food"}, "criteria": [
    {"name": "food_assured", "form": "household", "rule": "food_assurd"},
    {"name": "income", "form": "household", "rule": "income_above_line", "each": true}]},
  {"name": "clothes", "labels": {"zh": "不愁穿", "en": "Clothing"}, "criteria": [
    {"name": "clothing_assured", "form": "household", "rule": "clothing_assured"}]},
  {"name": "education", "labels": {"zh": "义务教育有保障"}, "criteria": [
    {"name": "children_in_school", "form": "pupil", "each": true, "where": "of_school_age", "rule": "in_compulsory_education"}]},
  {"name": "medical", "labels": {"zh": "基本医疗有保障", "en": "Medical"}, "criteria": [
    {"name": "insured", "form": "person", "rule": "medical_insured"},
    {"name": "insured", "form": "person", "each": true, "where": "exempt_reason_when_exempt", "rule": "ill"}]},
  {"name": "housing", "labels": {"zh": "住房安全有保障", "en": "Housing"}, "criteria": [
    {"name": "house_safe", "form": "housing_inspection", "latest": true,
     "max_age_months": {"standard": "evidence_age_months_house"}, "rule": "house_safe"}]},
  {"name": "housing", "labels": {"zh": "饮水", "en": "Water"}, "criteria": [
    {"name": "water_safe", "form": "water_inspection", "latest": true, "rules": []}]}
 ]}`
	_, err := LoadCatalog(verificationSet(t, bad), "set")
	if err == nil {
		t.Fatal("a bad verification loaded")
	}
	got := err.Error()
	for _, want := range []string{
		`1/verification.json: guarantees[0].criteria[0].rule: unknown rule "food_assurd" of household`,
		`1/verification.json: guarantees[0].criteria[1].form: the household's own form "household" is judged on the household record`,
		`1/verification.json: guarantees[1].name: unknown guarantee "clothes"`,
		`1/verification.json: guarantees[2].labels.en: guarantee "education" needs a label in en`,
		`1/verification.json: guarantees[2].criteria[0].form: unknown form "pupil"`,
		`1/verification.json: guarantees[3].criteria[0].form: criterion "insured" on the child form "person" judges each record or the latest`,
		`1/verification.json: guarantees[3].criteria[1].name: "insured" is also the name of guarantees[3].criteria[0]`,
		`1/verification.json: guarantees[3].criteria[1].where: unknown rule "exempt_reason_when_exempt" of person`,
		`1/verification.json: guarantees[4].criteria[0].max_age_months.standard: unknown standard "evidence_age_months_house"`,
		`1/verification.json: guarantees[5].name: guarantee "housing" is declared in guarantees[4] already`,
		`1/verification.json: guarantees[5].criteria[0]: criterion "water_safe" names its criterion rules by exactly one of rule and rules`,
		`1/verification.json: guarantees: guarantee "clothing" is missing`,
		`1/verification.json: guarantees: guarantee "water" is missing`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	// An unknown member is named by its path.
	good, _ := fs.ReadFile(os.DirFS("verify/testdata"), "set/1/verification.json")
	unknown := strings.Replace(string(good), `"latest": true,`, `"latest": true, "fresh": 1,`, 1)
	if _, err := LoadCatalog(verificationSet(t, unknown), "set"); err == nil || !strings.Contains(err.Error(), `1/verification.json: guarantees[4].criteria[0].fresh: unknown member "fresh"`) {
		t.Errorf("unknown member: %v", err)
	}
}
