package cli

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/verify"
	"github.com/fieldsync/fieldsync/syncproto"
)

// verdictRefreshEvery is how often the background refresher looks for
// households to judge again (marked by a write, or whose next change day
// came). A roll-up read with few pending judges them itself
// (syncproto.ReportService.VerdictRollup), so this bounds only how far a
// large backlog lags.
const verdictRefreshEvery = 5 * time.Second

// keepVerdicts has a store that can keep the households' verdicts
// (syncproto.VerdictStore) keep them by the forms the server serves —
// judging every household first when they were kept by other forms, or
// never, in the background while the server listens — and then runs the
// refresher that judges again, batch by batch, the households writes
// marked and those whose next change day came. stop ends it and waits. A store that keeps none, or forms
// without a verification, are left alone (the roll-ups judge every
// household).
func keepVerdicts(ctx context.Context, store any, sch *schema.Schema, log *slog.Logger) (stop func(), err error) {
	vs, ok := store.(syncproto.VerdictStore)
	if !ok {
		return func() {}, nil
	}
	j, err := syncproto.NewVerdictJudge(sch)
	if errors.Is(err, verify.ErrNoVerification) {
		return func() {}, nil
	}
	if err != nil {
		return nil, err
	}
	// Judging every household (the first start, a new publication) takes
	// seconds to minutes: the server listens meanwhile, its roll-ups
	// judged live until the kept verdicts are installed.
	first := func(ctx context.Context) error {
		began := time.Now()
		if err := vs.KeepVerdicts(ctx, j, time.Now()); err != nil {
			if ctx.Err() == nil {
				log.Error("judging the household verdicts", "err", err)
			}
			return err
		}
		if took := time.Since(began); took > time.Second {
			log.Info("household verdicts judged", "took", took.Round(time.Millisecond).String())
		}
		return nil
	}
	return runBatches(ctx, verdictRefreshEvery, time.Now, log, "refreshing the household verdicts", first,
		func(ctx context.Context, now time.Time) (int, error) {
			return vs.RefreshVerdicts(ctx, now, syncproto.VerdictRefreshBatch)
		}), nil
}
