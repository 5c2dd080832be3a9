// Package faulty is an http.RoundTripper that makes the network as bad as a
// village connection, for tests: it drops requests, drops responses after
// the server did the work (the acknowledgement is lost), delays, sends
// requests twice, and cuts connections in the middle of a body. Its faults
// come from a seeded random source, so a failing run can be replayed.
package faulty

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are the probabilities (0–1) of each fault per request.
type Faults struct {
	DropRequest  float64       // the request never reaches the server
	DropResponse float64       // the server answers, the answer is lost
	Duplicate    float64       // the request reaches the server twice
	CutBody      float64       // the connection breaks in the middle of the request body
	Delay        float64       // the request waits up to MaxDelay first
	MaxDelay     time.Duration // default 50 ms
}

// Counts are the faults a Transport injected.
type Counts struct {
	Requests, DroppedRequests, DroppedResponses, Duplicated, CutBodies, Delayed int64
}

// Transport injects Faults into requests sent through Base.
type Transport struct {
	Base   http.RoundTripper
	Faults Faults

	mu  sync.Mutex
	rng *rand.Rand
	on  atomic.Bool
	n   struct {
		requests, droppedReq, droppedResp, duplicated, cut, delayed atomic.Int64
	}
}

// New returns a Transport over base (http.DefaultTransport when nil)
// drawing its faults from seed. Faults are on until SetEnabled(false).
func New(base http.RoundTripper, f Faults, seed uint64) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	if f.MaxDelay <= 0 {
		f.MaxDelay = 50 * time.Millisecond
	}
	t := &Transport{Base: base, Faults: f, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	t.on.Store(true)
	return t
}

// SetEnabled turns fault injection on or off.
func (t *Transport) SetEnabled(on bool) { t.on.Store(on) }

// Counts returns how many of each fault were injected so far.
func (t *Transport) Counts() Counts {
	return Counts{Requests: t.n.requests.Load(), DroppedRequests: t.n.droppedReq.Load(),
		DroppedResponses: t.n.droppedResp.Load(), Duplicated: t.n.duplicated.Load(), CutBodies: t.n.cut.Load(),
		Delayed: t.n.delayed.Load()}
}

// ErrInjected is the error of every injected failure.
var ErrInjected = errors.New("faulty: injected network failure")

func (t *Transport) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rng.Float64() < p
}

func (t *Transport) intn(n int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rng.IntN(n)
}

// RoundTrip sends req, perhaps badly.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.n.requests.Add(1)
	if !t.on.Load() {
		return t.Base.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	clone := func(b io.ReadCloser) *http.Request {
		r := req.Clone(req.Context())
		r.Body = b
		if b == nil {
			r.Body = http.NoBody
			if body != nil {
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
		}
		return r
	}
	if t.roll(t.Faults.Delay) {
		t.n.delayed.Add(1)
		d := time.Duration(t.intn(int(t.Faults.MaxDelay)) + 1)
		select {
		case <-time.After(d):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	if t.roll(t.Faults.DropRequest) {
		t.n.droppedReq.Add(1)
		return nil, ErrInjected
	}
	if len(body) > 1 && t.roll(t.Faults.CutBody) {
		t.n.cut.Add(1)
		cut := t.intn(len(body)-1) + 1
		r := clone(io.NopCloser(io.MultiReader(bytes.NewReader(body[:cut]), errReader{})))
		r.ContentLength = int64(len(body))
		resp, err := t.Base.RoundTrip(r)
		if err == nil {
			// The server answered a request it could not have read whole
			// (an error, as it must be); the client still sees a broken
			// connection.
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, ErrInjected
	}
	if t.roll(t.Faults.Duplicate) {
		t.n.duplicated.Add(1)
		resp, err := t.Base.RoundTrip(clone(nil))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	resp, err := t.Base.RoundTrip(clone(nil))
	if err != nil {
		return nil, err
	}
	if t.roll(t.Faults.DropResponse) {
		t.n.droppedResp.Add(1)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, ErrInjected
	}
	return resp, nil
}

// errReader fails: the connection broke mid-body.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, ErrInjected }
