package cli

import (
	"bytes"
	"testing"
)

func TestNewLoggerRefusesBadSettings(t *testing.T) {
	for _, c := range [][2]string{{"xml", "info"}, {"json", "loud"}, {"text", "info+2"}, {"", "info"}} {
		if _, err := NewLogger(&bytes.Buffer{}, c[0], c[1]); err == nil {
			t.Errorf("format %q level %q accepted", c[0], c[1])
		}
	}
	for _, c := range [][2]string{{"json", "debug"}, {"text", "WARN"}, {"auto", "error"}} {
		if _, err := NewLogger(&bytes.Buffer{}, c[0], c[1]); err != nil {
			t.Errorf("format %q level %q: %v", c[0], c[1], err)
		}
	}
}
