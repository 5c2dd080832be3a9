package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// summaryRejudgeEvery is how often the server looks whether a standard's
// edition took effect since the coverage summaries were judged (an
// in-memory comparison of days: it writes nothing until one did), so the
// rejudge begins at most this long after the day's turn.
const summaryRejudgeEvery = 30 * time.Second

// keepSummaries has a store that can keep the coverage aggregates
// (syncproto.SummaryStore) keep them by the forms the server serves,
// rebuilding them first, before the server listens, when they were kept
// by other forms, or written by a command that does not keep them (seed,
// import), or never kept. It logs how long a rebuild took. It then starts
// the job that, from serving on and at every day's turn of the clock now,
// judges them again when a standard's edition took effect
// (syncproto.SummaryStore.RejudgeSummaries: batch by batch of villages,
// through the write path, the old sums served meanwhile; a rejudge
// stopped by a restart resumes with it). stop ends the job and waits for
// it. A store without aggregates is left alone (its reports read every
// household).
func keepSummaries(ctx context.Context, store any, sch *schema.Schema, now func() time.Time, every time.Duration, log *slog.Logger) (stop func(), err error) {
	ss, ok := store.(syncproto.SummaryStore)
	if !ok {
		return func() {}, nil
	}
	began := time.Now()
	if err := ss.KeepSummaries(ctx, survey.NewSummarizer(sch), now()); err != nil {
		return nil, err
	}
	if took := time.Since(began); took > time.Second {
		log.Info("coverage summaries rebuilt", "took", took.Round(time.Millisecond).String())
	}
	var rejudging time.Time
	return runBatches(ctx, every, now, log, "judging the coverage summaries again", nil,
		func(ctx context.Context, today time.Time) (int, error) {
			if rejudging.IsZero() {
				rejudging = time.Now()
			}
			left, err := ss.RejudgeSummaries(ctx, today, syncproto.SummaryRejudgeBatch)
			if err == nil && left == 0 {
				if took := time.Since(rejudging); took > time.Second {
					log.Info("coverage summaries judged again under a standard's new edition", "took", took.Round(time.Millisecond).String())
				}
				rejudging = time.Time{}
			}
			return left, err
		}), nil
}
