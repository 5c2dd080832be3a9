package verify

import (
	"bytes"
	"encoding/json"

	"github.com/fieldsync/fieldsync/schema"
)

// Area is the verification of one village, township (9 digits) or county
// (6 digits): how many of its households are verified, blocked (and by
// which guarantees: a household blocked by two counts in both) and
// incomplete; a village names its households not verified.
type Area struct {
	Level      string         `json:"level"`
	Code       string         `json:"code"`
	Name       string         `json:"name,omitempty"`
	Households int            `json:"households"`
	Verified   int            `json:"verified"`
	Blocked    int            `json:"blocked"`
	BlockedBy  map[string]int `json:"blocked_by"`
	Incomplete int            `json:"incomplete"`
	// NeverVerified names, for a village, its households not verified as
	// of the day: blocked or incomplete.
	NeverVerified []Unverified `json:"never_verified,omitempty"`
	// Followups is the area's follow-up picture when the roll-up follows
	// up (Rollup.FollowUp): nil otherwise.
	Followups *FollowupCounts `json:"followups,omitempty"`
}

// Unverified names a household that is not verified, and why.
type Unverified struct {
	Household string   `json:"household"`
	HeadName  string   `json:"head_name"`
	Overall   Overall  `json:"overall"`
	By        []string `json:"by,omitempty"`
}

// The levels of an Area.
const (
	LevelVillage  = "village"
	LevelTownship = "township"
	LevelCounty   = "county"
	LevelTotal    = "total"
)

// Rollup counts verdicts per village, township and county. Verdicts come
// in village order (as the household stream gives them): a village is
// complete when the next one starts, so that Rollup holds one village's
// list at a time, and the townships and counties, which are few.
type Rollup struct {
	guarantees []string
	village    *Area
	townships  []*Area
	counties   []*Area
	total      *Area
	// following and statuses: the roll-up counts follow-ups (FollowUp).
	following bool
	statuses  []string
}

// NewRollup returns an empty roll-up of the verifier's guarantees.
func (v *Verifier) NewRollup() *Rollup {
	r := &Rollup{}
	for _, g := range v.decl.Guarantees {
		r.guarantees = append(r.guarantees, g.Name)
	}
	r.total = r.area(LevelTotal, "")
	return r
}

func (r *Rollup) area(level, code string) *Area {
	a := &Area{Level: level, Code: code, BlockedBy: map[string]int{}}
	for _, g := range r.guarantees {
		a.BlockedBy[g] = 0
	}
	if r.following {
		a.Followups = r.followups()
	}
	return a
}

func prefix(code string, n int) string {
	if len(code) < n {
		return code
	}
	return code[:n]
}

// Add counts a verdict; it returns the village before it when the verdict
// starts another village (complete: no verdict of it follows), else nil.
func (r *Rollup) Add(v *Verdict) *Area {
	var done *Area
	if r.village != nil && r.village.Code != v.Village {
		done = r.village
		r.village = nil
	}
	if r.village == nil {
		r.village = r.area(LevelVillage, v.Village)
	}
	t := prefix(v.Village, 9)
	if n := len(r.townships); n == 0 || r.townships[n-1].Code != t {
		r.townships = append(r.townships, r.area(LevelTownship, t))
	}
	c := prefix(v.Village, 6)
	if n := len(r.counties); n == 0 || r.counties[n-1].Code != c {
		r.counties = append(r.counties, r.area(LevelCounty, c))
	}
	for _, a := range []*Area{r.village, r.townships[len(r.townships)-1], r.counties[len(r.counties)-1], r.total} {
		a.Households++
		switch v.Overall {
		case Verified:
			a.Verified++
		case Blocked:
			a.Blocked++
			for _, g := range v.By {
				a.BlockedBy[g]++
			}
		default:
			a.Incomplete++
		}
	}
	if v.Overall != Verified {
		r.village.NeverVerified = append(r.village.NeverVerified, Unverified{Household: v.Household, HeadName: v.HeadName, Overall: v.Overall, By: v.By})
	}
	return done
}

// Finish returns the last village (nil when no verdict came), the
// townships and counties in code order, and the totals.
func (r *Rollup) Finish() (last *Area, townships, counties []Area, total Area) {
	for _, a := range r.townships {
		townships = append(townships, *a)
	}
	for _, a := range r.counties {
		counties = append(counties, *a)
	}
	return r.village, townships, counties, *r.total
}

// MarshalJSON writes the verdict with each guarantee's outcome under the
// guarantee's name, in the verification's order: {"household", "village",
// "head_name", "overall", "by", "food": {...}, …, "standards", "as_of"}.
func (v Verdict) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	put := func(key string, val any) error {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		b.Write(k)
		b.WriteByte(':')
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(val); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1)
		return nil
	}
	b.WriteByte('{')
	by := v.By
	if by == nil {
		by = []string{}
	}
	fields := []struct {
		k string
		v any
	}{{"household", v.Household}, {"village", v.Village}, {"village_name", v.VillageName}, {"head_name", v.HeadName},
		{"overall", v.Overall}, {"by", by}}
	for _, f := range fields {
		if err := put(f.k, f.v); err != nil {
			return nil, err
		}
	}
	for _, g := range v.Guarantees {
		if err := put(g.Guarantee, guaranteeJSON{Outcome: g.Outcome, Criteria: g.Criteria, Standards: g.Standards}); err != nil {
			return nil, err
		}
	}
	if err := put("standards", v.Standards); err != nil {
		return nil, err
	}
	if err := put("as_of", v.AsOf); err != nil {
		return nil, err
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// guaranteeJSON is a guarantee's outcome under its name in a verdict's
// JSON.
type guaranteeJSON struct {
	Outcome   Outcome                  `json:"outcome"`
	Criteria  []CriterionOutcome       `json:"criteria"`
	Standards []schema.AppliedStandard `json:"standards,omitempty"`
}
