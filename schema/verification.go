package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
)

// VerificationFile is the file of a version directory that declares how a
// household is verified: the guarantees, and for each its criteria — which
// form's records, which of them, how fresh, judged by which criterion
// rules (docs/forms.md, "Verification").
const VerificationFile = "verification.json"

// The guarantees a verification declares, each exactly once: the two
// assurances (food, clothing) and the three guarantees (compulsory
// education, basic medical care, safe housing), with safe drinking water,
// which the national exit criteria count with housing, as its own.
// They are the columns of the verification report.
var GuaranteeNames = []string{"food", "clothing", "education", "medical", "housing", "water"}

// Verification is what a version's VerificationFile declares: the source
// of the criteria and the guarantees, in GuaranteeNames' order or any
// other (the report keeps the file's order).
type Verification struct {
	Source     string      `json:"source"`
	Guarantees []Guarantee `json:"guarantees"`
}

// Guarantee is one of the six guarantees: its name (one of
// GuaranteeNames), labels in zh and en, and its criteria, all of which
// must be met.
type Guarantee struct {
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels"`
	Criteria []Criterion       `json:"criteria"`
}

// Criterion is one criterion of a guarantee: the records of Form it reads
// and the criterion rules (Rule, or all of Rules) they must meet.
//
//   - On the household's own form (the form playing RoleHousehold) the
//     household record is judged.
//   - On a child form (its parent is the household), Each judges every
//     record of the household (those that the criterion rule Where meets,
//     when given), and Latest the household's latest record by the form's
//     role date; exactly one of them.
//   - MaxAgeMonths (with Latest only) names the standard of the months
//     after which the latest record is stale evidence.
type Criterion struct {
	Name         string            `json:"name"`
	Labels       map[string]string `json:"labels,omitempty"`
	Form         string            `json:"form"`
	Each         bool              `json:"each,omitempty"`
	Where        string            `json:"where,omitempty"`
	Latest       bool              `json:"latest,omitempty"`
	MaxAgeMonths *StandardRef      `json:"max_age_months,omitempty"`
	Rule         string            `json:"rule,omitempty"`
	Rules        []string          `json:"rules,omitempty"`
}

// StandardRef names a standard of the version's StandardsFile.
type StandardRef struct {
	Standard string `json:"standard"`
}

// RuleNames returns the criterion rules the criterion's records must all
// meet: Rule, or Rules.
func (c *Criterion) RuleNames() []string {
	if c.Rule != "" {
		return []string{c.Rule}
	}
	return c.Rules
}

// Verification returns the version's verification, or nil when its
// directory has no VerificationFile.
func (s *Schema) Verification() *Verification { return s.verification }

// loadVerification reads the version directory's VerificationFile, if it
// has one, and checks it against the version's forms and standards (sch
// may be nil when the forms did not load: only the file's own shape is
// checked then).
func loadVerification(fsys fs.FS, vdir string, rel func(string) string, sch *Schema) (*Verification, SetErrors) {
	name := path.Join(vdir, VerificationFile)
	b, err := fs.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, SetErrors{{File: rel(name), Path: "$", Message: errText(err)}}
	}
	var v Verification
	if p, msg := strictDecode(b, &v); msg != "" {
		return nil, SetErrors{{File: rel(name), Path: p, Message: msg}}
	}
	errs := v.check(sch)
	for i := range errs {
		errs[i].File = rel(name)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &v, nil
}

// check returns every problem of the verification at once, each with its
// JSON path: a missing source or label, a guarantee that is unknown,
// repeated or missing, a criterion without a name (or with one used
// before), an unknown form or one that is neither the household's nor its
// child, an unknown rule or one that is no criterion, each/latest/where
// out of place, and an unknown standard. With sch nil the references to
// forms and standards are not checked.
func (v *Verification) check(sch *Schema) SetErrors {
	var errs SetErrors
	bad := func(p, format string, a ...any) {
		errs = append(errs, SetError{Path: p, Message: fmt.Sprintf(format, a...)})
	}
	if v.Source == "" {
		bad("source", "names the document the criteria implement")
	}
	if len(v.Guarantees) == 0 {
		bad("guarantees", "declares the guarantees %v", GuaranteeNames)
	}
	var household *Form
	if sch != nil {
		household = sch.Playing(RoleHousehold)
		if household == nil {
			bad("$", "a verification needs a form playing the role %s", RoleHousehold)
		}
	}
	seen := map[string]string{}
	criteria := map[string]string{}
	for gi, g := range v.Guarantees {
		gp := fmt.Sprintf("guarantees[%d]", gi)
		switch {
		case !slices.Contains(GuaranteeNames, g.Name):
			bad(gp+".name", "unknown guarantee %q (one of %v)", g.Name, GuaranteeNames)
		case seen[g.Name] != "":
			bad(gp+".name", "guarantee %q is declared in %s already", g.Name, seen[g.Name])
		default:
			seen[g.Name] = gp
		}
		for _, lang := range []string{LangZH, LangEN} {
			if g.Labels[lang] == "" {
				bad(gp+".labels."+lang, "guarantee %q needs a label in %s", g.Name, lang)
			}
		}
		if len(g.Criteria) == 0 {
			bad(gp+".criteria", "guarantee %q has no criterion", g.Name)
		}
		for ci := range g.Criteria {
			c := &g.Criteria[ci]
			cp := fmt.Sprintf("%s.criteria[%d]", gp, ci)
			switch {
			case c.Name == "":
				bad(cp+".name", "a criterion needs a name")
			case criteria[c.Name] != "":
				bad(cp+".name", "%q is also the name of %s", c.Name, criteria[c.Name])
			default:
				criteria[c.Name] = cp
			}
			errs = append(errs, c.check(cp, sch, household)...)
		}
	}
	for _, name := range GuaranteeNames {
		if seen[name] == "" && len(v.Guarantees) > 0 {
			bad("guarantees", "guarantee %q is missing: a household is verified by all of %v", name, GuaranteeNames)
		}
	}
	return errs
}

// check is one criterion's part of Verification.check, at path cp.
func (c *Criterion) check(cp string, sch *Schema, household *Form) SetErrors {
	var errs SetErrors
	bad := func(p, format string, a ...any) {
		errs = append(errs, SetError{Path: cp + p, Message: fmt.Sprintf(format, a...)})
	}
	if (c.Rule == "") == (len(c.Rules) == 0) {
		bad("", "criterion %q names its criterion rules by exactly one of rule and rules", c.Name)
	}
	if c.Where != "" && !c.Each {
		bad(".where", "where selects the records of an each criterion")
	}
	if c.MaxAgeMonths != nil && !c.Latest {
		bad(".max_age_months", "max_age_months bounds the age of the latest record: only with latest")
	}
	if sch == nil || household == nil {
		return errs
	}
	f := sch.Form(c.Form)
	switch {
	case c.Form == "":
		bad(".form", "criterion %q names the form whose records it judges", c.Name)
		return errs
	case f == nil:
		bad(".form", "unknown form %q", c.Form)
		return errs
	case f == household:
		if c.Each || c.Latest {
			bad(".form", "the household's own form %q is judged on the household record: no each or latest", c.Form)
		}
	case f.Parent == nil || f.Parent.Entity != household.Entity:
		bad(".form", "form %q is no child of the household form %q", c.Form, household.Entity)
	case c.Each == c.Latest:
		bad(".form", "criterion %q on the child form %q judges each record or the latest: exactly one of each and latest", c.Name, c.Form)
	case c.Latest && c.MaxAgeMonths != nil && f.RoleField("date") == "":
		bad(".max_age_months", "form %q declares no date by its role: the age of its records is unknown", c.Form)
	}
	criterion := func(p, name string) {
		r := f.Rule(name)
		switch {
		case r == nil:
			bad(p, "unknown rule %q of %s", name, f.Entity)
		case r.Kind() != KindCriterion:
			bad(p, "rule %q of %s is a requirement: a verification judges criterion rules (any_of)", name, f.Entity)
		}
	}
	if c.Rule != "" {
		criterion(".rule", c.Rule)
	}
	for i, name := range c.Rules {
		criterion(fmt.Sprintf(".rules[%d]", i), name)
	}
	if c.Where != "" {
		criterion(".where", c.Where)
	}
	if c.MaxAgeMonths != nil {
		if st := sch.Standards.Standard(c.MaxAgeMonths.Standard); st == nil {
			bad(".max_age_months.standard", "unknown standard %q (the version's %s)", c.MaxAgeMonths.Standard, StandardsFile)
		}
	}
	return errs
}
