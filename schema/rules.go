package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Rule is a named rule of a form, declared in its form file under "rules"
// (docs/forms.md). It is one of:
//
//   - a criterion, AnyOf: met when one of its conditions holds; judged by
//     Judge for the reports, never enforced on a push;
//   - a conditional requirement, Require with When or Unless: the fields
//     must be present when When holds, or unless Unless holds;
//   - a cross-field check, Check: the condition must not fail (a check
//     whose fields are absent does not fail);
//   - a date range, DateRange: a date field's value lies within absolute
//     and today-relative bounds.
//
// The last three are requirements: a change that leaves its record failing
// one is rejected with the rule's name (CheckRules).
type Rule struct {
	Name string `json:"name"`
	// Description says what the rule asks, by language ("zh", "en"); the
	// English one is the message of a failing requirement.
	Description map[string]string `json:"description"`
	// Source names the standard or document the rule implements.
	Source string `json:"source"`

	AnyOf     []Condition `json:"any_of,omitempty"`
	Require   []string    `json:"require,omitempty"`
	When      *Condition  `json:"when,omitempty"`
	Unless    *Condition  `json:"unless,omitempty"`
	Check     *Condition  `json:"check,omitempty"`
	DateRange *DateRange  `json:"date_range,omitempty"`

	fields    []string // the record's own fields the rule reads, sorted
	standards []string // the standards its conditions compare with, sorted
	cond      *cond    // AnyOf, When, Unless or Check compiled; nil for DateRange
}

// DateRange bounds a date field: Min and Max are absolute dates
// (YYYY-MM-DD), MaxDaysAgo and MaxDaysAhead count days before and after
// today (UTC) on the validating server's clock. Each bound is optional;
// at least one is set.
type DateRange struct {
	Field        string `json:"field"`
	Min          string `json:"min,omitempty"`
	Max          string `json:"max,omitempty"`
	MaxDaysAgo   *int   `json:"max_days_ago,omitempty"`
	MaxDaysAhead *int   `json:"max_days_ahead,omitempty"`
}

// Condition is one test on a record, exactly one of: Present or Absent (a
// field holds a value or not); Field with Equals, OneOf, or Op and one of
// Value, Other, TodayPlusDays or Standard (a comparison); AllOf, AnyOf or
// Not. A field
// is named as it is in the form, or as REF.NAME: the field NAME of the
// record that the reference field REF points to.
type Condition struct {
	Present string `json:"present,omitempty"`
	Absent  string `json:"absent,omitempty"`

	Field  string            `json:"field,omitempty"`
	Equals json.RawMessage   `json:"equals,omitempty"`
	OneOf  []json.RawMessage `json:"one_of,omitempty"`
	// Op is a comparison of a number or date field: "<", "<=", ">", ">=".
	Op    string          `json:"op,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
	Other string          `json:"other,omitempty"`
	// TodayPlusDays compares a date field with today (UTC) plus this many
	// days (negative: before today).
	TodayPlusDays *int `json:"today_plus_days,omitempty"`
	// Standard compares a number field with the value of the named
	// standard of the version's StandardsFile for the record's region on
	// the judgement's date (StandardSet.Resolve); the operator must be the
	// standard's direction: ">=" for min, "<=" for max.
	Standard string `json:"standard,omitempty"`
	// Format tests a text field's value against a format: FormatGB11643,
	// an 18-character citizen identity number whose check digit is right.
	Format string `json:"format,omitempty"`

	// AgeFrom compares an age with Op and Value or Standard: the years
	// from the named integer field (a birth year) to the judgement's
	// as-of date (Facts.AsOf, else Now), counted by calendar year.
	AgeFrom string `json:"age_from,omitempty"`

	AllOf []Condition `json:"all_of,omitempty"`
	AnyOf []Condition `json:"any_of,omitempty"`
	Not   *Condition  `json:"not,omitempty"`
}

// FormatGB11643 is the format of a citizen identity number (GB 11643-1999,
// 公民身份号码): 17 digits and a check digit (0-9 or X) computed by ISO
// 7064 MOD 11-2.
const FormatGB11643 = "gb11643"

// ValidGB11643 reports whether s is an 18-character citizen identity
// number whose last character is its check digit (ISO 7064 MOD 11-2); the
// birth date in it is not checked.
func ValidGB11643(s string) bool {
	if len(s) != 18 {
		return false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		d := s[i]
		if d < '0' || d > '9' {
			return false
		}
		// The weight of position i is 2^(17-i) mod 11.
		w := 1
		for k := 0; k < 17-i; k++ {
			w = w * 2 % 11
		}
		sum += int(d-'0') * w
	}
	check := "10X98765432"[sum%11]
	last := s[17]
	if last == 'x' {
		last = 'X'
	}
	return last == check
}

// Kind says whether a rule is enforced or judged.
type Kind string

// The kinds of rules.
const (
	KindRequirement Kind = "requirement" // enforced: a change failing it is rejected
	KindCriterion   Kind = "criterion"   // judged for reports, not enforced
)

// Kind returns whether the rule is a criterion or a requirement.
func (r *Rule) Kind() Kind {
	if len(r.AnyOf) > 0 {
		return KindCriterion
	}
	return KindRequirement
}

// Message is the rule's description in English, or a sentence naming the
// rule when it has none.
func (r *Rule) Message() string {
	if d := r.Description[LangEN]; d != "" {
		return d
	}
	return "fails rule " + r.Name
}

// Rule returns the named rule of the form, or nil.
func (f *Form) Rule(name string) *Rule {
	for i := range f.Rules {
		if f.Rules[i].Name == name {
			return &f.Rules[i]
		}
	}
	return nil
}

// Verdict is the outcome of judging a criterion.
type Verdict string

// The verdicts of Judge.
const (
	Met          Verdict = "met"
	NotMet       Verdict = "not_met"
	NotEvaluable Verdict = "not_evaluable" // a field it needs is absent
)

// Facts are what rules are judged on: a record's canonical fields (as
// Validate returns them or the store holds them; null or missing is
// absent), the fields of the records its reference fields point to, by
// reference field (for REF.NAME operands; RuleReferences lists the ones
// needed), and the clock of today-relative dates; for comparisons with a
// standard, the record's region (the household's village code) and the
// date the judgement is made as of (Now when zero).
type Facts struct {
	Fields  map[string]json.RawMessage
	Related map[string]map[string]json.RawMessage
	Now     time.Time
	Region  string
	AsOf    time.Time
}

// asOf is the day a standard is resolved for.
func (f Facts) asOf() time.Time {
	if f.AsOf.IsZero() {
		return f.Now
	}
	return f.AsOf
}

// Judgement is a criterion's verdict and the condition that decided it, as
// a path in the form file ("rules[0].any_of[2]"): for Met the
// condition that holds, for NotEvaluable the first one that could not be
// judged, for NotMet the group ("rules[0].any_of"), since every condition
// failed. Standards lists the standards the criterion compares with, as
// they apply to the facts' region and date, whatever the verdict (a
// standard with no edition in effect is left out).
type Judgement struct {
	Rule      string            `json:"rule"`
	Verdict   Verdict           `json:"verdict"`
	Decided   string            `json:"decided"`
	Standards []AppliedStandard `json:"standards,omitempty"`
}

// Judge judges the named criterion on facts. It returns an error when the
// form has no criterion of that name.
func (f *Form) Judge(name string, facts Facts) (Judgement, error) {
	r := f.Rule(name)
	if r == nil || r.Kind() != KindCriterion {
		return Judgement{}, fmt.Errorf("%s has no criterion %q", f.Entity, name)
	}
	v, at := r.cond.eval(facts)
	j := Judgement{Rule: name, Verdict: v.verdict(), Decided: at}
	for _, s := range r.standards {
		if a, ok := f.standards.Resolve(s, facts.Region, facts.asOf()); ok {
			j.Standards = append(j.Standards, a)
		}
	}
	return j, nil
}

// DecidingField returns the record field of the condition at decided (a
// Judgement's Decided path) of the named rule, or of the first condition
// below it that reads one: the field a verdict is reported by. It returns
// "" for a rule the form lacks.
func (f *Form) DecidingField(rule, decided string) string {
	r := f.Rule(rule)
	if r == nil || r.cond == nil {
		return ""
	}
	return r.cond.fieldAt(decided)
}

// RuleStandards lists the standards the named rule compares with, sorted;
// none for a rule the form lacks.
func (f *Form) RuleStandards(name string) []string {
	if r := f.Rule(name); r != nil {
		return r.standards
	}
	return nil
}

// RuleReferences lists the reference fields whose records the rules read
// (REF.NAME operands), so that a caller can put those records in
// Facts.Related.
func (f *Form) RuleReferences() []string { return f.ruleRefs }

// CheckRules returns an error for every requirement rule the record fails,
// each with the path of a field the rule names ("fields.fetch_minutes"),
// the rule's name and its English description. changed lists the fields a
// change altered: only the rules that read one of them are checked (a rule
// added to a form does not block an unrelated edit of an older record); nil
// checks every rule, as for a new record. Criteria are not checked.
func (f *Form) CheckRules(facts Facts, changed []string) []FieldError {
	var errs []FieldError
	for i := range f.Rules {
		r := &f.Rules[i]
		if r.Kind() != KindRequirement || (changed != nil && !intersects(r.fields, changed)) {
			continue
		}
		fail := func(field string) {
			errs = append(errs, FieldError{Path: "fields." + field, Message: r.Message(), Rule: r.Name})
		}
		switch {
		case r.Require != nil:
			applies := true
			if r.When != nil {
				v, _ := r.cond.eval(facts)
				applies = v == yes
			} else if r.Unless != nil {
				v, _ := r.cond.eval(facts)
				applies = v != yes
			}
			if applies {
				for _, name := range r.Require {
					if _, ok := value(facts.Fields, name); !ok {
						fail(name)
					}
				}
			}
		case r.Check != nil:
			if v, at := r.cond.eval(facts); v == no {
				fail(r.cond.fieldAt(at))
			}
		case r.DateRange != nil:
			d := r.DateRange
			raw, ok := value(facts.Fields, d.Field)
			var s string
			if ok && json.Unmarshal(raw, &s) == nil {
				if lo, hi := d.bounds(facts.Now); (lo != "" && s < lo) || (hi != "" && s > hi) {
					fail(d.Field)
				}
			}
		}
	}
	return errs
}

func intersects(sorted, names []string) bool {
	for _, n := range names {
		if i := sort.SearchStrings(sorted, n); i < len(sorted) && sorted[i] == n {
			return true
		}
	}
	return false
}

// value returns a field's value, absent when missing or null.
func value(fields map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	raw, ok := fields[name]
	if !ok || len(raw) == 0 || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// bounds returns the earliest and latest dates the range allows at now.
func (d *DateRange) bounds(now time.Time) (lo, hi string) {
	lo, hi = d.Min, d.Max
	today := now.UTC()
	if d.MaxDaysAgo != nil {
		if rel := today.AddDate(0, 0, -*d.MaxDaysAgo).Format(time.DateOnly); rel > lo {
			lo = rel
		}
	}
	if d.MaxDaysAhead != nil {
		if rel := today.AddDate(0, 0, *d.MaxDaysAhead).Format(time.DateOnly); hi == "" || rel < hi {
			hi = rel
		}
	}
	return lo, hi
}

// RuleError is one error in a form's rules, with the form file it is in
// (the entity for a schema parsed from GET /v1/schema) and the JSON path in
// that file ("rules[3].any_of[1].field").
type RuleError struct {
	File    string
	Path    string
	Message string
}

func (e *RuleError) Error() string { return e.File + ": " + e.Path + ": " + e.Message }

// tri is a three-valued truth: a condition on an absent field is unknown.
type tri int

const (
	unknown tri = iota
	no
	yes
)

func (t tri) verdict() Verdict {
	switch t {
	case yes:
		return Met
	case no:
		return NotMet
	}
	return NotEvaluable
}

// operand is a field a condition reads: of the record, or through ref of
// the record it points to.
type operand struct {
	ref, name string
	field     *Field
}

func (o operand) get(facts Facts) (json.RawMessage, bool) {
	if o.ref == "" {
		return value(facts.Fields, o.name)
	}
	return value(facts.Related[o.ref], o.name)
}

func (o operand) String() string {
	if o.ref == "" {
		return o.name
	}
	return o.ref + "." + o.name
}

// cond is a compiled Condition.
type cond struct {
	path   string // in the rule: "any_of[1]", "check.all_of[0]"
	kind   string // present, absent, equals, compare, all_of, any_of, not
	left   operand
	values []json.RawMessage // equals / one_of, canonical
	op     string
	right  *operand        // compare with another field
	rvalue json.RawMessage // compare with a constant, canonical
	days   *int            // compare with today plus days
	std    string          // compare with this standard
	stds   *StandardSet    // where std is resolved
	format string          // kind format: the format the value must have
	subs   []*cond
}

// eval judges c on facts and returns the path of the condition that decided.
func (c *cond) eval(facts Facts) (tri, string) {
	switch c.kind {
	case "present", "absent":
		_, ok := c.left.get(facts)
		if ok == (c.kind == "present") {
			return yes, c.path
		}
		return no, c.path
	case "equals":
		raw, ok := c.left.get(facts)
		if !ok {
			return unknown, c.path
		}
		for _, v := range c.values {
			if sameValue(c.left.field, raw, v) {
				return yes, c.path
			}
		}
		return no, c.path
	case "format":
		raw, ok := c.left.get(facts)
		if !ok {
			return unknown, c.path
		}
		var text string
		if json.Unmarshal(raw, &text) != nil || !ValidGB11643(text) {
			return no, c.path
		}
		return yes, c.path
	case "compare", "age":
		raw, ok := c.left.get(facts)
		if !ok {
			return unknown, c.path
		}
		if c.kind == "age" {
			var year int
			if json.Unmarshal(raw, &year) != nil {
				return unknown, c.path
			}
			raw, _ = json.Marshal(facts.asOf().Year() - year)
		}
		var rhs json.RawMessage
		switch {
		case c.right != nil:
			if rhs, ok = c.right.get(facts); !ok {
				return unknown, c.path
			}
		case c.days != nil:
			rhs, _ = json.Marshal(facts.Now.UTC().AddDate(0, 0, *c.days).Format(time.DateOnly))
		case c.std != "":
			a, ok := c.stds.Resolve(c.std, facts.Region, facts.asOf())
			if !ok {
				return unknown, c.path
			}
			rhs, _ = json.Marshal(a.Value)
		default:
			rhs = c.rvalue
		}
		cmp, ok := compare(c.left.field, raw, rhs)
		if !ok {
			return unknown, c.path
		}
		if holds(c.op, cmp) {
			return yes, c.path
		}
		return no, c.path
	case "not":
		v, at := c.subs[0].eval(facts)
		switch v {
		case yes:
			return no, at
		case no:
			return yes, at
		}
		return unknown, at
	case "all_of":
		return c.junction(facts, no, yes, ".all_of")
	case "any_of":
		return c.junction(facts, yes, no, ".any_of")
	}
	return unknown, c.path
}

// junction evaluates an all_of (stop is no) or any_of (stop is yes): the
// first sub-condition that yields stop decides; otherwise the first unknown
// one makes the result unknown, and if there is none the result is
// otherwise, decided at the condition's own path plus suffix.
func (c *cond) junction(facts Facts, stop, otherwise tri, suffix string) (tri, string) {
	res, decided := otherwise, c.path+suffix
	for _, s := range c.subs {
		v, at := s.eval(facts)
		if v == stop {
			return stop, at
		}
		if v == unknown && res == otherwise {
			res, decided = unknown, at
		}
	}
	return res, decided
}

// fieldAt returns the record field of the condition at path, or of the
// first condition below it that reads one: where a failing check is
// reported.
func (c *cond) fieldAt(path string) string {
	path = strings.TrimSuffix(strings.TrimSuffix(path, ".any_of"), ".all_of")
	var found *cond
	var walk func(*cond)
	walk = func(x *cond) {
		if found == nil && x.path == path {
			found = x
		}
		for _, s := range x.subs {
			walk(s)
		}
	}
	walk(c)
	if found == nil {
		found = c
	}
	for found.kind == "all_of" || found.kind == "any_of" || found.kind == "not" {
		found = found.subs[0]
	}
	if found.left.ref == "" {
		return found.left.name
	}
	if found.right != nil && found.right.ref == "" {
		return found.right.name
	}
	return found.left.ref
}

func holds(op string, cmp int) bool {
	switch op {
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	}
	return false
}

func isNumeric(fd *Field) bool { return fd.Type == TypeInteger || fd.Type == TypeNumber }

func sameValue(fd *Field, a, b json.RawMessage) bool {
	if isNumeric(fd) {
		cmp, ok := compare(fd, a, b)
		return ok && cmp == 0
	}
	return string(a) == string(b)
}

// compare orders two values of a number or date field.
func compare(fd *Field, a, b json.RawMessage) (int, bool) {
	if isNumeric(fd) {
		var x, y float64
		if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	}
	var x, y string
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return 0, false
	}
	return strings.Compare(x, y), true
}

// compileRules checks every rule of f against the schema s and compiles
// it, returning every error at once.
func (f *Form) compileRules(s *Schema) []error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, &RuleError{File: f.source(), Path: path, Message: fmt.Sprintf(format, a...)})
	}
	names := map[string]int{}
	for _, rr := range f.RegionRules {
		names[rr.Name] = -1
	}
	refs := map[string]bool{}
	for i := range f.Rules {
		r := &f.Rules[i]
		at := fmt.Sprintf("rules[%d]", i)
		switch prev, dup := names[r.Name]; {
		case r.Name == "":
			bad(at+".name", "is required")
		case dup && prev < 0:
			bad(at+".name", "%q is also the name of a region rule", r.Name)
		case dup:
			bad(at+".name", "%q is also the name of rules[%d]", r.Name, prev)
		default:
			names[r.Name] = i
		}
		if r.Description[LangEN] == "" || r.Description[LangZH] == "" {
			bad(at+".description", "needs zh and en")
		}
		if strings.TrimSpace(r.Source) == "" {
			bad(at+".source", "is required: the standard or document the rule implements")
		}
		c := &compiler{form: f, schema: s, bad: bad, refs: refs, own: map[string]bool{}, stds: map[string]bool{}}
		if !exactlyOne(len(r.AnyOf) > 0, r.Require != nil, r.Check != nil, r.DateRange != nil) {
			bad(at, "must have exactly one of any_of, require, check, date_range")
			continue
		}
		if (r.When != nil || r.Unless != nil) && r.Require == nil {
			bad(at, "when and unless go with require")
		}
		switch {
		case len(r.AnyOf) > 0:
			r.cond = c.compile(at, Condition{AnyOf: r.AnyOf})
		case r.Require != nil:
			if len(r.Require) == 0 {
				bad(at+".require", "must name at least one field")
			}
			for j, name := range r.Require {
				if f.byName[name] == nil {
					bad(fmt.Sprintf("%s.require[%d]", at, j), "unknown field %q of %s", name, f.Entity)
				}
				c.own[name] = true
			}
			switch {
			case r.When != nil && r.Unless != nil:
				bad(at, "has both when and unless")
			case r.When != nil:
				r.cond = c.compile(at+".when", *r.When)
			case r.Unless != nil:
				r.cond = c.compile(at+".unless", *r.Unless)
			}
		case r.Check != nil:
			r.cond = c.compile(at+".check", *r.Check)
		case r.DateRange != nil:
			c.dateRange(at+".date_range", r.DateRange)
		}
		r.fields, r.standards = nil, nil
		for name := range c.own {
			r.fields = append(r.fields, name)
		}
		sort.Strings(r.fields)
		for name := range c.stds {
			r.standards = append(r.standards, name)
		}
		sort.Strings(r.standards)
	}
	f.ruleRefs = nil
	for ref := range refs {
		f.ruleRefs = append(f.ruleRefs, ref)
	}
	sort.Strings(f.ruleRefs)
	return errs
}

func (f *Form) source() string {
	if f.file != "" {
		return f.file
	}
	return f.Entity
}

// compiler checks and compiles the conditions of one rule.
type compiler struct {
	form   *Form
	schema *Schema
	bad    func(path, format string, a ...any)
	refs   map[string]bool // reference fields read through, of the form
	own    map[string]bool // the record's own fields the rule reads
	stds   map[string]bool // the standards the rule compares with
}

// operand resolves a field name or REF.NAME; ok is false (and the error
// reported at path) when it names nothing.
func (c *compiler) operand(path, name string) (operand, bool) {
	ref, field, dotted := strings.Cut(name, ".")
	if !dotted {
		fd := c.form.byName[name]
		if fd == nil {
			c.bad(path, "unknown field %q of %s", name, c.form.Entity)
			return operand{}, false
		}
		c.own[name] = true
		return operand{name: name, field: fd}, true
	}
	rd := c.form.byName[ref]
	if rd == nil || rd.Type != TypeReference {
		c.bad(path, "%q is not a reference field of %s", ref, c.form.Entity)
		return operand{}, false
	}
	target := c.schema.byEntity[rd.Entity]
	if target == nil || target.byName[field] == nil {
		c.bad(path, "unknown field %q of %s (through %s)", field, rd.Entity, ref)
		return operand{}, false
	}
	c.own[ref] = true
	c.refs[ref] = true
	return operand{ref: ref, name: field, field: target.byName[field]}, true
}

// constant checks a constant against the field it is compared with and
// returns it in canonical form. Range bounds of the field do not apply: a
// constant outside them is a condition that never holds, not an error.
func constant(fd *Field, raw json.RawMessage) (json.RawMessage, error) {
	loose := *fd
	loose.Min, loose.Max, loose.MinDate, loose.MaxDaysAhead, loose.Required = nil, nil, "", nil, false
	if string(raw) == "null" {
		return nil, errors.New("must not be null (use absent)")
	}
	norm, ferr := loose.NormalizeAt(raw, time.Time{})
	if ferr != nil {
		return nil, fmt.Errorf("is no value of %s: %s", fd.Name, ferr.Message)
	}
	return norm, nil
}

func (c *compiler) compile(path string, cd Condition) *cond {
	out := &cond{path: path}
	kinds := []string{}
	if cd.Present != "" {
		kinds = append(kinds, "present")
	}
	if cd.Absent != "" {
		kinds = append(kinds, "absent")
	}
	if cd.Field != "" {
		kinds = append(kinds, "field")
	}
	if cd.AgeFrom != "" {
		kinds = append(kinds, "age_from")
	}
	if cd.AllOf != nil {
		kinds = append(kinds, "all_of")
	}
	if cd.AnyOf != nil {
		kinds = append(kinds, "any_of")
	}
	if cd.Not != nil {
		kinds = append(kinds, "not")
	}
	if len(kinds) != 1 {
		if len(kinds) == 0 {
			c.bad(path, "empty condition: give one of present, absent, field, age_from, all_of, any_of, not")
		} else {
			c.bad(path, "has %s: a condition is one of them", strings.Join(kinds, " and "))
		}
		out.kind = "invalid"
		return out
	}
	out.kind = kinds[0]
	switch out.kind {
	case "present":
		out.left, _ = c.operand(path+".present", cd.Present)
	case "absent":
		out.left, _ = c.operand(path+".absent", cd.Absent)
	case "all_of", "any_of", "not":
		subs := cd.AllOf
		if out.kind == "any_of" {
			subs = cd.AnyOf
		}
		if out.kind == "not" {
			out.subs = []*cond{c.compile(path+".not", *cd.Not)}
			break
		}
		if len(subs) == 0 {
			c.bad(path+"."+out.kind, "must hold at least one condition")
			out.kind = "invalid"
		}
		for j, s := range subs {
			out.subs = append(out.subs, c.compile(fmt.Sprintf("%s.%s[%d]", path, out.kind, j), s))
		}
	case "field":
		c.comparison(path, cd, out)
	case "age_from":
		c.age(path, cd, out)
	}
	return out
}

// ageField is the operand of an age comparison's right-hand side: a whole
// number of years.
var ageField = &Field{Name: "age", Type: TypeInteger}

// age checks an age comparison: an integer field (a birth year), an
// operator, and exactly one of a constant number of years and a standard.
func (c *compiler) age(path string, cd Condition, out *cond) {
	left, ok := c.operand(path+".age_from", cd.AgeFrom)
	out.kind, out.op, out.left = "age", cd.Op, left
	if !ok {
		out.kind = "invalid"
		return
	}
	if left.field.Type != TypeInteger {
		c.bad(path+".age_from", "%s is a %s field: an age is counted from an integer field (a birth year)", cd.AgeFrom, left.field.Type)
		out.kind = "invalid"
		return
	}
	if cd.Equals != nil || cd.OneOf != nil || cd.Other != "" || cd.TodayPlusDays != nil || cd.Format != "" {
		c.bad(path, "an age compares with op and one of value, standard")
		out.kind = "invalid"
		return
	}
	if !holdsKnown(cd.Op) {
		c.bad(path+".op", "unknown operator %q (one of <, <=, >, >=)", cd.Op)
	}
	if !exactlyOne(cd.Value != nil, cd.Standard != "") {
		c.bad(path, "an age compares with exactly one of value, standard")
		out.kind = "invalid"
		return
	}
	// The age, not the birth year, is what is compared: the left operand's
	// field is a number of years from here on.
	out.left.field = ageField
	if cd.Value != nil {
		norm, err := constant(ageField, cd.Value)
		if err != nil {
			c.bad(path+".value", "%s", err)
			out.kind = "invalid"
			return
		}
		out.rvalue = norm
		return
	}
	c.standard(path, cd, ageField, out)
	if out.kind == "invalid" {
		return
	}
	out.kind = "age"
}

func (c *compiler) comparison(path string, cd Condition, out *cond) {
	left, ok := c.operand(path+".field", cd.Field)
	out.left = left
	if !exactlyOne(cd.Equals != nil, cd.OneOf != nil, cd.Op != "", cd.Format != "") {
		c.bad(path, "a condition on field %q needs exactly one of equals, one_of, op, format", cd.Field)
		out.kind = "invalid"
		return
	}
	if !ok {
		out.kind = "invalid"
		return
	}
	fd := left.field
	if cd.Format != "" {
		out.kind, out.format = "format", cd.Format
		if cd.Format != FormatGB11643 {
			c.bad(path+".format", "unknown format %q (one of %s)", cd.Format, FormatGB11643)
			out.kind = "invalid"
		} else if fd.Type != TypeText {
			c.bad(path+".field", "%s is a %s field: a format is checked on text fields", cd.Field, fd.Type)
			out.kind = "invalid"
		}
		return
	}
	if cd.Equals != nil || cd.OneOf != nil {
		out.kind = "equals"
		if fd.Type == TypeSet || fd.Type == TypeLocation {
			c.bad(path+".field", "%s is a %s field: equals and one_of are for single values", cd.Field, fd.Type)
			out.kind = "invalid"
			return
		}
		vals, at := cd.OneOf, path+".one_of"
		if cd.Equals != nil {
			vals, at = []json.RawMessage{cd.Equals}, path+".equals"
		} else if len(vals) == 0 {
			c.bad(at, "must hold at least one value")
		}
		for j, v := range vals {
			vp := at
			if cd.Equals == nil {
				vp = fmt.Sprintf("%s[%d]", at, j)
			}
			norm, err := constant(fd, v)
			if err != nil {
				c.bad(vp, "%s", err)
				continue
			}
			out.values = append(out.values, norm)
		}
		return
	}
	out.kind, out.op = "compare", cd.Op
	if !holdsKnown(cd.Op) {
		c.bad(path+".op", "unknown operator %q (one of <, <=, >, >=)", cd.Op)
	}
	if !isNumeric(fd) && fd.Type != TypeDate {
		c.bad(path+".field", "%s is a %s field: op compares number and date fields", cd.Field, fd.Type)
		out.kind = "invalid"
		return
	}
	if !exactlyOne(cd.Value != nil, cd.Other != "", cd.TodayPlusDays != nil, cd.Standard != "") {
		c.bad(path, "op needs exactly one of value, other, today_plus_days, standard")
		out.kind = "invalid"
		return
	}
	switch {
	case cd.Value != nil:
		norm, err := constant(fd, cd.Value)
		if err != nil {
			c.bad(path+".value", "%s", err)
			out.kind = "invalid"
			return
		}
		out.rvalue = norm
	case cd.Other != "":
		right, ok := c.operand(path+".other", cd.Other)
		if !ok {
			out.kind = "invalid"
			return
		}
		if isNumeric(fd) != isNumeric(right.field) || (fd.Type == TypeDate) != (right.field.Type == TypeDate) {
			c.bad(path+".other", "%s is a %s field, %s a %s field: they do not compare", cd.Other, right.field.Type, cd.Field, fd.Type)
			out.kind = "invalid"
			return
		}
		out.right = &right
	case cd.TodayPlusDays != nil:
		if fd.Type != TypeDate {
			c.bad(path+".today_plus_days", "%s is a %s field: today_plus_days is for date fields", cd.Field, fd.Type)
			out.kind = "invalid"
			return
		}
		if d := *cd.TodayPlusDays; d < -36600 || d > 36600 {
			c.bad(path+".today_plus_days", "must be from -36600 to 36600")
		}
		out.days = cd.TodayPlusDays
	case cd.Standard != "":
		c.standard(path, cd, fd, out)
	}
}

// standard checks a comparison with a standard: a number field, a standard
// of the version's StandardsFile, the operator of its direction.
func (c *compiler) standard(path string, cd Condition, fd *Field, out *cond) {
	st := c.schema.Standards.Standard(cd.Standard)
	if st == nil {
		c.bad(path+".standard", "unknown standard %q (the version's %s declares the standards)", cd.Standard, StandardsFile)
		out.kind = "invalid"
		return
	}
	if !isNumeric(fd) {
		c.bad(path+".field", "%s is a %s field: a standard is compared with number fields", cd.Field, fd.Type)
		out.kind = "invalid"
		return
	}
	want := ">="
	if st.Direction == DirectionMax {
		want = "<="
	}
	if cd.Op != want {
		c.bad(path+".op", "%s is a %s standard: a value meets it when %s", st.Name, st.Direction, want)
	}
	out.std, out.stds = st.Name, c.schema.Standards
	c.stds[st.Name] = true
}

// exactlyOne reports whether exactly one of set is true: a rule or
// condition gives exactly one of its alternative keys.
func exactlyOne(set ...bool) bool {
	n := 0
	for _, s := range set {
		if s {
			n++
		}
	}
	return n == 1
}

func holdsKnown(op string) bool {
	switch op {
	case "<", "<=", ">", ">=":
		return true
	}
	return false
}

func (c *compiler) dateRange(path string, d *DateRange) {
	left, ok := c.operand(path+".field", d.Field)
	if ok && left.ref != "" {
		c.bad(path+".field", "a date range bounds a field of the record itself")
		return
	}
	if ok && left.field.Type != TypeDate {
		c.bad(path+".field", "%s is a %s field: date ranges are for date fields", d.Field, left.field.Type)
	}
	if d.Min == "" && d.Max == "" && d.MaxDaysAgo == nil && d.MaxDaysAhead == nil {
		c.bad(path, "needs at least one of min, max, max_days_ago, max_days_ahead")
	}
	for _, b := range []struct{ key, v string }{{"min", d.Min}, {"max", d.Max}} {
		if _, err := time.Parse(time.DateOnly, b.v); b.v != "" && err != nil {
			c.bad(path+"."+b.key, "%q is not a date (YYYY-MM-DD)", b.v)
		}
	}
	if d.Min != "" && d.Max != "" && d.Min > d.Max {
		c.bad(path, "min %s is after max %s", d.Min, d.Max)
	}
	for _, b := range []struct {
		key string
		v   *int
	}{{"max_days_ago", d.MaxDaysAgo}, {"max_days_ahead", d.MaxDaysAhead}} {
		if b.v != nil && (*b.v < 0 || *b.v > 36600) {
			c.bad(path+"."+b.key, "must be from 0 to 36600")
		}
	}
}
