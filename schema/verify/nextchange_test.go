package verify

import (
	"os"
	"testing"
	"time"
)

// TestEvidenceExpiryIsTheDayTheOutcomeTurns: for a household's water
// and housing inspections dated at a month's end or not (where the
// calendar's month arithmetic makes the age's bound uneven), judged day by
// day for fourteen months, EvidenceExpiry on every day is exactly the next
// day on which a guarantee's outcome differs from that day's (none within
// the fourteen months: none, or one after them).
func TestEvidenceExpiryIsTheDayTheOutcomeTurns(t *testing.T) {
	v := mustVerifier(t, os.DirFS("testdata"))
	for _, dated := range []string{"2025-03-02", "2025-01-31", "2024-02-29", "2025-10-15"} {
		h := household(t, "500240107201")
		set(t, child(h, "w1").Fields, "inspected_on", dated)
		set(t, child(h, "i1").Fields, "inspected_on", dated)
		start, _ := time.Parse(time.DateOnly, dated)
		days := 14 * 31
		water := make([]string, days)
		for i := range water {
			for _, g := range v.Evaluate(h, start.AddDate(0, 0, i)).Guarantees {
				water[i] += string(g.Outcome) + " "
			}
		}
		turns := 0
		for i := range days - 1 {
			want := time.Time{}
			for j := i + 1; j < days; j++ {
				if water[j] != water[i] {
					want = start.AddDate(0, 0, j)
					break
				}
			}
			got := v.EvidenceExpiry(h, start.AddDate(0, 0, i))
			if !got.Equal(want) && !(want.IsZero() && !got.Before(start.AddDate(0, 0, days))) {
				t.Fatalf("inspected %s, judged %s: expiry %s, the outcome next turns on %s", dated,
					start.AddDate(0, 0, i).Format(time.DateOnly), got.Format(time.DateOnly), want.Format(time.DateOnly))
			}
			if i > 0 && water[i] != water[i-1] {
				turns++
			}
		}
		if turns == 0 {
			t.Errorf("inspected %s: the water evidence never turned stale in fourteen months", dated)
		}
	}
}
