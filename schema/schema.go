// Package schema holds the survey forms of fieldsync as declarative,
// versioned definitions: fields, types, enums, ranges, references, the merge
// policy of each field and region-specific checks. A new form is a JSON file
// under forms/, not new code.
//
// The package is pure: it imports neither SQL nor HTTP.
package schema

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// Version is the schema_version Load gives the forms it reads: version
// 1's number. The newest version embedded in this build is
// BuiltIn().Latest().Version.
const Version = 1

// Policy names how a field's concurrent edits are decided when merging.
type Policy string

// The merge policies of PROTOCOL.md.
const (
	PolicyLWW         Policy = "lww"          // later device time wins; ties by device id
	PolicySafetyFirst Policy = "safety_first" // the more severe value wins
	PolicyUnion       Policy = "union"        // set fields merge
	PolicyManual      Policy = "manual"       // stored value stays, a conflict opens
)

// FieldType is the type of a form field.
type FieldType string

// The field types a form may use.
const (
	TypeText         FieldType = "text"
	TypeInteger      FieldType = "integer"
	TypeNumber       FieldType = "number"
	TypeBoolean      FieldType = "boolean"
	TypeEnum         FieldType = "enum"
	TypeSet          FieldType = "set"
	TypeDate         FieldType = "date"
	TypeDivisionCode FieldType = "division_code"
	TypeReference    FieldType = "reference"
	TypeLocation     FieldType = "location"
)

// Field is one field of a form.
type Field struct {
	Name  string    `json:"name"`
	Type  FieldType `json:"type"`
	Label string    `json:"label,omitempty"`
	// Labels name the field for people, by language ("zh", "en"): the
	// headers of the tabular exports and reports. Label stays as v1 has it.
	Labels map[string]string `json:"labels,omitempty"`
	// ValueLabels name the values of an enum, or of a set's items, by
	// value and then language.
	ValueLabels map[string]map[string]string `json:"value_labels,omitempty"`
	Required    bool                         `json:"required,omitempty"`
	Policy      Policy                       `json:"policy"`
	// Values lists the allowed values of an enum, or of a set's items.
	Values []string `json:"values,omitempty"`
	// Items is the item type of a set when it is not an enum ("sha256").
	Items string `json:"items,omitempty"`
	// Severity orders the values of a safety_first field from least to most
	// severe, as JSON values (strings or booleans).
	Severity []json.RawMessage `json:"severity,omitempty"`
	Min      *float64          `json:"min,omitempty"`
	Max      *float64          `json:"max,omitempty"`
	// MaxLength bounds a text field, in characters.
	MaxLength int `json:"max_length,omitempty"`
	// MaxItems bounds a set field sent in one change.
	MaxItems int `json:"max_items,omitempty"`
	// Entity is the entity a reference field points to.
	Entity string `json:"entity,omitempty"`
	// SameParent requires a reference to point to a record with the same
	// parent (a re-inspection must check an inspection of the same household).
	SameParent bool `json:"same_parent,omitempty"`
	// MinDate is the earliest value of a date field (YYYY-MM-DD).
	MinDate string `json:"min_date,omitempty"`
	// MaxDaysAhead bounds a date field from above: at most this many days
	// after today (UTC) on the validating machine's clock, so that a
	// tablet a timezone ahead can still date a visit today. Absent: no
	// upper bound.
	MaxDaysAhead *int `json:"max_days_ahead,omitempty"`
	// Personal marks a field that holds personal data (a person's name,
	// an identity number): it never appears in logs, metrics or error
	// messages, and PersonalIdentity numbers are masked for readers
	// without the right to see them (docs/forms.md, "Personal data").
	Personal Personal `json:"personal,omitempty"`
	// Write is who may set which values of an enum field (decided values,
	// schema/write.go); nil: every role that pushes.
	Write *Write `json:"write,omitempty"`
}

// Personal says whether a field holds personal data: "" (no), PersonalData
// (`"personal": true` in a form file) or PersonalIdentity (`"personal":
// "identity"`: an identity number, masked for readers without the right to
// see it).
type Personal string

// The kinds of personal data a field holds.
const (
	PersonalData     Personal = "personal"
	PersonalIdentity Personal = "identity"
)

// MarshalJSON writes true for PersonalData and "identity" for
// PersonalIdentity, as a form file has them.
func (p Personal) MarshalJSON() ([]byte, error) {
	switch p {
	case PersonalData:
		return []byte("true"), nil
	case PersonalIdentity:
		return []byte(`"identity"`), nil
	}
	return []byte("false"), nil
}

// UnmarshalJSON reads true, false or "identity"; anything else is an
// error.
func (p *Personal) UnmarshalJSON(b []byte) error {
	switch strings.TrimSpace(string(b)) {
	case "true":
		*p = PersonalData
	case "false":
		*p = ""
	case `"identity"`:
		*p = PersonalIdentity
	default:
		return fmt.Errorf(`personal is true, false or "identity", not %s`, b)
	}
	return nil
}

// IsPersonal reports whether the field holds personal data of any kind.
func (fd Field) IsPersonal() bool { return fd.Personal != "" }

// SetBound is the most items a set field may hold in one change: MaxItems,
// or for a set of enum values without it the enum's size (more would
// repeat a value); 0 when neither bounds it or the field is no set.
func (fd Field) SetBound() int {
	switch {
	case fd.Type != TypeSet:
		return 0
	case fd.MaxItems > 0:
		return fd.MaxItems
	default:
		return len(fd.Values)
	}
}

// Parent names the field by which a record belongs to another record whose
// region scopes it (an inspection belongs to a household).
type Parent struct {
	Field  string `json:"field"`
	Entity string `json:"entity"`
}

// RegionRule makes fields required in regions whose division code starts
// with one of Prefixes.
type RegionRule struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Prefixes    []string `json:"prefixes"`
	Require     []string `json:"require"`
}

// Threshold is one standard a value must meet.
type Threshold struct {
	Min    *float64 `json:"min,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	Equals any      `json:"equals,omitempty"`
}

// RegionalStandard overrides national thresholds in regions whose code
// starts with one of Prefixes.
type RegionalStandard struct {
	Name        string               `json:"name"`
	Description string               `json:"description,omitempty"`
	Prefixes    []string             `json:"prefixes"`
	Thresholds  map[string]Threshold `json:"thresholds"`
}

// Standards are the thresholds an inspection is judged against in reports.
type Standards struct {
	Description string               `json:"description,omitempty"`
	National    map[string]Threshold `json:"national"`
	Regional    []RegionalStandard   `json:"regional,omitempty"`
}

// Form is the definition of one entity.
type Form struct {
	Entity string `json:"entity"`
	Title  string `json:"title"`
	// Titles name the form for people, by language ("zh", "en"): sheet
	// names and headers of the exports, the command line's --lang. Title
	// stays as v1 has it.
	Titles      map[string]string `json:"titles,omitempty"`
	Description string            `json:"description,omitempty"`
	ScopeField  string            `json:"scope_field,omitempty"`
	Parent      *Parent           `json:"parent,omitempty"`
	Fields      []Field           `json:"fields"`
	RegionRules []RegionRule      `json:"region_rules,omitempty"`
	Standards   *Standards        `json:"standards,omitempty"`
	// Rules are the form's named rules: requirements a change must meet
	// and criteria the reports judge (rules.go, docs/forms.md).
	Rules []Rule `json:"rules,omitempty"`
	// Role is the role the form plays for the reports, if any.
	Role *Role `json:"role,omitempty"`

	byName    map[string]*Field
	file      string       // the form file it was loaded from, for errors
	ruleRefs  []string     // reference fields the rules read through
	standards *StandardSet // the version's standards, which rules compare with
}

// Schema is a versioned set of forms.
type Schema struct {
	Version int     `json:"schema_version"`
	Forms   []*Form `json:"forms"`
	// Standards are the version's published standards (its
	// StandardsFile), which rules compare with; nil when it has none.
	Standards *StandardSet `json:"standards,omitempty"`

	byEntity map[string]*Form
	byRole   map[string]*Form
	// verification is the version's VerificationFile, when it has one.
	verification *Verification
	// monitoring is the version's MonitoringFile, when it has one.
	monitoring *Monitoring
	// registries are the version's DepartmentsFile and RegistriesFile,
	// when it has them.
	registries *Registries
}

//go:embed forms
var formFiles embed.FS

var (
	v1Once sync.Once
	v1     *Schema
	v1Err  error
)

// V1 returns the forms of schema version 1 embedded in this build. It panics
// if the embedded definitions are invalid, which a test rules out.
func V1() *Schema {
	v1Once.Do(func() {
		if c, err := builtIn(); err != nil {
			v1Err = err
		} else {
			v1 = c.Version(1)
		}
	})
	if v1Err != nil {
		panic(v1Err)
	}
	return v1
}

// Load reads every *.json form under dir of fsys (but the VersionFile and
// the StandardsFile, which it reads as the standards), checks the
// definitions and returns them as a schema of the current Version.
// LoadCatalog reads a set of versions, with every error at once.
func Load(fsys fs.FS, dir string) (*Schema, error) {
	names, err := fs.Glob(fsys, dir+"/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var forms []*Form
	for _, name := range names {
		if path.Base(name) == VersionFile || path.Base(name) == StandardsFile || path.Base(name) == VerificationFile || path.Base(name) == MonitoringFile {
			continue
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		var f Form
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		f.file = name
		forms = append(forms, &f)
	}
	standards, errs := loadStandards(fsys, dir, func(name string) string { return name })
	if len(errs) > 0 {
		return nil, errs
	}
	return build(Version, forms, standards)
}

// Parse reads a schema as GET /v1/schema serves it ({"schema_version",
// "forms"}) and checks it like Load: what a client validates its edits
// against.
func Parse(data []byte) (*Schema, error) {
	var doc Schema
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if doc.Standards != nil {
		if errs := doc.Standards.check(); len(errs) > 0 {
			return nil, fmt.Errorf("schema: standards: %w", errs[0])
		}
	}
	return build(doc.Version, doc.Forms, doc.Standards)
}

// FormError is one error in a form's definition — a field, its policy, a
// reference, the scope and parent fields, a region rule, the role — with
// the form file it is in (the entity for a schema parsed from GET
// /v1/schema) and the JSON path in that file of the offending value
// ("fields[3].policy", "region_rules[0].require[1]").
type FormError struct {
	File    string
	Path    string
	Message string
}

func (e *FormError) Error() string { return e.File + ": " + e.Path + ": " + e.Message }

func build(version int, forms []*Form, standards *StandardSet) (*Schema, error) {
	s := &Schema{Version: version, Standards: standards, byEntity: map[string]*Form{}, byRole: map[string]*Form{}}
	// Every error of every form at once: its fields, policies and
	// references (each a *FormError), then its rules (each a *RuleError).
	var errs []error
	bad := func(f *Form, path, format string, a ...any) {
		errs = append(errs, &FormError{File: f.source(), Path: path, Message: fmt.Sprintf(format, a...)})
	}
	for _, f := range forms {
		f.standards = standards
		for _, fe := range f.load() {
			errs = append(errs, fe)
		}
		if prev, dup := s.byEntity[f.Entity]; dup {
			bad(f, "entity", "entity %q is defined in %s too", f.Entity, prev.source())
			continue
		}
		if f.Role != nil {
			if other := s.byRole[f.Role.Plays]; other != nil {
				bad(f, "role.plays", "role %s is played by %s already", f.Role.Plays, other.Entity)
			} else {
				s.byRole[f.Role.Plays] = f
			}
		}
		s.byEntity[f.Entity] = f
		s.Forms = append(s.Forms, f)
	}
	for _, f := range s.Forms {
		for i, fd := range f.Fields {
			if fd.Type == TypeReference && fd.Entity != "" {
				if _, ok := s.byEntity[fd.Entity]; !ok {
					bad(f, fmt.Sprintf("fields[%d].entity", i), "field %q: reference to unknown entity %q", fd.Name, fd.Entity)
				}
			}
		}
		if f.Parent != nil {
			if _, ok := s.byEntity[f.Parent.Entity]; !ok {
				bad(f, "parent.entity", "parent entity %q unknown", f.Parent.Entity)
			}
		}
	}
	for _, f := range s.Forms {
		errs = append(errs, f.compileRules(s)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// init checks the form on its own and indexes its fields; its error joins
// every *FormError of load.
func (f *Form) init() error {
	var errs []error
	for _, fe := range f.load() {
		errs = append(errs, fe)
	}
	return errors.Join(errs...)
}

// load indexes the form's fields and checks everything the form says on
// its own — its entity, each field (name, type, policy, values, labels,
// date bounds, severity), its region rules, its scope and parent fields
// and its role — returning every error at once, each at its JSON path. A
// field with a valid, unique name is indexed even when something else of
// it is wrong, so that the checks reading it report only their own errors.
func (f *Form) load() []*FormError {
	var errs []*FormError
	bad := func(path, format string, a ...any) {
		errs = append(errs, &FormError{File: f.source(), Path: path, Message: fmt.Sprintf(format, a...)})
	}
	if f.Entity == "" {
		bad("entity", "form without entity")
	}
	f.byName = map[string]*Field{}
	for i := range f.Fields {
		fd := &f.Fields[i]
		at := func(member string) string { return fmt.Sprintf("fields[%d].%s", i, member) }
		if fd.Name == "" || strings.HasPrefix(fd.Name, "_") {
			bad(at("name"), "field %d: invalid name %q", i, fd.Name)
		} else if prev, dup := f.byName[fd.Name]; dup {
			bad(at("name"), "field %q defined twice (also fields[%d])", fd.Name, indexOf(f.Fields, prev))
		} else {
			f.byName[fd.Name] = fd
		}
		typed := true
		switch fd.Type {
		case TypeText, TypeInteger, TypeNumber, TypeBoolean, TypeDate, TypeDivisionCode, TypeLocation:
		case TypeEnum:
			if len(fd.Values) == 0 {
				bad(at("values"), "field %q: enum without values", fd.Name)
			}
		case TypeSet:
			if len(fd.Values) == 0 && fd.Items != "sha256" {
				bad(at("values"), "field %q: set needs values or items", fd.Name)
			}
		case TypeReference:
			if fd.Entity == "" {
				bad(at("entity"), "field %q: reference without entity", fd.Name)
			}
		default:
			bad(at("type"), "field %q: unknown type %q", fd.Name, fd.Type)
			typed = false
		}
		switch fd.Policy {
		case PolicyLWW, PolicyManual:
		case PolicyUnion:
			if fd.Type != TypeSet {
				bad(at("policy"), "field %q: union needs a set", fd.Name)
			}
		case PolicySafetyFirst:
			if len(fd.Severity) < 2 {
				bad(at("severity"), "field %q: safety_first needs a severity order", fd.Name)
			}
		default:
			bad(at("policy"), "field %q: unknown policy %q (one of lww, safety_first, union, manual)", fd.Name, fd.Policy)
		}
		for _, v := range sortedNames(fd.ValueLabels) {
			if !contains(fd.Values, v) {
				bad(at("value_labels."+v), "field %q: value_labels names %q, not one of its values", fd.Name, v)
			}
		}
		if fd.Personal != "" && fd.Type != TypeText {
			bad(at("personal"), "field %q: personal data is held in text fields, not %s", fd.Name, fd.Type)
		}
		if fd.MinDate != "" && fd.Type != TypeDate {
			bad(at("min_date"), "field %q: min_date and max_days_ahead are for date fields", fd.Name)
		} else if _, err := time.Parse(time.DateOnly, fd.MinDate); fd.MinDate != "" && err != nil {
			bad(at("min_date"), "field %q: min_date %q is not a date (YYYY-MM-DD)", fd.Name, fd.MinDate)
		}
		if fd.MaxDaysAhead != nil && fd.Type != TypeDate {
			bad(at("max_days_ahead"), "field %q: min_date and max_days_ahead are for date fields", fd.Name)
		} else if fd.MaxDaysAhead != nil && (*fd.MaxDaysAhead < 0 || *fd.MaxDaysAhead > 366) {
			bad(at("max_days_ahead"), "field %q: max_days_ahead must be from 0 to 366", fd.Name)
		}
		if typed {
			for j, sv := range fd.Severity {
				norm, err := fd.Normalize(sv)
				if err != nil {
					bad(fmt.Sprintf("fields[%d].severity[%d]", i, j), "field %q: severity[%d]: %s", fd.Name, j, err.Message)
					continue
				}
				fd.Severity[j] = norm
			}
		}
	}
	for i := range f.Fields {
		f.checkWrite(i, bad)
	}
	for i, r := range f.RegionRules {
		for j, name := range r.Require {
			if f.byName[name] == nil {
				bad(fmt.Sprintf("region_rules[%d].require[%d]", i, j), "region rule %q requires unknown field %q", r.Name, name)
			}
		}
	}
	if f.ScopeField != "" && f.byName[f.ScopeField] == nil {
		bad("scope_field", "scope field %q unknown", f.ScopeField)
	}
	if f.Parent != nil && f.byName[f.Parent.Field] == nil {
		bad("parent.field", "parent field %q unknown", f.Parent.Field)
	}
	if f.Role != nil {
		if err := f.Role.check(f); err != nil {
			bad("role", "%s", err.Error())
		}
	}
	return errs
}

// indexOf is the index in fields of the field fd points to.
func indexOf(fields []Field, fd *Field) int {
	for i := range fields {
		if &fields[i] == fd {
			return i
		}
	}
	return -1
}

// TitleIn returns the form's title in lang, or its Title when it has none
// in that language.
func (f *Form) TitleIn(lang string) string {
	if t := f.Titles[lang]; t != "" {
		return t
	}
	return f.Title
}

// The languages the forms carry labels in.
const (
	LangZH = "zh"
	LangEN = "en"
)

// LabelIn returns the field's label in lang, or its name when it has none
// in that language.
func (fd *Field) LabelIn(lang string) string {
	if l := fd.Labels[lang]; l != "" {
		return l
	}
	return fd.Name
}

// ValueLabelIn returns the label of one of the field's values in lang, or
// the value itself when it has none.
func (fd *Field) ValueLabelIn(value, lang string) string {
	if l := fd.ValueLabels[value][lang]; l != "" {
		return l
	}
	return value
}

// Form returns the form of entity, or nil when the schema has none.
func (s *Schema) Form(entity string) *Form { return s.byEntity[entity] }

// Entities lists the entities of the schema in a stable order.
func (s *Schema) Entities() []string {
	out := make([]string, len(s.Forms))
	for i, f := range s.Forms {
		out[i] = f.Entity
	}
	return out
}

// Field returns the named field, or nil.
func (f *Form) Field(name string) *Field { return f.byName[name] }

// RequiredIn returns the fields a new record of this form must carry in the
// region with the given division code: the always-required fields first, then
// those of matching region rules, each once.
func (f *Form) RequiredIn(region string) []string {
	var out []string
	seen := map[string]bool{}
	for _, fd := range f.Fields {
		if fd.Required {
			out = append(out, fd.Name)
			seen[fd.Name] = true
		}
	}
	for _, r := range f.RegionRules {
		if !matchesPrefix(region, r.Prefixes) {
			continue
		}
		for _, name := range r.Require {
			if !seen[name] {
				out = append(out, name)
				seen[name] = true
			}
		}
	}
	return out
}

// ThresholdsFor returns the standards that apply in region: the national
// thresholds overridden by every matching regional standard.
func (f *Form) ThresholdsFor(region string) map[string]Threshold {
	if f.Standards == nil {
		return nil
	}
	out := map[string]Threshold{}
	for k, v := range f.Standards.National {
		out[k] = v
	}
	for _, rs := range f.Standards.Regional {
		if matchesPrefix(region, rs.Prefixes) {
			for k, v := range rs.Thresholds {
				out[k] = v
			}
		}
	}
	return out
}

func matchesPrefix(code string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(code, p) {
			return true
		}
	}
	return false
}
