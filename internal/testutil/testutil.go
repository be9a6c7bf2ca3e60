// Package testutil holds the small helpers the project's tests share: a
// concurrency-safe output buffer, free loopback ports and polling with a
// deadline. Only tests import it.
package testutil

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer that goroutines (a process's output, a
// logger) may write while a test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// FreePort returns a free TCP port on 127.0.0.1. Closed again,
// it is also a port nobody listens on.
//
// The port is drawn at random below Linux's ephemeral range (32768 and
// up by default), and above the ports a user's devnet takes (5001..,
// 10001..), and checked free by binding it: a port the kernel handed out
// for 127.0.0.1:0 could be handed out again, to another test's listener
// or outgoing connection, between this check and the process that binds
// it (a CI run once lost a posd to "address already in use" that way).
// Only if no port there is free does it fall back on the kernel's choice.
func FreePort(tb testing.TB) int {
	tb.Helper()
	for range 64 {
		port := 20000 + rand.IntN(12000)
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			ln.Close()
			return port
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitFor polls cond until it holds, failing the test after timeout.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
