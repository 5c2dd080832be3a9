package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// DepartmentsFile is the file of a version directory that lists the
// departments whose users work in fieldsync and whose lists it imports
// (docs/forms.md, "Departments and registries").
const DepartmentsFile = "departments.json"

// RegistriesFile is the file of a version directory that declares the
// registry sources: the other departments' lists an import reads, the
// fields each states and the default mapping of their columns.
const RegistriesFile = "registries.json"

// The levels of a registry source: a row is a household or a person.
const (
	LevelHousehold = "household"
	LevelPerson    = "person"
)

// The types of a registry field's value.
const (
	RegistryText         = "text"
	RegistryInteger      = "integer"
	RegistryBoolean      = "boolean"
	RegistryDivisionCode = "division_code"
	RegistryDate         = "date"
	RegistryEnum         = "enum"
)

var registryTypes = []string{RegistryText, RegistryInteger, RegistryBoolean, RegistryDivisionCode, RegistryDate, RegistryEnum}

// Department is one department: its name (the code users and change logs
// carry) and its labels in zh and en.
type Department struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

// Registries is what a version's DepartmentsFile and RegistriesFile
// declare together: the departments, and the registry sources, each kept
// by one of them.
type Registries struct {
	Departments []Department     `json:"departments"`
	Sources     []RegistrySource `json:"sources,omitempty"`
}

// RegistrySource is one department's list: its name (what `fieldsync
// import --source` and `POST /v1/imports?source=` take), labels, the
// department keeping it, its level (a row is a household or a person),
// the field whose value identifies a row (Key: a re-import diffs by it),
// and its fields. Every source has a field "village" (a division code):
// it places the row in a region.
type RegistrySource struct {
	Name       string            `json:"name"`
	Labels     map[string]string `json:"labels"`
	Department string            `json:"department"`
	Level      string            `json:"level"`
	Key        string            `json:"key"`
	Fields     []RegistryField   `json:"fields"`
}

// RegistryField is one field a source states: its name, labels, type,
// whether a row must have it, the form field it states (States: a field of
// the household form for a household source, of the person form for a
// person source; reconciliation compares the two), the enum's values and
// the spellings that mean each (ValueAliases: spelling → value), and the
// column headers that map to it by default (Aliases; the name itself
// always does).
type RegistryField struct {
	Name         string            `json:"name"`
	Labels       map[string]string `json:"labels"`
	Type         string            `json:"type"`
	Required     bool              `json:"required,omitempty"`
	States       string            `json:"states,omitempty"`
	Values       []string          `json:"values,omitempty"`
	ValueAliases map[string]string `json:"value_aliases,omitempty"`
	Aliases      []string          `json:"aliases,omitempty"`
	// Agrees maps a value of the field to the values of the States field
	// that agree with it, when they are not the same value (a pupil
	// "enrolled" agrees with "enrolled" and "boarding" on the person form).
	Agrees map[string][]string `json:"agrees,omitempty"`
}

// Registries returns the version's departments and registry sources, or
// nil when its directory has neither file.
func (s *Schema) Registries() *Registries { return s.registries }

// Department returns the department with the name, or nil.
func (r *Registries) Department(name string) *Department {
	if r == nil {
		return nil
	}
	for i := range r.Departments {
		if r.Departments[i].Name == name {
			return &r.Departments[i]
		}
	}
	return nil
}

// Source returns the registry source with the name, or nil.
func (r *Registries) Source(name string) *RegistrySource {
	if r == nil {
		return nil
	}
	for i := range r.Sources {
		if r.Sources[i].Name == name {
			return &r.Sources[i]
		}
	}
	return nil
}

// SourceNames lists the sources' names in the file's order.
func (r *Registries) SourceNames() []string {
	if r == nil {
		return nil
	}
	out := make([]string, len(r.Sources))
	for i, s := range r.Sources {
		out[i] = s.Name
	}
	return out
}

// Field returns the source's field with the name, or nil.
func (s *RegistrySource) Field(name string) *RegistryField {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i]
		}
	}
	return nil
}

// DefaultMapping returns the source's default mapping of column headers to
// its fields: each field's name and its aliases, compared after
// NormalizeHeader.
func (s *RegistrySource) DefaultMapping() map[string]string {
	m := map[string]string{}
	for _, f := range s.Fields {
		m[NormalizeHeader(f.Name)] = f.Name
		for _, a := range f.Aliases {
			m[NormalizeHeader(a)] = f.Name
		}
	}
	return m
}

// NormalizeHeader is a column header as mappings compare it: without
// surrounding space (ASCII and the ideographic space), a byte-order mark,
// or a trailing full-width or ASCII colon, and in lower case.
func NormalizeHeader(h string) string {
	h = strings.Trim(h, " \t\u3000\ufeff")
	h = strings.TrimRight(h, ":：")
	return strings.ToLower(strings.Trim(h, " \t\u3000"))
}

// loadRegistries reads the version directory's DepartmentsFile and
// RegistriesFile, if it has them, and checks them against each other and
// the version's forms (sch nil: their own shape only). A RegistriesFile
// needs a DepartmentsFile; departments alone are allowed (users belong to
// them before any list is imported).
func loadRegistries(fsys fs.FS, vdir string, rel func(string) string, sch *Schema) (*Registries, SetErrors) {
	dname, rname := path.Join(vdir, DepartmentsFile), path.Join(vdir, RegistriesFile)
	db, derr := fs.ReadFile(fsys, dname)
	rb, rerr := fs.ReadFile(fsys, rname)
	dmissing, rmissing := errors.Is(derr, fs.ErrNotExist), errors.Is(rerr, fs.ErrNotExist)
	if dmissing && rmissing {
		return nil, nil
	}
	var errs SetErrors
	var reg Registries
	switch {
	case dmissing:
		errs = append(errs, SetError{File: rel(rname), Path: "$", Message: "the sources' departments are declared in " + DepartmentsFile + ", which the version lacks"})
	case derr != nil:
		errs = append(errs, SetError{File: rel(dname), Path: "$", Message: errText(derr)})
	default:
		var doc struct {
			Departments []Department `json:"departments"`
		}
		if p, msg := strictDecode(db, &doc); msg != "" {
			errs = append(errs, SetError{File: rel(dname), Path: p, Message: msg})
		} else {
			reg.Departments = doc.Departments
			for _, e := range checkDepartments(doc.Departments) {
				e.File = rel(dname)
				errs = append(errs, e)
			}
		}
	}
	if !rmissing {
		if rerr != nil {
			errs = append(errs, SetError{File: rel(rname), Path: "$", Message: errText(rerr)})
		} else {
			var doc struct {
				Sources []RegistrySource `json:"sources"`
			}
			if p, msg := strictDecode(rb, &doc); msg != "" {
				errs = append(errs, SetError{File: rel(rname), Path: p, Message: msg})
			} else {
				reg.Sources = doc.Sources
				for _, e := range reg.checkSources(sch, dmissing || derr != nil) {
					e.File = rel(rname)
					errs = append(errs, e)
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &reg, nil
}

// checkDepartments returns every problem of the departments, each at its
// JSON path: none declared, a name missing, repeated or not a code
// (lower-case letters, digits, underscores), a label missing.
func checkDepartments(ds []Department) SetErrors {
	var errs SetErrors
	bad := func(p, format string, a ...any) {
		errs = append(errs, SetError{Path: p, Message: fmt.Sprintf(format, a...)})
	}
	if len(ds) == 0 {
		bad("departments", "declares at least one department")
	}
	seen := map[string]string{}
	for i, d := range ds {
		p := fmt.Sprintf("departments[%d]", i)
		switch {
		case !isCode(d.Name):
			bad(p+".name", "a department's name is a code of lower-case letters, digits and underscores, not %q", d.Name)
		case seen[d.Name] != "":
			bad(p+".name", "department %q is declared in %s already", d.Name, seen[d.Name])
		default:
			seen[d.Name] = p
		}
		errs = append(errs, checkLabels(p, d.Labels)...)
	}
	return errs
}

// checkSources returns every problem of the sources, each at its JSON
// path. noDepartments: the departments did not load, so a source's
// department is not checked.
func (r *Registries) checkSources(sch *Schema, noDepartments bool) SetErrors {
	var errs SetErrors
	bad := func(p, format string, a ...any) {
		errs = append(errs, SetError{Path: p, Message: fmt.Sprintf(format, a...)})
	}
	if len(r.Sources) == 0 {
		bad("sources", "declares at least one registry source")
	}
	seen := map[string]string{}
	for si := range r.Sources {
		s := &r.Sources[si]
		sp := fmt.Sprintf("sources[%d]", si)
		switch {
		case !isCode(s.Name):
			bad(sp+".name", "a source's name is a code of lower-case letters, digits and underscores, not %q", s.Name)
		case seen[s.Name] != "":
			bad(sp+".name", "source %q is declared in %s already", s.Name, seen[s.Name])
		default:
			seen[s.Name] = sp
		}
		errs = append(errs, checkLabels(sp, s.Labels)...)
		if !noDepartments && r.Department(s.Department) == nil {
			bad(sp+".department", "unknown department %q (%s declares them)", s.Department, DepartmentsFile)
		}
		var form *Form
		switch s.Level {
		case LevelHousehold:
			if sch != nil {
				form = sch.Playing(RoleHousehold)
			}
		case LevelPerson:
			if sch != nil {
				form = personForm(sch)
				if form == nil {
					bad(sp+".level", "a person source needs a form %q whose parent is the household", LevelPerson)
				}
			}
		default:
			bad(sp+".level", "must be %q or %q, not %q", LevelHousehold, LevelPerson, s.Level)
		}
		names := map[string]string{}
		for fi, f := range s.Fields {
			fp := fmt.Sprintf("%s.fields[%d]", sp, fi)
			switch {
			case !isCode(f.Name):
				bad(fp+".name", "a field's name is a code of lower-case letters, digits and underscores, not %q", f.Name)
			case names[f.Name] != "":
				bad(fp+".name", "field %q is declared in %s already", f.Name, names[f.Name])
			default:
				names[f.Name] = fp
			}
			errs = append(errs, checkLabels(fp, f.Labels)...)
			if !slices.Contains(registryTypes, f.Type) {
				bad(fp+".type", "unknown type %q (one of %v)", f.Type, registryTypes)
			}
			switch {
			case f.Type == RegistryEnum && len(f.Values) == 0:
				bad(fp+".values", "an enum field lists its values")
			case f.Type != RegistryEnum && (len(f.Values) > 0 || len(f.ValueAliases) > 0):
				bad(fp+".values", "only an enum field has values")
			}
			for alias, v := range f.ValueAliases {
				if !slices.Contains(f.Values, v) {
					bad(fp+".value_aliases."+alias, "%q is not one of the field's values %v", v, f.Values)
				}
			}
			if f.States != "" && form != nil && form.Field(f.States) == nil {
				bad(fp+".states", "unknown field %q of the form %q", f.States, form.Entity)
			}
			for v, agree := range f.Agrees {
				switch {
				case f.States == "":
					bad(fp+".agrees", "agrees compares with the field the source states: give states")
				case !slices.Contains(f.Values, v):
					bad(fp+".agrees."+v, "%q is not one of the field's values %v", v, f.Values)
				case form != nil && form.Field(f.States) != nil:
					for i, a := range agree {
						if sf := form.Field(f.States); len(sf.Values) > 0 && !slices.Contains(sf.Values, a) {
							bad(fmt.Sprintf("%s.agrees.%s[%d]", fp, v, i), "%q is not a value of %s.%s", a, form.Entity, f.States)
						}
					}
				}
			}
		}
		if vf := s.Field("village"); vf == nil || vf.Type != RegistryDivisionCode || !vf.Required {
			bad(sp+".fields", "source %q needs a required field \"village\" of type division_code: it places a row in its region", s.Name)
		}
		switch kf := s.Field(s.Key); {
		case s.Key == "":
			bad(sp+".key", "names the field whose value identifies a row")
		case kf == nil:
			bad(sp+".key", "unknown field %q", s.Key)
		case !kf.Required:
			bad(sp+".key", "the key field %q must be required", s.Key)
		}
		aliases := map[string]string{}
		for fi, f := range s.Fields {
			for ai, a := range append([]string{f.Name}, f.Aliases...) {
				n := NormalizeHeader(a)
				p := fmt.Sprintf("%s.fields[%d].aliases[%d]", sp, fi, ai-1)
				if ai == 0 {
					p = fmt.Sprintf("%s.fields[%d].name", sp, fi)
				}
				if other, dup := aliases[n]; dup && other != f.Name {
					bad(p, "header %q maps to %q already", a, other)
				}
				aliases[n] = f.Name
			}
		}
	}
	return errs
}

// personForm returns the form named person whose parent is the household
// form, or nil.
func personForm(sch *Schema) *Form {
	hh := sch.Playing(RoleHousehold)
	f := sch.Form(LevelPerson)
	if hh == nil || f == nil || f.Parent == nil || f.Parent.Entity != hh.Entity {
		return nil
	}
	return f
}

// checkLabels returns the problems of labels at p: a label in zh and en.
func checkLabels(p string, labels map[string]string) SetErrors {
	var errs SetErrors
	for _, lang := range []string{LangZH, LangEN} {
		if labels[lang] == "" {
			errs = append(errs, SetError{Path: p + ".labels." + lang, Message: "needs a label in " + lang})
		}
	}
	return errs
}

// isCode reports whether s is a non-empty code of lower-case ASCII
// letters, digits and underscores, starting with a letter.
func isCode(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
