package monitor

// Counts are the follow-ups of an area — a village, or the whole region
// a list covers: how many households were judged, how many are
// monitored, listed for a visit and due for it, and how many are in
// each monitoring status (the relapse counts are ByStatus's relapsed).
type Counts struct {
	Level      string `json:"level"`
	Code       string `json:"code"`
	Name       string `json:"name,omitempty"`
	Households int    `json:"households"`
	Monitored  int    `json:"monitored"`
	Listed     int    `json:"listed"`
	Due        int    `json:"due"`
	// ByStatus counts the monitored households by status, every declared
	// status present (zero when none).
	ByStatus map[string]int `json:"by_status"`
}

// NewCounts returns empty counts of an area at level with code.
func (m *Monitor) NewCounts(level, code string) *Counts {
	c := &Counts{Level: level, Code: code, ByStatus: map[string]int{}}
	for _, s := range m.decl.Statuses {
		c.ByStatus[s.Name] = 0
	}
	return c
}

// Add counts one household's follow-up.
func (c *Counts) Add(f *Followup) {
	c.Households++
	if !f.Monitored {
		return
	}
	c.Monitored++
	c.ByStatus[f.Status]++
	if f.Listed() {
		c.Listed++
	}
	if f.Due {
		c.Due++
	}
}
