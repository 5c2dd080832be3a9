package cli

import (
	"context"
	"fmt"

	"github.com/fieldsync/fieldsync/fixtures"
	"github.com/fieldsync/fieldsync/syncproto"
)

// openLocked takes the lock of data directory dir for command (lockData)
// and opens its database, creating it if needed (openData). done closes
// the database, then gives up the lock. With a PostgreSQL --store URL it
// opens that database instead, and takes no lock: the store's own write
// lock orders its writes with a running server's.
func openLocked(ctx context.Context, env Env, storeURL, dir, command string) (store servedStore, done func(), err error) {
	if storeURL != "" {
		if err := checkStore(storeURL); err != nil {
			return nil, nil, err
		}
		pg, err := openPostgres(ctx, storeURL, 0)
		if err != nil {
			return nil, nil, err
		}
		return pg, func() { pg.Close() }, nil
	}
	release, err := lockData(dir, command)
	if err != nil {
		return nil, nil, err
	}
	store, err = openData(ctx, dir, env.Stderr)
	if err != nil {
		release()
		return nil, nil, err
	}
	return store, func() { store.Close(); release() }, nil
}

// loadThroughPush feeds every change emit yields to l, flushes it and
// prints its summary; progress is finished either way. It returns the
// first error of emit, of l or of the flush.
func loadThroughPush(ctx context.Context, env Env, l *fixtures.Loader, progress *progress, emit func(add func(syncproto.Change) error) error) error {
	err := emit(func(ch syncproto.Change) error { return l.Add(ctx, ch) })
	if err == nil {
		err = l.Flush(ctx)
	}
	progress.finish()
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, l.Summary())
	return nil
}
