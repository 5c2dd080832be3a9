package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesBadLimits: invalid timeouts and concurrency stop `serve`
// at start with an error naming the flag, before the data directory is
// touched.
func TestServeRefusesBadLimits(t *testing.T) {
	cases := []struct {
		flags []string
		want  string
	}{
		{[]string{"--read-timeout", "0"}, "--read-timeout must be a positive duration"},
		{[]string{"--idle-timeout", "-1s"}, "--idle-timeout must be a positive duration"},
		{[]string{"--write-timeout", "0s"}, "--write-timeout must be a positive duration"},
		{[]string{"--read-header-timeout", "0"}, "--read-header-timeout must be a positive duration"},
		{[]string{"--read-header-timeout", "5m"}, "--read-header-timeout (5m0s) must not be longer than --read-timeout (2m0s)"},
		{[]string{"--snapshot-concurrency", "0"}, "--snapshot-concurrency must be at least 1"},
		{[]string{"--busy-timeout", "1ms"}, "--busy-timeout must be at least 10ms"},
		{[]string{"--shutdown-grace", "-5s"}, "--shutdown-grace must not be negative"},
		{[]string{"--read-timeout", "soon"}, `invalid value "soon" for flag -read-timeout`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.flags, " "), func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			var stderr bytes.Buffer
			err := Run(context.Background(), Env{Args: append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data}, c.flags...),
				Stdout: io.Discard, Stderr: &stderr})
			if err == nil {
				t.Fatal("serve started")
			}
			if msg := err.Error() + " " + stderr.String(); !strings.Contains(msg, c.want) {
				t.Fatalf("error %q (stderr %q), want %q", err, stderr.String(), c.want)
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the data directory was created (%v)", err)
			}
		})
	}
}

// TestServeAppliesTimeouts runs `serve` with short header and idle
// timeouts: a client that never finishes its headers, and a kept-alive
// connection left idle, are both closed by the server in about that time.
func TestServeAppliesTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Env{Args: []string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(),
			"--read-header-timeout", timeout.String(), "--idle-timeout", timeout.String(), "--read-timeout", "5s"},
			Stdout: io.Discard, Stderr: io.Discard, Listening: func(a string) { addr <- a }})
	}()
	var a string
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve stopped with %v", err)
		}
	}()

	// closedWithin reads from conn until the server closes it.
	closedWithin := func(conn net.Conn, r io.Reader) time.Duration {
		t.Helper()
		start := time.Now()
		conn.SetReadDeadline(start.Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, r); err != nil {
			t.Fatalf("the connection was not closed: %v", err)
		}
		return time.Since(start)
	}

	slow, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := io.WriteString(slow, "GET /healthz HTTP/1.1\r\nHost: fieldsync\r\n"); err != nil {
		t.Fatal(err)
	}
	if d := closedWithin(slow, slow); d < timeout/2 || d > timeout+3*time.Second {
		t.Fatalf("unfinished headers: closed after %s, want about %s", d, timeout)
	}

	idle, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: fieldsync\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if d := closedWithin(idle, br); d < timeout/2 || d > timeout+3*time.Second {
		t.Fatalf("idle connection: closed after %s, want about %s", d, timeout)
	}
}
