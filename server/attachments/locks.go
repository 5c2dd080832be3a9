package attachments

import (
	"context"
	"time"
)

// acquire takes the lock named key, waiting up to wait (forever when 0)
// or until ctx is done; on success it returns the release function. A
// holder that registered a preempt function is preempted first.
func (s *Store) acquire(ctx context.Context, key string, preempt func(), wait time.Duration) (func(), bool) {
	s.mu.Lock()
	l := s.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		s.locks[key] = l
	}
	l.refs++
	if l.preempt != nil {
		l.preempt()
		l.preempt = nil
	}
	s.mu.Unlock()
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	unref := func() {
		s.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(s.locks, key)
		}
		s.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
	case <-timeout:
		unref()
		return nil, false
	case <-ctx.Done():
		unref()
		return nil, false
	}
	s.mu.Lock()
	l.preempt = preempt
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		l.preempt = nil
		s.mu.Unlock()
		<-l.ch
		unref()
	}, true
}

// tryAcquire takes the lock named key if nobody holds or awaits it.
func (s *Store) tryAcquire(key string) (func(), bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks[key] != nil {
		return nil, false
	}
	l := &keyLock{ch: make(chan struct{}, 1), refs: 1}
	l.ch <- struct{}{}
	s.locks[key] = l
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		<-l.ch
		l.refs--
		if l.refs == 0 {
			delete(s.locks, key)
		}
	}, true
}
