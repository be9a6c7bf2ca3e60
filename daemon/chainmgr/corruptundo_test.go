package chainmgr

import (
	"errors"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
)

// corruptUndo is a store whose undo record at height comes back with
// finality bytes that do not decode, as from a damaged disk (the store's
// codec keeps the record's bytes opaque).
type corruptUndo struct {
	Store
	height uint64
}

func (s corruptUndo) Undo(h uint64) (*chain.Undo, error) {
	u, err := s.Store.Undo(h)
	if err == nil && h == s.height {
		c := *u
		c.Finality = []byte{0xee, 1, 2, 3}
		u = &c
	}
	return u, err
}

// TestCorruptUndoHalts: a reorg that must revert a main-chain block whose
// stored undo record is corrupt halts the manager with a message naming
// the store corruption and the height; the head and state stay, and
// every later import is refused with the halt.
func TestCorruptUndoHalts(t *testing.T) {
	tc := newTestChain(t)
	g0 := tc.m.Head()
	a := tc.chainOf(g0, 3, 10)
	mustImport(t, tc.m, a)
	if err := tc.m.Close(); err != nil {
		t.Fatal(err)
	}
	tc.open(func(s Store) Store { return corruptUndo{Store: s, height: 3} })
	before := tc.m.Snapshot()
	b := tc.chainOf(a[0], 3, 11) // longer: fork choice wants it
	_, err := tc.m.ProcessBlocks(b)
	if err == nil || IsPeerFault(err) {
		t.Fatalf("a reorg over a corrupt undo record: %v, want a local failure", err)
	}
	halted := tc.m.Halted()
	if halted == nil || !strings.Contains(halted.Error(), "store corruption") || !strings.Contains(halted.Error(), "block 3") ||
		!errors.Is(halted, chain.ErrCorruptUndo) {
		t.Fatalf("halted: %v, want the store corruption at block 3", halted)
	}
	if tc.m.Head().Hash() != a[2].Hash() || !tc.m.Snapshot().SameState(before) {
		t.Fatal("the head or the state moved")
	}
	if err := tc.m.CheckDisk(); err != nil {
		t.Fatalf("memory and disk differ after the halt: %v", err)
	}
	var he *HaltedError
	if err := tc.m.ProcessBlock(tc.block(tc.forger, a[2], 10)); !errors.As(err, &he) {
		t.Fatalf("an import after the halt: %v, want *HaltedError", err)
	}
	for _, blk := range b {
		if st, _, _ := tc.m.BlockStatus(blk.Hash()); st == StatusInvalid {
			t.Fatalf("block %d judged invalid for our corrupt store", blk.Height)
		}
	}
}
