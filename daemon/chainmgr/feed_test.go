package chainmgr

import (
	"testing"
	"time"

	"github.com/poslab/posd/chain"
)

// TestSlowSubscriberIsBoundedInBytes: a subscriber that does not read
// while the chain moves holds no more than its byte budget; when it reads
// again it gets the newest snapshot, every reverted block (the pool needs
// their transactions) and an exact count of the added blocks it missed.
func TestSlowSubscriberIsBoundedInBytes(t *testing.T) {
	tc := newTestChain(t)
	events, cancel := tc.m.Subscribe(MinEventBytes)
	defer cancel()
	var sub *subscriber
	for s := range tc.m.subs.m {
		sub = s
	}
	// Below what Subscribe allows, so that a few small blocks exceed it.
	const budget = 256 << 10
	sub.mu.Lock()
	sub.budget = budget
	sub.mu.Unlock()

	// About 1.5 MiB of events, 0.6 MiB of blocks: more than the budget,
	// and more blocks than fit in it.
	const n, perBlock = 60, 10
	parent := tc.m.Head()
	var main []*chain.Block
	nonce := uint64(0)
	for range n {
		var txs []chain.Transaction
		for range perBlock {
			nonce++
			txs = append(txs, tc.transfer(tc.rich, 1, nonce))
		}
		parent = tc.block(tc.forger, parent, 1, txs...)
		main = append(main, parent)
		if err := tc.m.ProcessBlock(parent); err != nil {
			t.Fatal(err)
		}
	}
	// A reorg of the last two blocks while the subscriber still sleeps.
	branch := tc.chainOf(main[n-3], 3, 2)
	mustImport(t, tc.m, branch)
	head := tc.m.Head()
	if head.Hash() != branch[2].Hash() {
		t.Fatal("the longer branch did not win")
	}

	sub.mu.Lock()
	peak := sub.peak
	sub.mu.Unlock()
	// The budget and the newest event (each event here is under 32 KiB).
	if peak > budget+32<<10 {
		t.Fatalf("a slow subscriber queued %d bytes, budget %d", peak, budget)
	}

	added, missed := 0, 0
	reverted := map[chain.Hash]bool{}
	timeout := time.After(10 * time.Second)
	for {
		var ev Event
		select {
		case ev = <-events:
		case <-timeout:
			t.Fatal("the events never reached the head")
		}
		added += len(ev.Added)
		missed += ev.MissedBlocks
		for _, b := range ev.Reverted {
			reverted[b.Hash()] = true
		}
		if ev.Snapshot.Head().Hash() == head.Hash() {
			break
		}
	}
	if added+missed != n+len(branch) {
		t.Fatalf("added %d + missed %d, want %d blocks accounted for", added, missed, n+len(branch))
	}
	if missed == 0 || tc.m.Stats().EventsDropped == 0 {
		t.Fatalf("missed %d, dropped %d: the budget was never reached", missed, tc.m.Stats().EventsDropped)
	}
	if len(reverted) != 2 || !reverted[main[n-1].Hash()] || !reverted[main[n-2].Hash()] {
		t.Fatalf("reverted blocks delivered: %d, want the two of the reorg", len(reverted))
	}
}

// TestFastSubscriberGetsEveryEvent: a reader that keeps up gets one event
// per change, nothing coalesced, even when each event alone outweighs the
// budget (a sync batch can).
func TestFastSubscriberGetsEveryEvent(t *testing.T) {
	tc := newTestChain(t)
	events, cancel := tc.m.Subscribe(MinEventBytes)
	defer cancel()
	for s := range tc.m.subs.m {
		s.mu.Lock()
		s.budget = 4 << 10
		s.mu.Unlock()
	}
	parent := tc.m.Head()
	for i := range 20 {
		parent = tc.block(tc.forger, parent, 1, tc.transfer(tc.rich, 1, uint64(i+1)))
		if err := tc.m.ProcessBlock(parent); err != nil {
			t.Fatal(err)
		}
		ev := <-events
		if len(ev.Added) != 1 || ev.Added[0] != parent || ev.MissedBlocks != 0 {
			t.Fatalf("event %d: %d added, %d missed", i, len(ev.Added), ev.MissedBlocks)
		}
	}
	if d := tc.m.Stats().EventsDropped; d != 0 {
		t.Fatalf("%d events dropped for a reader that kept up", d)
	}
}
