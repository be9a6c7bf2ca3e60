package store

import (
	"errors"
	"slices"
	"testing"

	"github.com/poslab/posd/chain"
)

// TestBlockIndex: side blocks are indexed when stored and when a switch
// reverts them off the main chain, unindexed when a switch makes them main;
// invalid blocks are remembered across a reopen; Prune removes side blocks,
// invalid records and undo records below a height, and nothing above it.
func TestBlockIndex(t *testing.T) {
	s, path := openTemp(t)
	f := newFixture(2)
	mustInit(t, s, f.g)
	blocks, _, st := buildChain(t, s, f, 6)

	// A side block on block 1, then a switch onto a branch from block 4.
	side, _ := f.next(t, &blocks[1].Header, f.g.State(), 5000)
	if err := s.PutBlock(side); err != nil {
		t.Fatal(err)
	}
	revert := st.Clone()
	for h := 6; h > 4; h-- {
		u, err := s.Undo(uint64(h))
		if err != nil {
			t.Fatal(err)
		}
		revert.Revert(u)
	}
	b5, u5 := f.next(t, &blocks[4].Header, revert, 3000)
	if err := s.Switch(2, []*chain.Block{b5}, []*chain.Undo{u5}, revert); err != nil {
		t.Fatal(err)
	}
	refs, err := s.SideBlocks()
	if err != nil {
		t.Fatal(err)
	}
	got := map[chain.Hash]uint64{}
	for _, r := range refs {
		got[r.Hash] = r.Height
	}
	want := map[chain.Hash]uint64{side.Hash(): 2, blocks[5].Hash(): 5, blocks[6].Hash(): 6}
	if len(got) != len(want) {
		t.Fatalf("side index %v, want %v", got, want)
	}
	for h, height := range want {
		if got[h] != height {
			t.Fatalf("side index %v, want %v", got, want)
		}
	}
	bad := BlockRef{Hash: chain.Hash{1}, Height: 3, Code: chain.ErrWrongForger.Code}
	if err := s.PutInvalid(bad); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	inv, err := s.InvalidBlocks()
	if err != nil || len(inv) != 1 || inv[0] != bad {
		t.Fatalf("invalid blocks after reopen: %v %v", inv, err)
	}

	removed, err := s.Prune(4)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].Hash != side.Hash() {
		t.Fatalf("pruned %v, want the side block at height 2", removed)
	}
	if _, err := s.BlockByHash(side.Hash()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned side block: %v", err)
	}
	if inv, _ := s.InvalidBlocks(); len(inv) != 0 {
		t.Fatalf("invalid record below the cut kept: %v", inv)
	}
	for h := uint64(1); h <= 5; h++ {
		_, err := s.Undo(h)
		if (h < 4) != errors.Is(err, ErrNotFound) {
			t.Fatalf("undo record %d after Prune(4): %v", h, err)
		}
	}
	// Main-chain blocks and side blocks above the cut stay.
	refs, _ = s.SideBlocks()
	if len(refs) != 2 || !slices.ContainsFunc(refs, func(r BlockRef) bool { return r.Hash == blocks[6].Hash() }) {
		t.Fatalf("side blocks above the cut: %v", refs)
	}
	if _, err := s.BlockByHeight(1); err != nil {
		t.Fatalf("main chain below the cut: %v", err)
	}
}
