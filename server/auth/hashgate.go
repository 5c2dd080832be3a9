package auth

import (
	"context"
	"math"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// HashGate bounds the password hashes in flight. Each argon2id
// verification takes argonMemoryKiB (19 MiB) and a core for tens of
// milliseconds, so without a bound a flood of logins, failed or not,
// takes the process's memory and CPU (300 at once: 5.7 GB). The gate
// admits at most Slots hashes for the whole process and at most PerKey
// (hashing or waiting) per key, the client's address; a login waits for a
// slot at most Wait, in arrival order, and at most MaxWaiting wait at once.
// Whatever it refuses, it refuses before any hashing.
type HashGate struct {
	slots  int
	perKey int
	wait   time.Duration

	sem *semaphore.Weighted

	mu         sync.Mutex
	byKey      map[string]int
	waiting    int
	maxWaiting int
}

// GateRefusal is why HashGate.Enter refused a hash.
type GateRefusal int

// Refusals of HashGate.Enter.
const (
	GateAdmitted GateRefusal = iota // not refused
	GateKeyBusy                     // the key has PerKey hashes in flight or waiting
	GateFull                        // no slot came free within Wait, or too many wait already
)

// DefaultHashSlots is the process-wide bound on hashes in flight when none
// is configured: half the cores (at least one), so that a login flood
// leaves the other half to pushes and pulls, and memory stays at a few
// times 19 MiB.
func DefaultHashSlots() int {
	return max(1, runtime.GOMAXPROCS(0)/2)
}

// Defaults of NewHashGate for a zero argument.
const (
	DefaultHashesPerKey = 4
	DefaultHashWait     = 2 * time.Second
)

// NewHashGate returns a gate of slots hashes at once (DefaultHashSlots when
// ≤ 0), perKey per key (DefaultHashesPerKey when ≤ 0), and a wait of at
// most wait for a slot (DefaultHashWait when ≤ 0). At most 16 logins per
// slot wait at once; beyond them a login is refused at once.
func NewHashGate(slots, perKey int, wait time.Duration) *HashGate {
	if slots <= 0 {
		slots = DefaultHashSlots()
	}
	if perKey <= 0 {
		perKey = DefaultHashesPerKey
	}
	if wait <= 0 {
		wait = DefaultHashWait
	}
	return &HashGate{slots: slots, perKey: perKey, wait: wait, sem: semaphore.NewWeighted(int64(slots)),
		byKey: map[string]int{}, maxWaiting: 16 * slots}
}

// Slots is how many hashes may run at once.
func (g *HashGate) Slots() int { return g.slots }

// Enter admits one hash for key, waiting for a slot if need be. Admitted,
// it returns a release function that the caller must call when the hash is
// done; refused, it returns why and the seconds the client should wait
// before trying again (Retry-After).
func (g *HashGate) Enter(ctx context.Context, key string) (release func(), refused GateRefusal, retryAfter int) {
	g.mu.Lock()
	if g.byKey[key] >= g.perKey {
		g.mu.Unlock()
		return nil, GateKeyBusy, 1
	}
	g.byKey[key]++
	g.mu.Unlock()
	leave := func() {
		g.mu.Lock()
		if g.byKey[key]--; g.byKey[key] <= 0 {
			delete(g.byKey, key)
		}
		g.mu.Unlock()
	}
	if !g.sem.TryAcquire(1) {
		g.mu.Lock()
		full := g.waiting >= g.maxWaiting
		if !full {
			g.waiting++
		}
		g.mu.Unlock()
		if full {
			leave()
			return nil, GateFull, g.retrySeconds()
		}
		wctx, cancel := context.WithTimeout(ctx, g.wait)
		err := g.sem.Acquire(wctx, 1)
		cancel()
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
		if err != nil {
			leave()
			return nil, GateFull, g.retrySeconds()
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			g.sem.Release(1)
			leave()
		})
	}, GateAdmitted, 0
}

func (g *HashGate) retrySeconds() int {
	return max(1, int(math.Ceil(g.wait.Seconds())))
}
