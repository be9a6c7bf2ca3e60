package load

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// TestBackoffOnPushback: a node answering pool_full to transfers and busy
// (Retry-After) to whole batches for a while is not refusing them: every
// transfer is sent again after a pause until taken, none is lost, and
// each is taken once. The report counts the push-backs apart from the
// refusals.
func TestBackoffOnPushback(t *testing.T) {
	n := newMemNode()
	var mu sync.Mutex
	poolFull, busy := map[chain.Hash]int{}, 0
	busyTxs := 0
	n.busyBatch = func(txs []chain.Transaction) error {
		mu.Lock()
		defer mu.Unlock()
		if txs[0].Type == chain.TxTransfer && busy < 3 { // the first three batches: busy, whole
			busy++
			busyTxs += len(txs)
			return &RefusedError{Code: "busy", Message: "over budget", RetryAfter: 5 * time.Millisecond}
		}
		return nil
	}
	n.pushBack = func(tx *chain.Transaction) string {
		mu.Lock()
		defer mu.Unlock()
		if id := tx.ID(); tx.Type == chain.TxTransfer && tx.Nonce%3 == 0 && poolFull[id] < 2 { // a third of them pool_full twice
			poolFull[id]++
			return "pool_full"
		}
		return ""
	}
	const txs = 300
	var deferredSeen int
	var pmu sync.Mutex
	start := time.Now()
	r, err := Run(context.Background(), Config{
		Nodes: []Node{n}, Senders: 3, Txs: txs, Concurrency: 2, Batch: 25, TimeoutCommit: 20 * time.Second,
		Poll: time.Millisecond, ProgressEvery: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Progress: func(p Progress) {
			pmu.Lock()
			defer pmu.Unlock()
			if p.Phase == PhaseSending {
				deferredSeen = p.Deferred
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report %+v in %s", r, time.Since(start))
	if r.Submitted != txs || r.Committed != txs || r.Missing() != 0 || r.Stranded != 0 || len(r.Rejected) != 0 {
		t.Errorf("not every transfer committed once: %+v", r)
	}
	mu.Lock()
	wantDeferred := 0
	for _, k := range poolFull {
		wantDeferred += k
	}
	mu.Unlock()
	// Nonces 1 to 100 of three senders: 33 each a multiple of 3, refused
	// twice; the busy batches count each of their transfers.
	if r.Deferred != wantDeferred+busyTxs || wantDeferred != 2*3*33 || busyTxs != 3*25 {
		t.Errorf("deferred %d, want %d pool_full and %d in busy batches", r.Deferred, wantDeferred, busyTxs)
	}
	pmu.Lock()
	if deferredSeen != r.Deferred {
		t.Errorf("last progress says %d deferred, the report %d", deferredSeen, r.Deferred)
	}
	pmu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, k := range n.sends {
		if k > 3 {
			t.Errorf("transaction %s sent %d times", id, k)
		}
	}
}

// TestBackoffGivesUp: a node that takes nothing (pool_full for ever) ends
// the load with a PushbackError once TimeoutCommit has passed, not a
// retry loop for ever; funding is pushed back the same way.
func TestBackoffGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		types chain.TxType
	}{
		{"transfers", chain.TxTransfer},
		{"funding", chain.TxExchange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newMemNode()
			n.pushBack = func(tx *chain.Transaction) string {
				if tx.Type == tc.types {
					return "pool_full"
				}
				return ""
			}
			const timeout = 300 * time.Millisecond
			start := time.Now()
			_, err := Run(context.Background(), Config{
				Nodes: []Node{n}, Senders: 2, Txs: 20, Concurrency: 1, Batch: 5, TimeoutCommit: timeout,
				Poll: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			})
			took := time.Since(start)
			var pe *PushbackError
			if !errors.As(err, &pe) || pe.Code != "pool_full" || pe.Tries < 2 || pe.For < timeout {
				t.Fatalf("err %v (%#v)", err, pe)
			}
			if !strings.Contains(err.Error(), "mem://node took no transfer for") || !strings.Contains(err.Error(), "answered pool_full") {
				t.Errorf("message %q", err.Error())
			}
			if took > timeout+2*time.Second {
				t.Errorf("gave up after %s", took)
			}
		})
	}
}

// namedNode is one of several Nodes on one memNode's chain, with its own
// URL; busy, when set, may refuse a whole batch of transfers.
type namedNode struct {
	*memNode
	url  string
	busy func() bool

	mu   sync.Mutex
	last time.Time // when it last took a batch of transfers
}

func (n *namedNode) URL() string { return n.url }

func (n *namedNode) SubmitTxs(ctx context.Context, txs []chain.Transaction) ([]rpc.SubmitResult, error) {
	transfers := txs[0].Type == chain.TxTransfer
	if transfers && n.busy != nil && n.busy() {
		return nil, &RefusedError{Code: "busy", Message: "over budget", RetryAfter: time.Second}
	}
	res, err := n.memNode.SubmitTxs(ctx, txs)
	if transfers && err == nil {
		n.mu.Lock()
		n.last = time.Now()
		n.mu.Unlock()
	}
	return res, err
}

// TestPushbackPausesOneNode: a node that asks for a second's pause does
// not hold up the worker's batches to another node: they all leave
// within the pause.
func TestPushbackPausesOneNode(t *testing.T) {
	m := newMemNode()
	var mu sync.Mutex
	var pausedAt time.Time
	a := &namedNode{memNode: m, url: "mem://a", busy: func() bool {
		mu.Lock()
		defer mu.Unlock()
		if pausedAt.IsZero() {
			pausedAt = time.Now()
			return true
		}
		return false
	}}
	b := &namedNode{memNode: m, url: "mem://b"}
	r, err := Run(context.Background(), Config{
		Nodes: []Node{a, b}, Senders: 2, Txs: 40, Concurrency: 1, Batch: 5, TimeoutCommit: 20 * time.Second,
		Poll: time.Millisecond, MaxBackoff: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Committed != 40 {
		t.Fatalf("report %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if pausedAt.IsZero() || b.last.IsZero() {
		t.Fatal("no pause asked, or B took nothing")
	}
	if d := b.last.Sub(pausedAt); d >= time.Second/2 {
		t.Errorf("B took its last transfers %s after A asked for a second's pause: the worker waited for A", d)
	}
}

// TestResendsWhatANodeLost: a node that accepted a transfer and then
// dropped it from its pool (a full pool making room) refuses the sender's
// next nonces with nonce_gap; the load asks it for the sender's pending
// nonce and sends again from the first nonce it lacks, in order, so every
// transfer commits. A dropped last transfer, with nothing after it to be
// refused, is found once the commits stall, and sent again the same way.
func TestResendsWhatANodeLost(t *testing.T) {
	n := newMemNode()
	n.strict = true
	const senders, txs = 3, 90 // nonces 2 to 31 (1 is the funding)
	lostNonces := map[uint64]bool{7: true, 31: true}
	var mu sync.Mutex
	lost := map[chain.Hash]bool{}
	n.evict = func(tx *chain.Transaction) bool {
		mu.Lock()
		defer mu.Unlock()
		id := tx.ID()
		if tx.Type != chain.TxTransfer || !lostNonces[tx.Nonce] || n.sends[id] > 1 {
			return false
		}
		lost[id] = true
		return true
	}
	var resentSeen int
	var pmu sync.Mutex
	r, err := Run(context.Background(), Config{
		Nodes: []Node{n}, Senders: senders, Txs: txs, Concurrency: 1, Batch: 4, TimeoutCommit: 20 * time.Second,
		Poll: time.Millisecond, ProgressEvery: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Progress: func(p Progress) {
			pmu.Lock()
			defer pmu.Unlock()
			resentSeen = max(resentSeen, p.Resent)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report %+v", r)
	if r.Submitted != txs || r.Committed != txs || r.Missing() != 0 || r.Stranded != 0 || len(r.Rejected) != 0 {
		t.Errorf("not every transfer committed: %+v", r)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if len(lost) != 2*senders {
		t.Fatalf("the node dropped %d transfers, want %d", len(lost), 2*senders)
	}
	// Each dropped transfer went twice and counts as resent; the
	// nonce_gaps behind the middle ones were not sends (deferred).
	for id := range lost {
		if k := n.sends[id]; k != 2 {
			t.Errorf("dropped transfer %s sent %d times, want 2", id, k)
		}
	}
	if r.Resent != len(lost) || n.answered["nonce_gap"] == 0 || r.Deferred != n.answered["nonce_gap"] {
		t.Errorf("resent %d, deferred %d; the node dropped %d and answered %v", r.Resent, r.Deferred, len(lost), n.answered)
	}
	pmu.Lock()
	defer pmu.Unlock()
	if resentSeen != r.Resent {
		t.Errorf("progress showed %d resent, the report %d", resentSeen, r.Resent)
	}
}
