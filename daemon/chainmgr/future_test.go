package chainmgr

import (
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/store"
	"github.com/poslab/posd/internal/testutil"
)

// TestEarlyBlocksKeptUntilDue: a block a little ahead of the clock is
// refused (future_timestamp) but kept, with the children that arrive
// after it, and imported once due; a block too far ahead is not kept; what
// is kept is bounded; blocks found valid once due count as evidence that
// the clock is behind.
func TestEarlyBlocksKeptUntilDue(t *testing.T) {
	tc := newTestChain(t)
	tc.m.Close()
	var nowMs atomic.Int64
	nowMs.Store(time.Now().UnixMilli())
	st, err := store.Open(filepath.Join(tc.dir, "chain.db"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Genesis: tc.g, Store: st, Now: func() time.Time { return time.UnixMilli(nowMs.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	genesis := m.Head()
	slot := tc.g.SlotMs
	lead := int64(3000)
	at := func(parent *chain.Block, ts int64) *chain.Block {
		b := chain.NewBlock(tc.g, &parent.Header, 0, ts, nil)
		tc.forger.SignHeader(&b.Header)
		return b
	}
	b1 := at(genesis, nowMs.Load()+lead)
	if err := m.ProcessBlock(b1); !errors.Is(err, chain.ErrFutureBlock) {
		t.Fatalf("block 3 s ahead: %v, want future_timestamp", err)
	}
	b2 := at(b1, b1.Timestamp+10)
	if err := m.ProcessBlock(b2); !errors.Is(err, ErrUnknownParent) {
		t.Fatalf("its child: %v", err)
	}
	far := at(genesis, nowMs.Load()+(maxAheadSlots+1)*slot)
	if err := m.ProcessBlock(far); !errors.Is(err, chain.ErrFutureBlock) {
		t.Fatalf("block 11 slots ahead: %v", err)
	}
	if got := m.FutureBlocks(); got != 2 {
		t.Fatalf("%d blocks kept, want 2 (the block and its child, not the far one)", got)
	}
	if m.Head().Height != 0 || tc.stored(b1.Hash()) {
		t.Fatal("an early block changed the chain before it was due")
	}
	if _, ok := m.ClockBehind(); ok {
		t.Fatal("clock reported behind before any kept block proved valid")
	}
	// A third, via a sync batch, then the clock reaches them.
	b3 := at(b2, b2.Timestamp+10)
	if n, err := m.ProcessBlocks([]*chain.Block{b3}); n != 0 || !errors.Is(err, ErrUnknownParent) {
		t.Fatalf("ProcessBlocks of the grandchild: %d, %v", n, err)
	}
	nowMs.Add(lead)
	testutil.WaitFor(t, 30*time.Second, "the kept blocks imported when due", func() bool {
		select {
		case m.future.wake <- struct{}{}:
		default:
		}
		// The head moves before futureLoop records the block's sighting:
		// wait for both.
		_, sighted := m.ClockBehind()
		return m.Head().Height == 3 && sighted
	})
	behind, ok := m.ClockBehind()
	if !ok || behind < time.Duration(lead)*time.Millisecond {
		t.Fatalf("ClockBehind %v %v, want at least %d ms", behind, ok, lead)
	}

	// Bounded: many siblings ahead, at most maxFutureBlocks kept.
	head := m.Head()
	for i := range maxFutureBlocks + 20 {
		_ = m.ProcessBlock(at(head, nowMs.Load()+lead+int64(i)))
	}
	if got := m.FutureBlocks(); got != maxFutureBlocks {
		t.Fatalf("%d kept, want the bound %d", got, maxFutureBlocks)
	}
}

// TestReadersNeverTakeTheImportLock: with the stake at max_lots (the most
// costly election a chain can reach) and an import holding the lock for
// ever, a reader still gets the snapshot, its accounts, stakers and the
// election for the next block: elections run off the import lock, and
// readers never take it.
func TestReadersNeverTakeTheImportLock(t *testing.T) {
	tc := newTestChain(t)
	tc.m.Close()
	tc.dir = t.TempDir()
	tc.g.Allocations[0].Stake = tc.g.MaxLots * tc.g.LotSize
	if err := tc.g.Validate(); err != nil {
		t.Fatal(err)
	}
	tc.open(nil)
	m := tc.m
	b := tc.block(tc.forger, m.Head(), 1)
	mustImport(t, m, []*chain.Block{b}) // a head whose election nobody ran yet
	m.mu.Lock()                         // an import stuck for ever
	defer m.mu.Unlock()
	done := make(chan []chain.Address)
	go func() {
		snap := m.Snapshot()
		_ = snap.Account(tc.forger.Address())
		_, _ = snap.Stakers()
		done <- snap.Candidates()
	}()
	select {
	case cands := <-done:
		if len(cands) == 0 || cands[0] != tc.forger.Address() {
			t.Fatalf("candidates %v", cands)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a reader waited for the import lock")
	}
}
