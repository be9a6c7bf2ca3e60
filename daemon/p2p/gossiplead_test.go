package p2p

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
)

// TestSyncLeavesSmallLeadsToGossip: a peer at most gossipLead blocks
// ahead is a sync candidate only once gossip has failed for gossipGrace to
// bring the head the peer had when the loop first found it ahead (when it
// brought it, the clock starts again); a fork, an announced block we
// cannot connect and a longer lead are candidates at once.
func TestSyncLeavesSmallLeadsToGossip(t *testing.T) {
	const ours = 10
	long := 2 * gossipGrace
	theirs := chain.Hash{7} // a block of the peer's we do not have
	tests := []struct {
		name      string
		peer      peerState
		brought   bool // the block the clock waits for is one we have
		hinted    bool
		candidate bool
		retry     bool // a later look is asked for
		restarted bool // the clock starts again now, on the peer's head
	}{
		{"one ahead, first seen now", peerState{height: ours + 1}, false, false, false, true, true},
		{"one ahead, its block not brought within the grace", peerState{height: ours + 1, aheadHead: theirs, aheadSince: time.Now().Add(-long)}, false, false, true, false, false},
		{"one ahead, the grace not over", peerState{height: ours + 1, aheadHead: theirs, aheadSince: time.Now().Add(-gossipGrace / 4)}, false, false, false, true, false},
		{"one ahead, gossip brought the block it waited for", peerState{height: ours + 1, aheadSince: time.Now().Add(-long)}, true, false, false, true, true},
		{"gossipLead ahead", peerState{height: ours + gossipLead}, false, false, false, true, true},
		{"further ahead", peerState{height: ours + gossipLead + 1}, false, false, true, false, false},
		{"fork at our height", peerState{height: ours, head: chain.Hash{1}}, false, false, true, false, false},
		{"one ahead with a block we cannot connect", peerState{height: ours + 1}, false, true, true, false, false},
		{"behind us: the clock is cleared", peerState{height: ours - 1, aheadHead: theirs, aheadSince: time.Now().Add(-long)}, false, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeChain("g")
			fc.extend(ours, 0)
			_, head := fc.Head()
			id := peer.ID("peer")
			ps := tt.peer
			if ps.height == ours && ps.head == (chain.Hash{}) {
				ps.head = head
			}
			if ps.height > ours {
				ps.head = chain.Hash{9} // the peer's head now
			}
			if tt.brought {
				ps.aheadHead = head
			}
			n := &Node{h: fc, gater: &gater{banned: map[peer.ID]time.Time{}},
				peers:    map[peer.ID]*peerState{id: &ps},
				hints:    map[peer.ID]syncHint{},
				syncRecs: map[peer.ID]*syncRecord{}}
			if tt.hinted {
				n.hints[id] = syncHint{height: ours + 1, at: time.Now()}
			}
			before := time.Now()
			cands, retry := n.syncCandidates()
			got := slices.ContainsFunc(cands, func(c candidate) bool { return c.id == id })
			if got != tt.candidate {
				t.Fatalf("candidate = %v, want %v", got, tt.candidate)
			}
			if (retry > 0) != tt.retry || retry > gossipGrace {
				t.Fatalf("retry after %v, want one (at most %v): %v", retry, gossipGrace, tt.retry)
			}
			if tt.restarted && (ps.aheadHead != ps.head || ps.aheadSince.Before(before)) {
				t.Fatalf("clock not restarted on the peer's head: waits for %x since %v", ps.aheadHead[:4], ps.aheadSince)
			}
			if ps.height <= ours && !ps.aheadSince.IsZero() {
				t.Fatalf("a peer not ahead keeps a clock (since %v)", ps.aheadSince)
			}
		})
	}
}

// TestSmallLeadSyncedAfterGossipGrace: a peer one block ahead whose block
// gossip never brings (it was never published) is synced from once the
// grace has passed, without a status poll: the loop looks again by itself.
func TestSmallLeadSyncedAfterGossipGrace(t *testing.T) {
	old := pollInterval
	pollInterval = time.Hour                 // no poll: only the handshake and the loop's own look
	t.Cleanup(func() { pollInterval = old }) // after the nodes' Close
	a, b := newFakeChain("g"), newFakeChain("g")
	for _, blk := range a.extend(5, 0) {
		if err := b.HandleBlock(blk); err != nil {
			t.Fatal(err)
		}
	}
	a.extend(1, 0) // A: 6, B: 5, nothing gossiped
	na := startNode(t, a, nil)
	nb := startNode(t, b, nil, na)
	// The clock starts when B's sync loop first looks after the
	// handshake, just after B lists A (seen here within 20 ms of it).
	waitFor(t, 15*time.Second, "B lists A", func() bool { return hasPeer(nb, na.ID()) })
	start := time.Now()
	waitFor(t, 15*time.Second, "B at A's height", func() bool { return b.height() == 6 })
	if took := time.Since(start); took < gossipGrace-100*time.Millisecond || took > gossipGrace+3*time.Second {
		t.Fatalf("B synced %v after it listed A, want about the grace of %v", took, gossipGrace)
	}
	if !slices.Equal(a.hashes(), b.hashes()) {
		t.Fatal("chains differ")
	}
}
