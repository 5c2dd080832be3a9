package api

import (
	"context"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// DefaultPullPositionsEvery is how long, at most, a device's pull position
// waits in memory before it is written: the devices list (last_pull_at,
// behind) may lag the tablets by this much.
const DefaultPullPositionsEvery = 2 * time.Second

// pullPositions buffers the pull positions of devices. A position is
// bookkeeping for supervisors (how far behind a tablet is), and each write
// is a durable transaction queued behind the pushes for the one writer: a
// tablet looping checksum and pull?limit=1 made one such write per
// request (13,552 in 9 s) and doubled other tablets' push latency. So a
// pull only notes its position here (the latest per device), and the
// buffer is written in one transaction at most once per interval, the
// first pull after a quiet spell arming the timer, and at shutdown (flush).
type pullPositions struct {
	store syncproto.Store
	every time.Duration
	warn  func(msg string, args ...any)

	mu      sync.Mutex
	pending map[string]syncproto.PullPosition
	timer   *time.Timer // armed while positions are pending
	closed  bool        // after the shutdown's flush: write at once

	flushMu sync.Mutex // one flush at a time, in order
}

func newPullPositions(store syncproto.Store, every time.Duration, warn func(string, ...any)) *pullPositions {
	if every <= 0 {
		every = DefaultPullPositionsEvery
	}
	return &pullPositions{store: store, every: every, warn: warn, pending: map[string]syncproto.PullPosition{}}
}

// note records that device pulled up to seq; the position is written
// within the interval. A position behind the one pending is kept the
// higher (the store never moves a device back either).
func (b *pullPositions) note(p syncproto.PullPosition) {
	b.mu.Lock()
	if old, ok := b.pending[p.Device]; ok && old.Seq > p.Seq {
		p.Seq = old.Seq
	}
	b.pending[p.Device] = p
	closed := b.closed
	if !closed && b.timer == nil {
		b.timer = time.AfterFunc(b.every, func() { b.flush(context.Background()) })
	}
	b.mu.Unlock()
	if closed {
		b.flush(context.Background())
	}
}

// flush writes every pending position in one transaction. Positions that
// fail to be written stay pending (unless a newer one of the same device
// arrived meanwhile) for the flush that the next pull arms: a store that
// keeps failing is not retried in a loop of its own.
func (b *pullPositions) flush(ctx context.Context) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	batch := make([]syncproto.PullPosition, 0, len(b.pending))
	for _, p := range b.pending {
		batch = append(batch, p)
	}
	b.pending = map[string]syncproto.PullPosition{}
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.mu.Unlock()
	err := b.store.RecordPulls(ctx, batch)
	if err != nil {
		b.warn("writing pull positions", "devices", len(batch), "err", err)
		b.mu.Lock()
		for _, p := range batch {
			if _, newer := b.pending[p.Device]; !newer {
				b.pending[p.Device] = p
			}
		}
		b.mu.Unlock()
	}
	return err
}

// close writes what is pending and makes later notes write at once (a
// request that finishes during shutdown must not leave its position in a
// buffer nobody flushes).
func (b *pullPositions) close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return b.flush(ctx)
}
