package auth

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a set of token buckets keyed by a string (a user name, an
// address, a device id). Idle buckets are dropped, so memory stays bounded
// by the keys active in the last few minutes.
type Limiter struct {
	every time.Duration
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewLimiter allows burst events at once per key, refilled at one per
// every. A nil *Limiter allows everything.
func NewLimiter(every time.Duration, burst int) *Limiter {
	return &Limiter{every: every, burst: burst, buckets: map[string]*bucket{}, swept: time.Now()}
}

// Allow takes one event for key; when refused it returns how long until the
// next one would be allowed, rounded up to whole seconds.
func (l *Limiter) Allow(key string) (ok bool, retryAfter int) {
	if l == nil {
		return true, 0
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.touch(key, now)
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, int(math.Ceil(d.Seconds()))
	}
	return true, 0
}

// touch returns key's bucket, made full if it has none, marked as seen at
// now, after sweeping the idle ones (l.mu held).
func (l *Limiter) touch(key string, now time.Time) *bucket {
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b
}

// sweep drops the buckets idle for long enough to be full again (l.mu
// held).
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.swept) <= time.Minute {
		return
	}
	for k, b := range l.buckets {
		if now.Sub(b.seen) > 10*time.Minute && now.Sub(b.seen) > time.Duration(l.burst)*l.every {
			delete(l.buckets, k)
		}
	}
	l.swept = now
}

// Blocked reports, without taking anything, whether key's bucket is empty,
// and if so how long until it holds an event again, rounded up to whole
// seconds. With Fail it counts failures rather than attempts: a caller
// checks Blocked before the work and calls Fail only when the work failed.
// A nil *Limiter blocks nothing.
func (l *Limiter) Blocked(key string) (blocked bool, retryAfter int) {
	if l == nil {
		return false, 0
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return false, 0
	}
	tokens := b.lim.TokensAt(now)
	if tokens >= 1 {
		return false, 0
	}
	return true, max(1, int(math.Ceil((1-tokens)*l.every.Seconds())))
}

// Fail takes one event from key's bucket, even when it is empty (the
// bucket then refills from below zero, so that failures beyond the burst
// prolong the wait).
func (l *Limiter) Fail(key string) {
	if l == nil {
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.touch(key, now)
	b.lim.ReserveN(now, 1)
}

// Forget drops key's bucket: its count starts afresh.
func (l *Limiter) Forget(key string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.buckets, key)
}
