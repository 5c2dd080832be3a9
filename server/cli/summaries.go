package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// keepSummaries has a store that can keep the coverage aggregates
// (syncproto.SummaryStore) keep them by the forms the server serves,
// rebuilding them first when they were kept by other forms or standards,
// or written by a command that does not keep them (seed, import). It logs
// how long a rebuild took; a store without aggregates is left alone (its
// reports read every household).
func keepSummaries(ctx context.Context, store any, sch *schema.Schema, log *slog.Logger) error {
	ss, ok := store.(syncproto.SummaryStore)
	if !ok {
		return nil
	}
	began := time.Now()
	if err := ss.KeepSummaries(ctx, survey.NewSummarizer(sch), time.Now()); err != nil {
		return err
	}
	if took := time.Since(began); took > time.Second {
		log.Info("coverage summaries rebuilt", "took", took.Round(time.Millisecond).String())
	}
	return nil
}
