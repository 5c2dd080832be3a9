package apitest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// LogBuffer collects a server's log; handlers write to it while the test
// reads.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends to the log.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is the log so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines parses the JSON log lines.
func (s *LogBuffer) Lines(tb testing.TB) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			tb.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// waitForRequests waits until n access-log lines were written (the line
// is written once the answer is sent, so the client may see the answer
// first).
func (s *LogBuffer) WaitForRequests(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(s.String(), `"msg":"request"`) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d request lines logged, want %d:\n%s", strings.Count(s.String(), `"msg":"request"`), n, s.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
