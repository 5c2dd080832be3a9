package cli

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// runBatches starts a background job of the server: first (nil for
// none; when it fails the job ends, its error logged by first), then at
// once and every every, it calls step with the server's clock (now) until
// step reports nothing left, one batch (one write transaction) a call,
// and logs a failure under what (the next tick tries again). The returned
// stop ends the job and waits for it. The verdicts' refresher and the
// summaries' rejudge both run in it.
func runBatches(ctx context.Context, every time.Duration, now func() time.Time, log *slog.Logger, what string,
	first func(ctx context.Context) error, step func(ctx context.Context, now time.Time) (left int, err error)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if first != nil && first(ctx) != nil {
			return
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			for {
				left, err := step(ctx, now())
				if err != nil {
					if ctx.Err() == nil {
						log.Error(what, "err", err)
					}
					break
				}
				if left == 0 || ctx.Err() != nil {
					break
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}
