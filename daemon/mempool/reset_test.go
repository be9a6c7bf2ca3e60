package mempool

import (
	"errors"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/testkit"
)

// fakeChain is a store of blocks by hash with a main chain.
type fakeChain struct {
	blocks map[chain.Hash]*chain.Block
	main   []*chain.Block // by height
}

var errNoBlock = errors.New("no such block")

func (c *fakeChain) BlockByHash(h chain.Hash) (*chain.Block, error) {
	if b, ok := c.blocks[h]; ok {
		return b, nil
	}
	return nil, errNoBlock
}

func (c *fakeChain) HashAt(h uint64) (chain.Hash, error) {
	if h >= uint64(len(c.main)) {
		return chain.Hash{}, errNoBlock
	}
	return c.main[h].Hash(), nil
}

// TestResetPutsBackWhatAReorgReverted: the pool walks from the old head
// to the main chain itself, taking blocks from known first and reading
// the others; what the new branch committed stays out; a walk that
// cannot read a parent reports it and still puts back what it found; a
// head still on the main chain reverts nothing.
func TestResetPutsBackWhatAReorgReverted(t *testing.T) {
	g := testGenesis()
	base := testkit.NewChain(t, g)
	base.Grow(1)
	old := base.Fork()
	b2 := old.Add(payBob(alice, 1, 1), payBob(alice, 1, 2))
	b3 := old.Add(payBob(alice, 1, 3), payBob(bob, 1, 1))
	nw := base.Fork()
	nw.Add(payBob(alice, 1, 1)) // the new branch commits alice's first
	nw.Grow(2)
	store := &fakeChain{blocks: map[chain.Hash]*chain.Block{}, main: nw.Blocks}
	for _, b := range append(append([]*chain.Block(nil), old.Blocks...), nw.Blocks...) {
		store.blocks[b.Hash()] = b
	}
	for _, tc := range []struct {
		name       string
		chain      *fakeChain
		old        *chain.Block
		known      []*chain.Block
		blocks     int // reverted blocks found
		read       int
		wantErr    bool
		wantPooled []string
	}{
		{"the event carries the reverted blocks", store, b3, []*chain.Block{b3, b2}, 2, 0, false,
			[]string{name(alice, 2), name(alice, 3), name(bob, 1)}},
		{"a coalesced event carries none", store, b3, nil, 2, 1, false,
			[]string{name(alice, 2), name(alice, 3), name(bob, 1)}},
		{"a parent is unreadable", &fakeChain{blocks: map[chain.Hash]*chain.Block{}, main: nw.Blocks}, b3, nil, 1, 0, true,
			[]string{name(bob, 1)}}, // alice's 3 waits for her 2, which is lost
		{"no reorg", store, nw.Blocks[2], nil, 0, 0, false, nil},
		{"the first head followed", store, nil, nil, 0, 0, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New(g, Config{})
			rs, _ := p.Reset(tc.chain, tc.old, nw.State, tc.known)
			if rs.RevertedBlocks != tc.blocks || rs.ReadBlocks != tc.read || (rs.Err != nil) != tc.wantErr {
				t.Fatalf("reset %+v, want %d blocks, %d read, error %v", rs, tc.blocks, tc.read, tc.wantErr)
			}
			pending := ids(p.Pending(100, nw.State))
			if len(pending) != len(tc.wantPooled) {
				t.Fatalf("pending %v, want %v", pending, tc.wantPooled)
			}
			for _, w := range tc.wantPooled {
				if !contains(pending, w) {
					t.Fatalf("pending %v, want %v", pending, tc.wantPooled)
				}
			}
		})
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
