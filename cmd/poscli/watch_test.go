package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/testkit"
)

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func nextBlock(parent *chain.Block) chain.Block {
	txs := []chain.Transaction{testkit.Tx(testkit.Bob, chain.TxTransfer, alice, 1, 0, 1)}
	b := chain.NewBlock(chain.DefaultGenesis(), &parent.Header, 0, parent.Timestamp+2000, txs)
	b.Header.Sign(alicePriv)
	return *b
}

func TestWatchEvents(t *testing.T) {
	node := newFakeNode(t)
	b3 := node.blocks[3]
	b4 := nextBlock(&b3)
	for _, format := range []string{"table", "json"} {
		e := newTestEnv(t, node.URL)
		e.addKey(t, "alice", alicePriv, "")
		e.f.Globals.Output = format
		ctx, cancel := context.WithCancel(context.Background())
		// Also on a failure: the server's Close waits for the stream to end.
		defer cancel()
		done := make(chan error, 1)
		cmd := NewCmdWatch(e.f, nil)
		cmd.SetArgs([]string{})
		go func() { done <- cmd.ExecuteContext(ctx) }()
		// The previous format's stream has left (below): this one is ours.
		waitFor(t, "the event stream", func() bool { return node.subscribers() == 1 })
		node.publish(&b3)
		node.publish(&b4)
		waitFor(t, "two blocks", func() bool { return strings.Count(e.out.String(), "\n") == 2 })
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("watch returned %v after Ctrl-C", err)
		}
		waitFor(t, "the event stream to end", func() bool { return node.subscribers() == 0 })
		var want string
		if format == "table" {
			want = fmt.Sprintf("00:00:06  #3       %s  forger %s  1 tx\n00:00:08  #4       %s  forger %s (alice)  1 tx\n",
				shortHash(b3.Hash()), carol.Short(), shortHash(b4.Hash()), alice.Short())
		} else {
			want = fmt.Sprintf(`{"height":3,"hash":"%s","timestamp":%d,"forger":"%s","rank":0,"tx_count":1}`+"\n"+
				`{"height":4,"hash":"%s","timestamp":%d,"forger":"%s","rank":0,"tx_count":1}`+"\n",
				b3.Hash(), b3.Timestamp, carol, b4.Hash(), b4.Timestamp, alice)
		}
		if e.out.String() != want {
			t.Errorf("%s:\n got %q\nwant %q", format, e.out.String(), want)
		}
		if !strings.HasPrefix(e.errOut.String(), "watching posd-test at "+node.URL+" from height 3 (Ctrl-C to stop)\n") {
			t.Errorf("stderr %q", e.errOut.String())
		}
	}
}

func TestWatchFallsBackToPolling(t *testing.T) {
	node := newFakeNode(t)
	// No event route (404); the head moves from 1 to 3 after the first call.
	node.noEvents = true
	node.statusHeight = func(call int) uint64 {
		if call == 1 {
			return 1
		}
		return 3
	}
	e := newTestEnv(t, node.URL)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cmd := NewCmdWatch(e.f, nil)
	cmd.SetArgs([]string{"--interval", "5ms"})
	go func() { done <- cmd.ExecuteContext(ctx) }()
	waitFor(t, "blocks 2 and 3", func() bool { return strings.Count(e.out.String(), "\n") == 2 })
	time.Sleep(30 * time.Millisecond) // more polls print nothing new
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out := e.out.String()
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "#2 ") || !strings.Contains(out, "#3 ") {
		t.Errorf("stdout %q", out)
	}
	wantWarn := "warning: event stream failed (not found on the node: no route GET /v1/no-events); polling /v1/status every 5ms instead\n"
	if !strings.HasSuffix(e.errOut.String(), wantWarn) {
		t.Errorf("stderr %q, want the fallback warning", e.errOut.String())
	}
}

func TestWatchUnreachable(t *testing.T) {
	node := newFakeNode(t)
	url := node.URL
	node.Close()
	e := newTestEnv(t, url)
	if code := e.main("watch"); code != 1 {
		t.Fatal("watch on a dead node exited 0")
	}
	if !strings.HasPrefix(e.errOut.String(), "error: node not reachable at "+url+" — is posd running?") {
		t.Errorf("got %q", e.errOut.String())
	}
}
