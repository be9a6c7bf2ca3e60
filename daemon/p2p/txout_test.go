package p2p

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
)

// flushed waits until a's outbox was taken: what a publishes next goes in
// other messages.
func flushed(t *testing.T, a *Node) {
	t.Helper()
	waitFor(t, 5*time.Second, "the outbox flushed", func() bool {
		a.txOut.mu.Lock()
		defer a.txOut.mu.Unlock()
		return len(a.txOut.encs) == 0
	})
}

// msgCountingChain is a fakeChain that counts the tx messages it handles.
type msgCountingChain struct {
	*fakeChain
	msgs atomic.Int64
}

func (c *msgCountingChain) HandleTxs(txs []chain.Transaction) ([]chain.Transaction, error) {
	c.msgs.Add(1)
	return c.fakeChain.HandleTxs(txs)
}

// TestOneTxPerPublishReachesPeers: a node that publishes one transaction
// per call (the API path under a client sending one transfer per request)
// far faster than a peer's budget of tx messages (DefaultTxMsgRate, burst
// twice that) must still get every transaction to the peer: the outbox
// coalesces them. One message per call, the peer dropped all but about
// the first hundred.
func TestOneTxPerPublishReachesPeers(t *testing.T) {
	const count = 1000
	b := &msgCountingChain{fakeChain: newFakeChain("g")}
	nodes := line(t, []*fakeChain{newFakeChain("g")})
	a := nodes[0]
	startNode(t, b, nil, a)
	waitFor(t, 10*time.Second, "B on A's tx topic", func() bool { return len(a.txTopic.ListPeers()) == 1 })
	start := time.Now()
	for i := range count {
		a.PublishTxs([]chain.Transaction{tx(uint64(i + 1))})
	}
	waitFor(t, 20*time.Second, "every tx at B", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.txs) == count
	})
	elapsed := time.Since(start)
	msgs := b.msgs.Load()
	// At most one flush per txFlushGap, plus the one under way.
	if limit := int64(elapsed/txFlushGap) + 2; msgs > limit || msgs >= count {
		t.Fatalf("%d txs in %d messages over %s: more than one message per %s", count, msgs, elapsed, txFlushGap)
	}
	t.Logf("%d txs in %d messages over %s", count, msgs, elapsed)
}

// TestTxOutboxBound: the outbox holds at most txOutboxBytes; a relay that
// does not fit is dropped and counted, and a waiting publisher gets room
// once the outbox is taken, or gives up when its context ends.
func TestTxOutboxBound(t *testing.T) {
	o := newTxOutbox()
	one := tx(1)
	size := len(chain.EncodeTx(&one))
	fits := txOutboxBytes / size
	txs := make([]chain.Transaction, fits+10)
	for i := range txs {
		txs[i] = tx(uint64(i))
	}
	if got := o.add(context.Background(), txs, false, false); got != fits {
		t.Fatalf("queued %d of %d, want %d (the bound)", got, len(txs), fits)
	}
	if o.dropped != 10 || o.bytes > txOutboxBytes {
		t.Fatalf("dropped %d, %d bytes queued", o.dropped, o.bytes)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if got := o.add(ctx, txs[:1], false, true); got != 0 {
		t.Fatal("a full outbox took more")
	}

	done := make(chan int)
	go func() { done <- o.add(context.Background(), txs[:3], true, true) }()
	select {
	case got := <-done:
		t.Fatalf("queued %d into a full outbox", got)
	case <-time.After(20 * time.Millisecond):
	}
	encs, salt := o.take()
	if len(encs) != fits || salt {
		t.Fatalf("took %d (salt %v)", len(encs), salt)
	}
	if got := <-done; got != 3 {
		t.Fatalf("queued %d after the take, want 3", got)
	}
	if _, salt := o.take(); !salt {
		t.Fatal("regossiped transactions taken without salt")
	}
}
