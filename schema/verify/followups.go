package verify

// FollowupCounts are the follow-up picture of an area beside its
// verification: how many of its households are monitored, how many are in
// each monitoring status (every status the monitoring declares present,
// zero when none; the relapse count is the relapsed status's), listed for
// a visit and due for it. schema/monitor judges each household (it
// imports this package, so the counts are declared here); the roll-up
// counts them.
type FollowupCounts struct {
	Monitored int            `json:"monitored"`
	Listed    int            `json:"listed"`
	Due       int            `json:"due"`
	ByStatus  map[string]int `json:"by_status"`
}

// Followed is one household's follow-up as a roll-up counts it: whether it
// is monitored, in which status, whether it is listed and due.
type Followed struct {
	Monitored bool
	Status    string
	Listed    bool
	Due       bool
}

// FollowUp makes the roll-up count follow-ups in statuses (the
// monitoring's, by name): from then on every area it starts carries
// Followups, and AddFollowed counts each household's. Call it before the
// first Add.
func (r *Rollup) FollowUp(statuses []string) {
	r.statuses = append([]string{}, statuses...)
	r.following = true
	r.total.Followups = r.followups()
}

func (r *Rollup) followups() *FollowupCounts {
	f := &FollowupCounts{ByStatus: map[string]int{}}
	for _, s := range r.statuses {
		f.ByStatus[s] = 0
	}
	return f
}

// AddFollowed counts the follow-up of the household whose verdict Add
// counted last, in its village, township, county and the totals. It does
// nothing unless the roll-up follows up (FollowUp) and after an Add.
func (r *Rollup) AddFollowed(f Followed) {
	if !r.following || r.village == nil {
		return
	}
	if !f.Monitored {
		return
	}
	for _, a := range []*Area{r.village, r.townships[len(r.townships)-1], r.counties[len(r.counties)-1], r.total} {
		a.Followups.Monitored++
		a.Followups.ByStatus[f.Status]++
		if f.Listed {
			a.Followups.Listed++
		}
		if f.Due {
			a.Followups.Due++
		}
	}
}
