package syncproto

import (
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema/survey"
)

// SummaryRejudgeBatch is how many villages one write transaction of a
// rejudge judges again (SummaryStore.RejudgeSummaries): a county's
// village of a hundred households costs a few milliseconds, so a push
// waits for at most a few dozen villages, never for the whole rebuild.
const SummaryRejudgeBatch = 20

// KeptSummaries is the state of a store's kept summaries as its settings
// hold it.
type KeptSummaries struct {
	// Key is the survey.Summarizer.Key they were made with.
	Key string
	// AsOf is the day ("YYYY-MM-DD") the sums as a whole are judged as
	// of.
	AsOf string
	// Rejudge, while a rejudge under a standard's new edition is under
	// way, is its day and the last village judged again
	// ("YYYY-MM-DD/village", the village "" before the first batch); ""
	// otherwise.
	Rejudge string
}

// KeptKeeper is the keeper of the summaries kept as kept says, when they
// may be kept on by sum: nil when they must be rebuilt first (another key,
// or no day). Summaries a standard's edition since judges otherwise are
// kept on too: their rejudge is SummaryStore.RejudgeSummaries', off the
// request path; while one is under way, writes judge as of its day.
func KeptKeeper(sum *survey.Summarizer, kept KeptSummaries) *SummaryKeeper {
	judged, err := time.Parse(time.DateOnly, kept.AsOf)
	if kept.Key != sum.Key() || err != nil {
		return nil
	}
	k := &SummaryKeeper{Sum: sum, AsOf: judged, JudgedAsOf: judged}
	if day, _, ok := splitRejudge(kept.Rejudge); ok {
		k.AsOf = day
	}
	return k
}

// splitRejudge reads KeptSummaries.Rejudge.
func splitRejudge(s string) (day time.Time, after string, ok bool) {
	d, after, found := strings.Cut(s, "/")
	day, err := time.Parse(time.DateOnly, d)
	return day, after, found && err == nil
}

// RejudgeState renders KeptSummaries.Rejudge: a rejudge as of day whose
// villages up to after are judged again.
func RejudgeState(day time.Time, after string) string {
	return day.UTC().Format(time.DateOnly) + "/" + after
}

// RejudgePlan is what the next batch of a rejudge does (PlanRejudge).
type RejudgePlan struct {
	// Due is false when there is nothing to judge again.
	Due bool
	// Day is the day the batch judges households as of.
	Day time.Time
	// After is the last village judged again already ("" for none): the
	// batch goes on with the villages after it, in code order.
	After string
}

// PlanRejudge returns the next batch of the rejudge of summaries kept as
// kept, by sum on the day today: none when no standard's edition took
// effect since they were judged (survey.Summarizer.Rejudge); the one under
// way, resumed after its last village, unless a further edition took
// effect since its day (then a new one, from the first village, as of
// today's day, UTC).
func PlanRejudge(sum *survey.Summarizer, kept KeptSummaries, today time.Time) RejudgePlan {
	day := today.UTC().Truncate(24 * time.Hour)
	if d, after, ok := splitRejudge(kept.Rejudge); ok {
		if sum.Rejudge(d, today) {
			return RejudgePlan{Due: true, Day: day}
		}
		return RejudgePlan{Due: true, Day: d, After: after}
	}
	judged, err := time.Parse(time.DateOnly, kept.AsOf)
	if err != nil || sum.Rejudge(judged, today) {
		return RejudgePlan{Due: true, Day: day}
	}
	return RejudgePlan{}
}

// RejudgeDue reports whether a rejudge is under way or due today by the
// keeper alone (no read of the store): the stores' RejudgeSummaries
// returns at once when it is not.
func (k *SummaryKeeper) RejudgeDue(today time.Time) bool {
	return !k.AsOf.Equal(k.JudgedAsOf) || k.Sum.Rejudge(k.JudgedAsOf, today)
}

// ReportDay is the day a read of the sums on the day today says they are
// judged as of (Cursor.JudgedAsOf, "YYYY-MM-DD"): today's (UTC) when they
// answer what a judgement as of today would (no rejudge under way or due:
// nothing in a summary but a standard's edition depends on the date), else
// the day they were judged as of.
func (k *SummaryKeeper) ReportDay(today time.Time) string {
	if k.RejudgeDue(today) {
		return k.JudgedAsOf.UTC().Format(time.DateOnly)
	}
	return today.UTC().Format(time.DateOnly)
}
