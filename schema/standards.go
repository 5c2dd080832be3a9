package schema

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// StandardsFile is the file of a version directory that declares the
// published standards its rules compare with: the thresholds, each with
// its editions and the dates they take effect, and the classes of regions
// a threshold may differ by (docs/forms.md, "Standards").
const StandardsFile = "standards.json"

// The directions of a standard: a value meets a min standard when it is at
// least the standard's value, a max standard when it is at most.
const (
	DirectionMin = "min"
	DirectionMax = "max"
)

// The bases of an applied standard's value (AppliedStandard.Basis): the
// edition's national value, a class's ("class water_scarce") or a regional
// one ("regional 61").
const (
	BasisNational = "national"
	BasisClass    = "class"
	BasisRegional = "regional"
)

// StandardSet is what a version's StandardsFile declares: classes of
// regions and the standards. It is immutable once loaded.
type StandardSet struct {
	Classes   []RegionClass `json:"classes,omitempty"`
	Standards []Standard    `json:"standards"`
}

// RegionClass is a named class of regions (water-scarce areas), its
// members given as division-code prefixes, with the source that sets it.
type RegionClass struct {
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels"`
	Source  string            `json:"source"`
	Regions []string          `json:"regions"`
}

// Standard is one published threshold: its unit, its direction (min or
// max), whether regional values may focus it (Regional), and its editions
// in the order they took effect.
type Standard struct {
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels"`
	Unit      string            `json:"unit"`
	Direction string            `json:"direction"`
	Regional  bool              `json:"regional,omitempty"`
	Editions  []Edition         `json:"editions"`
}

// Edition is one edition of a standard: the document's version, the day it
// takes effect (YYYY-MM-DD), its source, the national value, the values of
// classes of regions, and regional values by division-code prefix.
type Edition struct {
	Version   string             `json:"version"`
	Effective string             `json:"effective"`
	Source    string             `json:"source"`
	Value     *float64           `json:"value"`
	Classes   map[string]float64 `json:"classes,omitempty"`
	Regional  []RegionalValue    `json:"regional,omitempty"`
}

// RegionalValue is an edition's value in the regions whose division code
// starts with one of Regions, and why.
type RegionalValue struct {
	Regions     []string          `json:"regions"`
	Value       float64           `json:"value"`
	Description map[string]string `json:"description"`
}

// AppliedStandard is a standard as a judgement applied it: its name, the
// edition's version and effective date, the value, and the basis of that
// value (BasisNational, "class NAME" or "regional PREFIX").
type AppliedStandard struct {
	Name      string  `json:"name"`
	Version   string  `json:"version"`
	Effective string  `json:"effective"`
	Value     float64 `json:"value"`
	Basis     string  `json:"basis"`
}

// Standard returns the named standard, or nil.
func (s *StandardSet) Standard(name string) *Standard {
	if s == nil {
		return nil
	}
	for i := range s.Standards {
		if s.Standards[i].Name == name {
			return &s.Standards[i]
		}
	}
	return nil
}

func (s *StandardSet) class(name string) *RegionClass {
	for i := range s.Classes {
		if s.Classes[i].Name == name {
			return &s.Classes[i]
		}
	}
	return nil
}

// InEffect returns the edition of the standard in effect on day: the one
// with the latest effective date not after it; nil before the first.
func (st *Standard) InEffect(day time.Time) *Edition {
	d := day.UTC().Format(time.DateOnly)
	var in *Edition
	for i := range st.Editions {
		if st.Editions[i].Effective <= d {
			in = &st.Editions[i]
		}
	}
	return in
}

// Resolve returns the value of the named standard for the region (a
// division code) on day: the edition in effect; its regional value of the
// longest prefix of region (only for a standard that allows regional
// values), else the value of the class region is in (by the longest
// prefix), else its national value. ok is false when the set has no such
// standard or no edition is in effect on day.
func (s *StandardSet) Resolve(name, region string, day time.Time) (AppliedStandard, bool) {
	st := s.Standard(name)
	if st == nil {
		return AppliedStandard{}, false
	}
	ed := st.InEffect(day)
	if ed == nil || ed.Value == nil {
		return AppliedStandard{}, false
	}
	out := AppliedStandard{Name: st.Name, Version: ed.Version, Effective: ed.Effective}
	if st.Regional {
		best := ""
		for _, rv := range ed.Regional {
			for _, p := range rv.Regions {
				if strings.HasPrefix(region, p) && len(p) > len(best) {
					best, out.Value = p, rv.Value
				}
			}
		}
		if best != "" {
			out.Basis = BasisRegional + " " + best
			return out, true
		}
	}
	out.Value, out.Basis = s.baseline(ed, region)
	return out, true
}

// baseline is an edition's value for region without its regional values:
// the value of the class region is in by the longest prefix, else the
// national one.
func (s *StandardSet) baseline(ed *Edition, region string) (float64, string) {
	best, value, basis := "", *ed.Value, BasisNational
	for _, name := range slices.Sorted(maps.Keys(ed.Classes)) {
		c := s.class(name)
		if c == nil {
			continue
		}
		for _, p := range c.Regions {
			if strings.HasPrefix(region, p) && len(p) > len(best) {
				best, value, basis = p, ed.Classes[name], BasisClass+" "+name
			}
		}
	}
	return value, basis
}

// Meets reports whether x meets a value of the standard: at least it for
// a min standard, at most it for a max one.
func (st *Standard) Meets(x, value float64) bool {
	if st.Direction == DirectionMax {
		return x <= value
	}
	return x >= value
}

// StandardWarning is a regional value that tightens its standard: one a
// region may not set, since the national standards are neither raised nor
// lowered (a region may focus its checks, not tighten them). It does not
// stop a form set from loading; `fieldsync forms check` prints it.
type StandardWarning struct {
	File    string
	Path    string
	Message string
}

func (w StandardWarning) String() string { return w.File + ": " + w.Path + ": " + w.Message }

// Warnings returns a warning for every regional value stricter than the
// value its edition gives the region otherwise (the class's or the
// national one): for a min standard a regional value above it, for a max
// standard one below it. file names the StandardsFile in the warnings.
func (s *StandardSet) Warnings(file string) []StandardWarning {
	if s == nil {
		return nil
	}
	var out []StandardWarning
	for i := range s.Standards {
		st := &s.Standards[i]
		for j := range st.Editions {
			ed := &st.Editions[j]
			if ed.Value == nil {
				continue
			}
			for k, rv := range ed.Regional {
				for l, p := range rv.Regions {
					base, basis := s.baseline(ed, p)
					if rv.Value == base || st.Meets(base, rv.Value) {
						continue
					}
					out = append(out, StandardWarning{File: file,
						Path: fmt.Sprintf("standards[%d].editions[%d].regional[%d].regions[%d]", i, j, k, l),
						Message: fmt.Sprintf("%s %s in %s is %g %s, stricter than the %s value %g: standards are neither raised nor lowered, a region may focus its checks but not tighten them",
							st.Name, ed.Version, p, rv.Value, st.Unit, basis, base)})
				}
			}
		}
	}
	return out
}

// check returns every problem of the set, each with its JSON path in the
// file: unknown or missing members, unknown classes, editions overlapping
// or out of order, bad dates and prefixes, regional values on a standard
// that allows none.
func (s *StandardSet) check() []SetError {
	var errs []SetError
	bad := func(path, format string, a ...any) {
		errs = append(errs, SetError{Path: path, Message: fmt.Sprintf(format, a...)})
	}
	twoLangs := func(path string, m map[string]string) {
		if m[LangZH] == "" || m[LangEN] == "" {
			bad(path, "needs zh and en")
		}
	}
	prefixes := func(path string, ps []string) {
		if len(ps) == 0 {
			bad(path, "must name at least one region (a division-code prefix)")
		}
		for i, p := range ps {
			if len(p) < 2 || len(p) > 12 || !IsDigits(p) {
				bad(fmt.Sprintf("%s[%d]", path, i), "%q is no division-code prefix (2 to 12 digits)", p)
			}
		}
	}
	classes := map[string]int{}
	for i, c := range s.Classes {
		at := fmt.Sprintf("classes[%d]", i)
		if prev, dup := classes[c.Name]; dup {
			bad(at+".name", "%q is also the name of classes[%d]", c.Name, prev)
		} else if c.Name == "" {
			bad(at+".name", "is required")
		} else {
			classes[c.Name] = i
		}
		twoLangs(at+".labels", c.Labels)
		if strings.TrimSpace(c.Source) == "" {
			bad(at+".source", "is required: the document that sets the class")
		}
		prefixes(at+".regions", c.Regions)
	}
	if len(s.Standards) == 0 {
		bad("standards", "must hold at least one standard")
	}
	names := map[string]int{}
	for i, st := range s.Standards {
		at := fmt.Sprintf("standards[%d]", i)
		if prev, dup := names[st.Name]; dup {
			bad(at+".name", "%q is also the name of standards[%d]", st.Name, prev)
		} else if st.Name == "" {
			bad(at+".name", "is required")
		} else {
			names[st.Name] = i
		}
		twoLangs(at+".labels", st.Labels)
		if strings.TrimSpace(st.Unit) == "" {
			bad(at+".unit", "is required")
		}
		if st.Direction != DirectionMin && st.Direction != DirectionMax {
			bad(at+".direction", "must be min or max, not %q", st.Direction)
		}
		if len(st.Editions) == 0 {
			bad(at+".editions", "must hold at least one edition")
		}
		for j, ed := range st.Editions {
			ep := fmt.Sprintf("%s.editions[%d]", at, j)
			if strings.TrimSpace(ed.Version) == "" {
				bad(ep+".version", "is required: the version of the published document")
			}
			if strings.TrimSpace(ed.Source) == "" {
				bad(ep+".source", "is required: the document the edition is published in")
			}
			if _, err := time.Parse(time.DateOnly, ed.Effective); err != nil {
				bad(ep+".effective", "%q is not a date (YYYY-MM-DD)", ed.Effective)
			} else if j > 0 {
				prev := st.Editions[j-1].Effective
				switch {
				case ed.Effective == prev:
					bad(ep+".effective", "editions[%d] takes effect on %s too: editions overlap", j-1, prev)
				case ed.Effective < prev:
					bad(ep+".effective", "%s is before editions[%d]'s %s: editions are listed in the order they take effect", ed.Effective, j-1, prev)
				}
			}
			if ed.Value == nil {
				bad(ep+".value", "is required: the national value")
			}
			for _, name := range slices.Sorted(maps.Keys(ed.Classes)) {
				if _, ok := classes[name]; !ok {
					bad(ep+".classes."+name, "unknown class %q (classes: %s)", name, strings.Join(slices.Sorted(maps.Keys(classes)), ", "))
				}
			}
			if len(ed.Regional) > 0 && !st.Regional {
				bad(ep+".regional", "%s allows no regional value (regional is not true)", st.Name)
				continue
			}
			seen := map[string]string{}
			for k, rv := range ed.Regional {
				rp := fmt.Sprintf("%s.regional[%d]", ep, k)
				prefixes(rp+".regions", rv.Regions)
				twoLangs(rp+".description", rv.Description)
				for l, p := range rv.Regions {
					pp := fmt.Sprintf("%s.regions[%d]", rp, l)
					if prev, dup := seen[p]; dup {
						bad(pp, "region %s has a regional value at %s too", p, prev)
					}
					seen[p] = pp
				}
			}
		}
	}
	return errs
}
