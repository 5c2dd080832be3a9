package auth

import (
	"context"
	"testing"
	"time"
)

func TestAddressKey(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.2":            "127.0.0.2",
		"::ffff:10.1.2.3":      "10.1.2.3",
		"2001:db8:1:2::1":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
		"fe80::1%eth0":         "fe80::/64",
		"::1":                  "::/64",
		"not an address":       "not an address",
	} {
		if got := AddressKey(addr); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestHashGate: at most Slots hashes at once for the whole process and
// PerKey per key; a login that finds no slot within the wait, or finds
// its key full, is refused with a Retry-After, and a slot released admits
// the next.
func TestHashGate(t *testing.T) {
	ctx := context.Background()
	g := NewHashGate(2, 2, 20*time.Millisecond)
	r1, why, _ := g.Enter(ctx, "a")
	r2, why2, _ := g.Enter(ctx, "b")
	if why != GateAdmitted || why2 != GateAdmitted {
		t.Fatal("refused within the slots")
	}
	if _, why, retry := g.Enter(ctx, "c"); why != GateFull || retry < 1 {
		t.Fatalf("a third hash with two slots: %v, Retry-After %d", why, retry)
	}
	r1()
	r1() // releasing twice frees one slot only
	r3, why, _ := g.Enter(ctx, "a")
	if why != GateAdmitted {
		t.Fatalf("a released slot was not reused: %v", why)
	}
	if _, why, _ := g.Enter(ctx, "c"); why != GateFull {
		t.Fatalf("a double release freed two slots: %v", why)
	}
	// Per key: key "a" holds one slot; a second one waits (and times out),
	// a third is refused at once.
	g2 := NewHashGate(1, 2, 20*time.Millisecond)
	h, _, _ := g2.Enter(ctx, "k")
	done := make(chan GateRefusal)
	go func() { _, why, _ := g2.Enter(ctx, "k"); done <- why }()
	for {
		g2.mu.Lock()
		n := g2.byKey["k"]
		g2.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, why, retry := g2.Enter(ctx, "k"); why != GateKeyBusy || retry < 1 {
		t.Fatalf("a key beyond its share: %v, Retry-After %d", why, retry)
	}
	if why := <-done; why != GateFull {
		t.Fatalf("the waiting hash: %v", why)
	}
	h()
	r2()
	r3()
	if len(g.byKey) != 0 || len(g2.byKey) != 0 {
		t.Fatalf("keys left behind: %v %v", g.byKey, g2.byKey)
	}
}

// TestLimiterCountsFailures: Blocked takes nothing; Fail takes one; Forget
// starts afresh.
func TestLimiterCountsFailures(t *testing.T) {
	l := NewLimiter(time.Hour, 2)
	for i := 0; i < 5; i++ {
		if blocked, _ := l.Blocked("a"); blocked {
			t.Fatal("looking took an event")
		}
	}
	l.Fail("a")
	l.Fail("a")
	blocked, retry := l.Blocked("a")
	if !blocked || retry < 3000 {
		t.Fatalf("after the burst of failures: blocked %v, Retry-After %d", blocked, retry)
	}
	if blocked, _ := l.Blocked("b"); blocked {
		t.Fatal("keys share a bucket")
	}
	l.Forget("a")
	if blocked, _ := l.Blocked("a"); blocked {
		t.Fatal("Forget kept the failures")
	}
	var none *Limiter
	none.Fail("x")
	if blocked, _ := none.Blocked("x"); blocked {
		t.Fatal("nil limiter blocked")
	}
}
