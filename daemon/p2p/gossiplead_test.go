package p2p

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
)

// TestSyncLeavesSmallLeadsToGossip: a peer at most gossipLead blocks
// ahead is a sync candidate only once our height has stayed put for
// gossipGrace since the loop first found it ahead; a fork, an announced
// block we cannot connect and a longer lead are candidates at once.
func TestSyncLeavesSmallLeadsToGossip(t *testing.T) {
	const ours = 10
	long := 2 * gossipGrace
	tests := []struct {
		name       string
		peer       peerState
		hinted     bool
		candidate  bool
		retry      bool // a later look is asked for
		resetSince bool // the lead's clock starts again now
	}{
		{"one ahead, first seen now", peerState{height: ours + 1}, false, false, true, true},
		{"one ahead, stuck for the grace", peerState{height: ours + 1, aheadOf: ours, aheadSince: time.Now().Add(-long)}, false, true, false, false},
		{"one ahead, stuck for less", peerState{height: ours + 1, aheadOf: ours, aheadSince: time.Now().Add(-gossipGrace / 4)}, false, false, true, false},
		{"one ahead long ago, but we moved since", peerState{height: ours + 1, aheadOf: ours - 1, aheadSince: time.Now().Add(-long)}, false, false, true, true},
		{"gossipLead ahead", peerState{height: ours + gossipLead}, false, false, true, true},
		{"further ahead", peerState{height: ours + gossipLead + 1}, false, true, false, false},
		{"fork at our height", peerState{height: ours, head: chain.Hash{1}}, false, true, false, false},
		{"one ahead with a block we cannot connect", peerState{height: ours + 1}, true, true, false, false},
		{"behind us", peerState{height: ours - 1}, false, false, false, false},
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
			if tt.resetSince && (ps.aheadOf != ours || ps.aheadSince.Before(before)) {
				t.Fatalf("lead clock not restarted: aheadOf %d since %v", ps.aheadOf, ps.aheadSince)
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
	start := time.Now()
	na := startNode(t, a, nil)
	startNode(t, b, nil, na)
	waitFor(t, 15*time.Second, "B at A's height", func() bool { return b.height() == 6 })
	if took := time.Since(start); took < gossipGrace {
		t.Fatalf("B synced after %v, before the grace of %v", took, gossipGrace)
	}
	if !slices.Equal(a.hashes(), b.hashes()) {
		t.Fatal("chains differ")
	}
}
