package schema

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// probeValues are values each field of the probe form may hold in a
// generated record.
var probeValues = map[string][]string{
	"source": {`"piped"`, `"well"`, `"cistern"`},
	"note":   {`"yard"`, `"gate"`},
	"ok":     {`true`, `false`},
	"a":      {`0`, `5`, `20`, `20.5`, `800`},
	"b":      {`0`, `5`, `20`, `81`},
	"day":    {`"2019-12-31"`, `"2020-01-01"`, `"2026-11-20"`, `"2026-11-22"`},
	"later":  {`"2020-01-01"`, `"2026-11-21"`},
	"tags":   {`["x"]`, `["x","y"]`},
}

var probeFieldNames = []string{"a", "b", "day", "later", "note", "ok", "source", "tags"}

// genCondition draws a valid condition over the probe form, as JSON.
func genCondition(t *rapid.T, depth int) string {
	kinds := []string{"present", "absent", "equals", "one_of", "cmp_value", "cmp_other", "cmp_today"}
	if depth > 0 {
		kinds = append(kinds, "all_of", "any_of", "not")
	}
	pick := func(label string, from []string) string { return rapid.SampledFrom(from).Draw(t, label) }
	op := func() string { return pick("op", []string{"<", "<=", ">", ">="}) }
	switch pick("kind", kinds) {
	case "present":
		return fmt.Sprintf(`{"present": %q}`, pick("field", probeFieldNames))
	case "absent":
		return fmt.Sprintf(`{"absent": %q}`, pick("field", probeFieldNames))
	case "equals":
		f := pick("field", []string{"source", "note", "ok", "a", "b", "day"})
		return fmt.Sprintf(`{"field": %q, "equals": %s}`, f, pick("value", probeValues[f]))
	case "one_of":
		f := pick("field", []string{"source", "a", "day"})
		vals := rapid.SliceOfNDistinct(rapid.SampledFrom(probeValues[f]), 1, 3, rapid.ID[string]).Draw(t, "values")
		return fmt.Sprintf(`{"field": %q, "one_of": [%s]}`, f, strings.Join(vals, ","))
	case "cmp_value":
		f := pick("field", []string{"a", "b", "day", "later"})
		return fmt.Sprintf(`{"field": %q, "op": %q, "value": %s}`, f, op(), pick("value", probeValues[f]))
	case "cmp_other":
		pair := pick("pair", []string{"a b", "b a", "day later", "later day"})
		l, r, _ := strings.Cut(pair, " ")
		return fmt.Sprintf(`{"field": %q, "op": %q, "other": %q}`, l, op(), r)
	case "cmp_today":
		f := pick("field", []string{"day", "later"})
		return fmt.Sprintf(`{"field": %q, "op": %q, "today_plus_days": %d}`, f, op(), rapid.IntRange(-3, 3).Draw(t, "days"))
	case "not":
		return `{"not": ` + genCondition(t, depth-1) + `}`
	}
	group := pick("group", []string{"all_of", "any_of"})
	n := rapid.IntRange(1, 3).Draw(t, "n")
	subs := make([]string, n)
	for i := range subs {
		subs[i] = genCondition(t, depth-1)
	}
	return fmt.Sprintf(`{%q: [%s]}`, group, strings.Join(subs, ","))
}

// genRecord draws a record of the probe form: each field absent, null or
// one of its values.
func genRecord(t *rapid.T, label string) map[string]string {
	rec := map[string]string{}
	for _, f := range probeFieldNames {
		switch rapid.IntRange(0, 3).Draw(t, label+" "+f) {
		case 0:
		case 1:
			rec[f] = "null"
		default:
			rec[f] = rapid.SampledFrom(probeValues[f]).Draw(t, label+" "+f+" value")
		}
	}
	return rec
}

// asFacts writes rec as one JSON object with its members in the given
// order, and decodes it as a tablet's change would be.
func asFacts(rec map[string]string, order []string) Facts {
	var b strings.Builder
	b.WriteString("{")
	first := true
	for _, f := range order {
		if v, ok := rec[f]; ok {
			if !first {
				b.WriteString(",")
			}
			first = false
			fmt.Fprintf(&b, "%q:%s", f, v)
		}
	}
	b.WriteString("}")
	return facts(b.String())
}

// A rule's verdict (as a criterion, and as a check) does not depend on the
// order of the record's fields, nor on the values of fields it does not
// name.
func TestRuleVerdictIgnoresOrderAndUnnamedFields(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCondition(t, 3)
		desc := `"description": {"zh": "z", "en": "e"}, "source": "s"`
		s, err := Load(probeForms(`[{"name": "criterion", `+desc+`, "any_of": [`+c+`]},
			{"name": "check", `+desc+`, "check": `+c+`}]`), "forms")
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		form := s.Form("probe")
		named := map[string]bool{}
		for _, f := range form.Rule("criterion").fields {
			named[f] = true
		}
		rec := genRecord(t, "record")
		order := rapid.Permutation(probeFieldNames).Draw(t, "order")
		other := genRecord(t, "unnamed")
		for f := range named {
			delete(other, f)
			if v, ok := rec[f]; ok {
				other[f] = v
			}
		}
		otherOrder := rapid.Permutation(probeFieldNames).Draw(t, "other order")

		base, err := form.Judge("criterion", asFacts(rec, probeFieldNames))
		if err != nil {
			t.Fatal(err)
		}
		baseErrs := form.CheckRules(asFacts(rec, probeFieldNames), nil)
		for _, variant := range []Facts{asFacts(rec, order), asFacts(other, otherOrder)} {
			j, _ := form.Judge("criterion", variant)
			if !reflect.DeepEqual(j, base) {
				t.Fatalf("%s\non %v: %+v\non %v: %+v", c, rec, base, variant.Fields, j)
			}
			if errs := form.CheckRules(variant, nil); !reflect.DeepEqual(errs, baseErrs) {
				t.Fatalf("%s\ncheck on %v: %v\non %v: %v", c, rec, baseErrs, variant.Fields, errs)
			}
		}
		if (base.Verdict == NotMet) != (len(baseErrs) == 1) {
			t.Fatalf("%s on %v: criterion %s but check errors %v", c, rec, base.Verdict, baseErrs)
		}
	})
}
