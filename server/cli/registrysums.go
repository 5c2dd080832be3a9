package cli

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// registrySumsEvery is how often the background refresher looks for
// villages an import or a household's write marked. A read of the sums
// reconciles a few marked villages itself
// (syncproto.RegistrySumsReadLimit), so this bounds only how far a large
// backlog (a rebuild of the summaries marks every village with registry
// rows) lags.
const registrySumsEvery = 5 * time.Second

// refreshRegistrySums starts the refresher that keeps the households only
// a registry lists in the kept sums of a store that can
// (syncproto.RegistrySumStore), by the registries the served forms
// declare: batch after batch of marked villages, at once and then every
// registrySumsEvery. stop ends it and waits for it. A store that keeps
// none, or forms declaring no registries, are left alone.
func refreshRegistrySums(ctx context.Context, store any, sch *schema.Schema, log *slog.Logger) (stop func()) {
	rs, ok := store.(syncproto.RegistrySumStore)
	if reg := sch.Registries(); !ok || reg == nil || len(reg.Sources) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(registrySumsEvery)
		defer tick.Stop()
		for {
			for {
				left, err := rs.RefreshRegistrySums(ctx, sch, syncproto.RegistrySumsBatch)
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, syncproto.ErrSummariesNotKept) {
						log.Error("refreshing the registry-only households", "err", err)
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
