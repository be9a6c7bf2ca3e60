package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestBlockNegativeHeight: `poscli block -1` says heights start at 0, not
// that -1 is an unknown flag.
func TestBlockNegativeHeight(t *testing.T) {
	e := newTestEnv(t, "")
	if code := e.main("block", "-1"); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if got, want := e.errOut.String(), "error: block heights start at 0: -1 is not a height (see 'poscli block --help')\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e = newTestEnv(t, "")
	e.main("block", "-x")
	if got := e.errOut.String(); !strings.Contains(got, "unknown shorthand flag: 'x' in -x") {
		t.Errorf("a real unknown flag: %q", got)
	}
}

// TestWatchSaysWhyItIsIdle: with no block for --idle, watch says so on
// stderr, once per quiet stretch, and keeps stdout clean.
func TestWatchSaysWhyItIsIdle(t *testing.T) {
	node := newFakeNode(t)
	node.events = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	e := newTestEnv(t, node.URL)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cmd := NewCmdWatch(e.f, nil)
	cmd.SetArgs([]string{"--idle", "100ms"})
	go func() { done <- cmd.ExecuteContext(ctx) }()
	waitFor(t, "the idle notice", func() bool { return strings.Contains(e.errOut.String(), "no new block for") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	msg := e.errOut.String()
	if !strings.Contains(msg, "1 transactions are pending") || !strings.Contains(msg, "still watching") {
		t.Errorf("idle notice %q: want the pool size and that watch goes on", msg)
	}
	if strings.Count(msg, "no new block") != 1 {
		t.Errorf("idle notice repeated:\n%s", msg)
	}
	if e.out.String() != "" {
		t.Errorf("stdout %q, want nothing", e.out.String())
	}
}
