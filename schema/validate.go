package schema

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// FieldError is one validation failure, with the path of the offending value
// in the request ("changes[3].fields.grade"), and the name of the form's
// rule that failed when a rule did (Rule, docs/forms.md).
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
	Rule    string `json:"rule,omitempty"`
}

// Null is the canonical JSON of an unset field. Setting a field to null
// clears it; a required field cannot be cleared.
var Null = json.RawMessage("null")

// Validate checks fields against the form and returns them in canonical
// form: sets sorted and without duplicates, numbers in shortest form, so that
// equal values have equal bytes. Every error is returned, each with the path
// "fields.<name>". A field set to null is kept as Null. Date ranges relative
// to today (max_days_ahead) are taken from this machine's clock; a server
// with a clock of its own calls ValidateAt.
func (f *Form) Validate(fields map[string]json.RawMessage) (map[string]json.RawMessage, []FieldError) {
	return f.ValidateAt(fields, time.Now())
}

// ValidateAt is Validate with now as the clock that date ranges relative to
// today are measured from.
func (f *Form) ValidateAt(fields map[string]json.RawMessage, now time.Time) (map[string]json.RawMessage, []FieldError) {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make(map[string]json.RawMessage, len(fields))
	var errs []FieldError
	for _, name := range names {
		path := "fields." + name
		fd := f.byName[name]
		if fd == nil {
			errs = append(errs, FieldError{Path: path, Message: fmt.Sprintf("unknown field of %s", f.Entity)})
			continue
		}
		raw := bytes.TrimSpace(fields[name])
		if bytes.Equal(raw, Null) || len(raw) == 0 {
			if fd.Required {
				errs = append(errs, FieldError{Path: path, Message: "is required and cannot be null"})
				continue
			}
			out[name] = Null
			continue
		}
		norm, ferr := fd.NormalizeAt(raw, now)
		if ferr != nil {
			ferr.Path = path
			errs = append(errs, *ferr)
			continue
		}
		out[name] = norm
	}
	return out, errs
}

// CheckCreate reports the required fields (always required, and required by
// the region rules matching region) that a new record does not carry.
func (f *Form) CheckCreate(fields map[string]json.RawMessage, region string) []FieldError {
	var errs []FieldError
	for _, name := range f.RequiredIn(region) {
		v, ok := fields[name]
		if !ok || bytes.Equal(v, Null) {
			msg := "is required"
			if !f.byName[name].Required {
				msg = "is required in region " + region + " (" + f.ruleFor(name, region) + ")"
			}
			errs = append(errs, FieldError{Path: "fields." + name, Message: msg})
		}
	}
	return errs
}

func (f *Form) ruleFor(field, region string) string {
	for _, r := range f.RegionRules {
		if matchesPrefix(region, r.Prefixes) {
			for _, n := range r.Require {
				if n == field {
					return r.Name
				}
			}
		}
	}
	return ""
}

// Normalize checks one non-null value against the field's type and
// constraints and returns its canonical JSON. The returned error has no path.
// A date's range relative to today is taken from this machine's clock.
func (fd *Field) Normalize(raw json.RawMessage) (json.RawMessage, *FieldError) {
	return fd.NormalizeAt(raw, time.Now())
}

// NormalizeAt is Normalize with now as the clock that a date field's
// max_days_ahead is counted from (its UTC date).
func (fd *Field) NormalizeAt(raw json.RawMessage, now time.Time) (json.RawMessage, *FieldError) {
	fail := func(format string, a ...any) (json.RawMessage, *FieldError) {
		return nil, &FieldError{Message: fmt.Sprintf(format, a...)}
	}
	switch fd.Type {
	case TypeText:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return fail("must be a string")
		}
		s = strings.TrimSpace(s)
		if !utf8.ValidString(s) {
			return fail("must be valid UTF-8")
		}
		if fd.Required && s == "" {
			return fail("must not be empty")
		}
		if fd.MaxLength > 0 && utf8.RuneCountInString(s) > fd.MaxLength {
			return fail("must be at most %d characters", fd.MaxLength)
		}
		return marshal(s)
	case TypeInteger, TypeNumber:
		var n json.Number
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if len(raw) == 0 || raw[0] == '"' || dec.Decode(&n) != nil {
			return fail("must be a number")
		}
		x, err := n.Float64()
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return fail("must be a finite number")
		}
		if fd.Type == TypeInteger && x != math.Trunc(x) {
			return fail("must be a whole number")
		}
		if fd.Min != nil && x < *fd.Min || fd.Max != nil && x > *fd.Max {
			return fail("must be %s", rangeText(fd.Min, fd.Max))
		}
		return marshal(x)
	case TypeBoolean:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return fail("must be true or false")
		}
		return marshal(b)
	case TypeEnum:
		var s string
		if json.Unmarshal(raw, &s) != nil || !contains(fd.Values, s) {
			return fail("must be one of %s", strings.Join(fd.Values, ", "))
		}
		return marshal(s)
	case TypeSet:
		var items []string
		if json.Unmarshal(raw, &items) != nil {
			return fail("must be a list of strings")
		}
		seen := map[string]bool{}
		out := make([]string, 0, len(items))
		for i, it := range items {
			if fd.Items == "sha256" {
				it = strings.ToLower(it)
				if len(it) != 64 || !isHex(it) {
					return fail("item %d must be a SHA-256 digest (64 hex digits)", i)
				}
			} else if !contains(fd.Values, it) {
				return fail("item %d must be one of %s", i, strings.Join(fd.Values, ", "))
			}
			if !seen[it] {
				seen[it] = true
				out = append(out, it)
			}
		}
		// The bound counts distinct items: a set that repeats an item
		// means it once (as v1 always read it), so only a set of more
		// distinct items than the form allows is refused. The streaming
		// check (syncproto.SetItemsCap) has already bounded the list.
		if n := fd.SetBound(); n > 0 && len(out) > n {
			return fail("must hold at most %d items", n)
		}
		sort.Strings(out)
		return marshal(out)
	case TypeDate:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return fail("must be a date (YYYY-MM-DD)")
		}
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return fail("must be a date (YYYY-MM-DD)")
		}
		if lo, hi := fd.DateRange(now); (lo != "" && s < lo) || (hi != "" && s > hi) {
			return fail("must be a date %s", dateRangeText(fd, lo, hi))
		}
		return marshal(s)
	case TypeDivisionCode:
		var s string
		if json.Unmarshal(raw, &s) != nil || !IsDivisionCode(s) {
			return fail("must be a 12-digit division code")
		}
		return marshal(s)
	case TypeReference:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return fail("must be the id of a %s", fd.Entity)
		}
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			return fail("must be the id (UUID) of a %s", fd.Entity)
		}
		return marshal(id.String())
	case TypeLocation:
		var loc struct {
			Lat *float64 `json:"lat"`
			Lon *float64 `json:"lon"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if dec.Decode(&loc) != nil || loc.Lat == nil || loc.Lon == nil {
			return fail(`must be {"lat": number, "lon": number}`)
		}
		if *loc.Lat < -90 || *loc.Lat > 90 || *loc.Lon < -180 || *loc.Lon > 180 {
			return fail("must have lat in -90..90 and lon in -180..180")
		}
		return marshal(map[string]float64{"lat": *loc.Lat, "lon": *loc.Lon})
	}
	return fail("has an unsupported type %q", fd.Type)
}

// Rank returns the rank of a canonical value in the field's severity
// order (higher is more severe), or -1 when it is not in the order.
func (fd *Field) Rank(v json.RawMessage) int {
	for i, s := range fd.Severity {
		if bytes.Equal(s, v) {
			return i
		}
	}
	return -1
}

// IsDivisionCode reports whether s is a 12-digit administrative division code.
func IsDivisionCode(s string) bool {
	if len(s) != 12 {
		return false
	}
	return IsDigits(s)
}

// IsDigits reports whether s is non-empty and made of ASCII digits only.
func IsDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func marshal(v any) (json.RawMessage, *FieldError) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &FieldError{Message: "cannot be encoded"}
	}
	return b, nil
}

func rangeText(min, max *float64) string {
	switch {
	case min != nil && max != nil:
		return fmt.Sprintf("between %g and %g", *min, *max)
	case min != nil:
		return fmt.Sprintf("at least %g", *min)
	default:
		return fmt.Sprintf("at most %g", *max)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// DateRange returns the earliest and latest values a date field accepts at
// now, as YYYY-MM-DD ("" where the form sets no bound). Dates in that form
// compare as strings.
func (fd *Field) DateRange(now time.Time) (earliest, latest string) {
	if fd.MaxDaysAhead != nil {
		latest = now.UTC().AddDate(0, 0, *fd.MaxDaysAhead).Format(time.DateOnly)
	}
	return fd.MinDate, latest
}

func dateRangeText(fd *Field, lo, hi string) string {
	ahead := ""
	if fd.MaxDaysAhead != nil {
		ahead = fmt.Sprintf(" (today plus %d days)", *fd.MaxDaysAhead)
		if *fd.MaxDaysAhead == 1 {
			ahead = " (today plus 1 day)"
		}
	}
	switch {
	case lo != "" && hi != "":
		return fmt.Sprintf("from %s to %s%s", lo, hi, ahead)
	case lo != "":
		return "not before " + lo
	default:
		return "not after " + hi + ahead
	}
}
