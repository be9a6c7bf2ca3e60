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
	// Below what Subscribe allows, so that a few small blocks exceed it.
	const budget = 256 << 10
	sub, err := tc.m.subscribe(budget)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	events := sub.C()

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

	peak := sub.Stats().PeakBytes
	// The budget and the newest event (each event here is under 32 KiB).
	if peak > budget+32<<10 {
		t.Fatalf("a slow subscriber queued %d bytes, budget %d", peak, budget)
	}

	added, missed := 0, 0
	reverted := map[chain.Hash]bool{}
	var prev *chain.Block // the head the reader was told of last
	timeout := time.After(10 * time.Second)
	for {
		var ev Event
		select {
		case ev = <-events:
		case <-timeout:
			t.Fatal("the events never reached the head")
		}
		if prev != nil && ev.Prev != prev {
			t.Fatalf("event from head %d, the last event left head %d", ev.Prev.Height, prev.Height)
		}
		prev = ev.Snapshot.Head()
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
	sub, err := tc.m.subscribe(4 << 10)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	events := sub.C()
	parent := tc.m.Head()
	for i := range 20 {
		parent = tc.block(tc.forger, parent, 1, tc.transfer(tc.rich, 1, uint64(i+1)))
		if err := tc.m.ProcessBlock(parent); err != nil {
			t.Fatal(err)
		}
		ev := <-events
		if len(ev.Added) != 1 || ev.Added[0] != parent || ev.MissedBlocks != 0 || ev.Prev.Hash() != parent.PrevHash {
			t.Fatalf("event %d: %d added, %d missed", i, len(ev.Added), ev.MissedBlocks)
		}
	}
	if d := tc.m.Stats().EventsDropped; d != 0 {
		t.Fatalf("%d events dropped for a reader that kept up", d)
	}
}

// TestCoalesceBoundsRevertedBlocks: reorgs under a reader that sleeps no
// longer pile up reverted blocks past the budget; what is left out is
// counted, the newest event's added blocks are kept whatever their size,
// and Prev is the head before the oldest event merged.
func TestCoalesceBoundsRevertedBlocks(t *testing.T) {
	blk := func(h uint64, txs int) *chain.Block {
		return &chain.Block{Header: chain.Header{Height: h}, Transactions: make([]chain.Transaction, txs)}
	}
	const budget = 64 << 10 // about 100 empty transactions a block
	var queue []Event
	for i := range 10 {
		h := uint64(100 + i)
		queue = append(queue, Event{Prev: blk(h, 0), Added: []*chain.Block{blk(h+1, 0)}, Reverted: []*chain.Block{blk(h, 50), blk(h-1, 50)}})
	}
	queue = append(queue, Event{Prev: blk(200, 0), Added: []*chain.Block{blk(201, 1000)}}) // alone over budget
	merged, folded := coalesceEvents(queue, budget)
	if folded != len(queue)-1 || merged.Prev != queue[0].Prev {
		t.Fatalf("folded %d, prev %v", folded, merged.Prev)
	}
	if len(merged.Added) == 0 || merged.Added[len(merged.Added)-1] != queue[len(queue)-1].Added[0] {
		t.Fatal("the newest event's added block was left out")
	}
	if len(merged.Reverted) != 0 || merged.MissedReverted != 20 || merged.MissedBlocks != 10 {
		t.Fatalf("reverted %d kept, %d missed; added missed %d", len(merged.Reverted), merged.MissedReverted, merged.MissedBlocks)
	}
	// Without the big block, some reverted blocks fit, newest first.
	merged, _ = coalesceEvents(queue[:10], budget)
	if len(merged.Reverted) == 0 || merged.Reverted[0] != queue[9].Reverted[0] ||
		len(merged.Reverted)+merged.MissedReverted != 20 || eventBytes(merged) > budget {
		t.Fatalf("kept %d reverted (missed %d), %d bytes of %d", len(merged.Reverted), merged.MissedReverted, eventBytes(merged), budget)
	}
}
