package store

import (
	"crypto/sha256"
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

// TestSwitchIndexesTxIDs: the transaction index is written under each
// transaction's own id, the one its fields hash to, whether the block was
// built here (ids cached by Sign) or decoded from bytes (cached by the
// decoder).
func TestSwitchIndexesTxIDs(t *testing.T) {
	s, _ := openTemp(t)
	f := newFixture(2)
	mustInit(t, s, f.g)
	st := f.g.State()
	genesis := f.g.Block()
	tx1 := f.tx(chain.TxTransfer, f.users[0], addrOf(f.users[1]), 1, 0, 1)
	tx2 := f.tx(chain.TxTransfer, f.users[0], addrOf(f.users[1]), 1, 0, 2)
	b1, u1 := f.next(t, &genesis.Header, st, 1000, tx1, tx2)
	if err := s.Switch(0, []*chain.Block{b1}, []*chain.Undo{u1}, st); err != nil {
		t.Fatal(err)
	}
	tx3 := f.tx(chain.TxTransfer, f.users[0], addrOf(f.users[1]), 1, 0, 3)
	built, u2 := f.next(t, &b1.Header, st, 1000, tx3)
	b2, err := chain.DecodeBlock(chain.EncodeBlock(built))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Switch(0, []*chain.Block{b2}, []*chain.Undo{u2}, st); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tx     chain.Transaction
		height uint64
		index  int
	}{{tx1, 1, 0}, {tx2, 1, 1}, {tx3, 2, 0}} {
		// The id recomputed from the fields, not read from any cache.
		plain := chain.Transaction{Type: c.tx.Type, ChainID: c.tx.ChainID, From: c.tx.From, To: c.tx.To,
			Amount: c.tx.Amount, Fee: c.tx.Fee, Nonce: c.tx.Nonce, PublicKey: c.tx.PublicKey}
		want := sha256.Sum256(plain.SigningBytes())
		if h, i, err := s.TxLocation(want); err != nil || h != c.height || i != c.index {
			t.Fatalf("TxLocation(nonce %d) = %d, %d, %v; want %d, %d", c.tx.Nonce, h, i, err, c.height, c.index)
		}
	}
}
