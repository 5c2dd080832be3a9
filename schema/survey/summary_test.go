package survey

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// TestAppendEqualsSummarize is the property of the incremental summary:
// a household's summary with inspections appended one by one (Append,
// from the summary alone) equals the summary of all its inspections
// (Summarize), for random households of both kinds of inspection, on few
// days and from few devices (duplicate visits), with re-inspections
// naming earlier, later and unknown inspections, in any order of server
// time. Where Append declines (ok false), the summary is made from the
// inspections, as the stores do, and the appending goes on from it.
func TestAppendEqualsSummarize(t *testing.T) {
	for _, sch := range []*schema.Schema{schema.V1(), schema.BuiltIn().Latest()} {
		t.Run(fmt.Sprint("v", sch.Version), func(t *testing.T) {
			testAppendEqualsSummarize(t, sch)
		})
	}
}

func testAppendEqualsSummarize(t *testing.T, sch *schema.Schema) {
	sum := NewSummarizer(sch)
	forms := sum.Forms()
	asOf := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	appended, declined := 0, 0
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 5))
		status := []string{"", "in_poverty", "lifted_out", "relapse_risk"}[rng.IntN(4)]
		h := &HouseholdInspections{ID: "hh", Village: "500240107201", Status: status}
		var ids []string
		at := asOf.Add(-30 * 24 * time.Hour)
		n := 1 + rng.IntN(12)
		// Some inspections name ids made later (a re-inspection pushed
		// before what it re-inspects) or never made.
		// (the next one most often: with one naming it back, every
		// housing inspection can be named, see currentHousing).
		future := func(i int) string {
			if rng.IntN(2) == 0 {
				return fmt.Sprint("in", i+1)
			}
			return fmt.Sprint("in", rng.IntN(n+2))
		}
		var cur *HouseholdSummary
		for i := range n {
			in := InspectionFacts{ID: fmt.Sprint("in", i), Device: []string{"d1", "d2", "d3"}[rng.IntN(3)], Seq: int64(i + 1)}
			// Server times mostly increase, sometimes not (clocks).
			at = at.Add(time.Duration(rng.IntN(100)-10) * time.Minute)
			in.UpdatedAt = at
			if rng.IntN(6) > 0 {
				in.InspectedOn = asOf.AddDate(0, 0, -1-rng.IntN(4)).Format(time.DateOnly)
			}
			if rng.IntN(4) == 0 {
				if len(ids) > 0 && rng.IntN(2) == 0 {
					in.PreviousID = ids[rng.IntN(len(ids))]
				} else {
					in.PreviousID = future(i)
				}
			}
			if rng.IntN(2) == 0 {
				in.Kind, in.Entity = KindHousing, forms.Entity(KindHousing)
				in.Grade = []string{"A", "B", "C", "D", ""}[rng.IntN(5)]
				in.Renovation = []string{"", "none", "planned", "verified"}[rng.IntN(4)]
			} else {
				in.Kind, in.Entity = KindWater, forms.Entity(KindWater)
				in.Fields = map[string]json.RawMessage{
					"source":                json.RawMessage(`"piped"`),
					"quality_ok":            json.RawMessage([]string{"true", "false"}[rng.IntN(2)]),
					"liters_per_person_day": json.RawMessage(fmt.Sprint(10 + rng.IntN(80))),
				}
				if rng.IntN(3) > 0 {
					in.Fields["fetch_minutes"] = json.RawMessage(fmt.Sprint(rng.IntN(40)))
				}
			}
			if cur == nil || rng.IntN(5) == 0 {
				h.Inspections = append(h.Inspections, in)
				ids = append(ids, in.ID)
				s := sum.Summarize(h, asOf)
				cur = &s
				continue
			}
			live := func(id string) (bool, error) {
				for _, x := range ids {
					if x == id {
						return true, nil
					}
				}
				return false, nil
			}
			next, ok, err := sum.Append(roundTrip(t, cur), &in, asOf, live)
			if err != nil {
				t.Fatal(err)
			}
			h.Inspections = append(h.Inspections, in)
			ids = append(ids, in.ID)
			want := sum.Summarize(h, asOf)
			if !ok {
				declined++
				cur = &want
				continue
			}
			appended++
			// SameKeys, which lets a store skip the sums, never hides a
			// change of the counters.
			if cur.SameKeys(&next) && !reflect.DeepEqual(cur.Keys(), next.Keys()) {
				t.Fatalf("seed %d, inspection %d: SameKeys, yet the counters went from %v to %v", seed, i, cur.Keys(), next.Keys())
			}
			if !reflect.DeepEqual(roundTrip(t, &next), roundTrip(t, &want)) {
				t.Fatalf("seed %d, inspection %d (%+v):\nappended   %+v\nsummarized %+v", seed, i, in, next, want)
			}
			cur = &next
		}
	}
	t.Logf("appended %d inspections, declined %d", appended, declined)
	// The property must mostly be about appending, not declining.
	if appended < 4*declined || appended < 500 {
		t.Fatalf("appended %d inspections, declined %d", appended, declined)
	}
}

// roundTrip is the summary as a store keeps it: through its JSON.
func roundTrip(t *testing.T, s *HouseholdSummary) *HouseholdSummary {
	t.Helper()
	doc, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out HouseholdSummary
	if err := json.Unmarshal(doc, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}
