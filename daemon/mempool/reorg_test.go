package mempool

import (
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/internal/testkit"
)

// TestDeepReorgUnderLoadLosesNothing is issue 19's must-show: a reorg
// that reverts 20,000 transactions, while others are still being
// submitted and one subscriber of the chain's events never reads, loses
// none of them from the pool.
//
// The real chain manager and store, the node's follower loop (chain
// events to Pool.Reset, as daemon/blocks.go followChain), and the
// follower itself held back while the reorg is imported: its events are
// coalesced within the smallest budget, so the event it gets carries
// none of the reverted blocks (they are far over budget) and the pool
// must walk back to them through the store.
func TestDeepReorgUnderLoadLosesNothing(t *testing.T) {
	const (
		senders   = 200
		perSender = 100 // 20,000 reverted transactions, in two blocks of 10,000
		loaders   = 20
		perLoader = 200 // submitted while the reorg happens
	)
	stakers := []testkit.Key{testkit.KeyN(40), testkit.KeyN(41)}
	keys := testkit.Keys(1000, senders+loaders)
	var allocs []chain.Allocation
	for _, k := range stakers {
		allocs = append(allocs, testkit.Fund(k, 1000, 100))
	}
	for _, k := range keys {
		allocs = append(allocs, testkit.Fund(k, 1_000_000, 0))
	}
	g := testkit.Genesis(allocs)
	sink := testkit.KeyN(42).Addr

	st, err := store.Open(filepath.Join(t.TempDir(), "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Init(g); err != nil {
		t.Fatal(err)
	}
	m, err := chainmgr.New(chainmgr.Config{Genesis: g, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	pool := New(g, Config{Sigs: m.Verifier()})
	newest := func() StateView { return m.Snapshot() }

	// The slow subscriber: subscribed for the whole test, never reads.
	_, slowCancel := m.Subscribe(chainmgr.MinEventBytes)
	defer slowCancel()

	// The follower, as the node's; it waits at gate while the test holds it.
	events, cancel := m.Subscribe(chainmgr.MinEventBytes)
	defer cancel()
	var gate sync.Mutex
	type followed struct {
		head chain.Hash
		rs   ResetStats
	}
	done := make(chan followed, 64)
	go func() {
		for ev := range events {
			gate.Lock()
			rs, _ := pool.Reset(m, ev.Prev, ev.Snapshot, ev.Reverted, ev.Added)
			gate.Unlock()
			done <- followed{ev.Snapshot.HeadHash(), rs}
		}
	}()
	// waitFor returns what the Resets up to the one that reached head
	// found, in all.
	waitFor := func(head chain.Hash) ResetStats {
		t.Helper()
		var all ResetStats
		timeout := time.After(30 * time.Second)
		for {
			select {
			case f := <-done:
				all.RevertedBlocks += f.rs.RevertedBlocks
				all.RevertedTxs += f.rs.RevertedTxs
				all.ReadBlocks += f.rs.ReadBlocks
				all.Err = errors.Join(all.Err, f.rs.Err)
				if f.head == head {
					return all
				}
			case <-timeout:
				t.Fatal("the follower never reached the head")
			}
		}
	}

	// The chain, as the test builds it with the real rules.
	kit := testkit.NewChain(t, g)
	kit.Grow(1)
	mustImport := func(b *chain.Block) {
		t.Helper()
		if err := m.ProcessBlock(b); err != nil {
			t.Fatalf("import %d: %v", b.Height, err)
		}
	}
	mustImport(kit.Tip())
	waitFor(kit.Tip().Hash())
	base := kit.Fork()

	// 20,000 transactions pooled, then forged into two blocks of 10,000.
	var first, second []chain.Transaction
	for _, k := range keys[:senders] {
		for n := uint64(1); n <= perSender; n++ {
			tx := testkit.Transfer(k, sink, 1, 1, n)
			if n <= perSender/2 {
				first = append(first, tx)
			} else {
				second = append(second, tx)
			}
		}
	}
	reverted := append(append([]chain.Transaction(nil), first...), second...)
	for i := 0; i < len(reverted); i += 1000 {
		errs, _ := pool.AdmitNewest(reverted[i:i+1000], Relayed, newest)
		for j, err := range errs {
			if err != nil {
				t.Fatalf("admit %d: %v", i+j, err)
			}
		}
	}
	b1 := kit.Add(first...)
	b2 := kit.Add(second...)
	mustImport(b1)
	mustImport(b2)
	waitFor(b2.Hash())
	if n := pool.Len(); n != 0 {
		t.Fatalf("%d transactions still pooled after their blocks", n)
	}

	// Load: other senders keep submitting through the reorg.
	var load []chain.Transaction
	for _, k := range keys[senders:] {
		for n := uint64(1); n <= perLoader; n++ {
			load = append(load, testkit.Transfer(k, sink, 1, 1, n))
		}
	}
	var submitted atomic.Int64
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		// Sender by sender is nonce order within each sender.
		for i := 0; i < len(load); i += 50 {
			errs, _ := pool.AdmitNewest(load[i:i+50], Local, newest)
			for _, err := range errs {
				if err == nil {
					submitted.Add(1)
				}
			}
		}
	}()

	// The reorg: a longer branch from before b1, without the 20,000,
	// imported while the follower is held back. The follower holds one
	// event (an empty block b3 on the old branch) and its feed one more
	// in hand (another, b4), while the rest queue: the switch, which
	// reverts four blocks (some 12 MB of events by the feed's estimate),
	// and one more block, which takes the queue over its budget, so the
	// two are coalesced into an event that has no room for b2 and b1.
	gate.Lock()
	mustImport(kit.Add())
	b4 := kit.Add()
	mustImport(b4)
	side := base.Fork()
	branch := []*chain.Block{side.Forge(1)} // another forger's block for the slot of b1
	side.Accept(branch[0])
	for range 5 {
		branch = append(branch, side.Add())
	}
	for _, b := range branch {
		// A side block until the branch is longer.
		if err := m.ProcessBlock(b); err != nil && !errors.Is(err, chainmgr.ErrSideBlock) {
			t.Fatalf("import %d: %v", b.Height, err)
		}
	}
	tip := branch[len(branch)-1]
	if m.Head().Hash() != tip.Hash() {
		t.Fatal("the longer branch did not win")
	}
	gate.Unlock()
	rs := waitFor(tip.Hash())
	<-loadDone

	// The Resets walked back b1 and b2 at least once, reading them from
	// the store: the coalesced event could not carry them. (Which event
	// walks what depends on when the feed's goroutine took each one; a
	// Reset that runs after the switch may walk them early, against a
	// state that still commits them, which puts nothing back.)
	if rs.RevertedTxs < len(reverted) || rs.ReadBlocks == 0 || rs.Err != nil {
		t.Fatalf("resets %+v: want the %d transactions walked back, some blocks read from the store", rs, len(reverted))
	}
	lost := 0
	for i := range reverted {
		if _, ok := pool.Get(reverted[i].ID()); !ok {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d reverted transactions lost from the pool", lost, len(reverted))
	}
	if got := int64(pool.Len()); got != int64(len(reverted))+submitted.Load() || submitted.Load() != int64(len(load)) {
		t.Fatalf("pool holds %d, want %d reverted + %d submitted (of %d)", got, len(reverted), submitted.Load(), len(load))
	}
	if pending := pool.Pending(len(reverted)+len(load), m.Snapshot()); len(pending) != len(reverted)+len(load) {
		t.Fatalf("%d executable, want all %d", len(pending), len(reverted)+len(load))
	}
}
