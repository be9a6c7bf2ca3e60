package chainmgr

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/poslab/posd/chain"
)

// readCounter counts the store's reads of blocks and hashes (n), and the
// blocks they decoded whole (decodes).
type readCounter struct {
	Store
	n, decodes atomic.Int64
}

func (r *readCounter) BlockByHash(h chain.Hash) (*chain.Block, error) {
	r.n.Add(1)
	r.decodes.Add(1)
	return r.Store.BlockByHash(h)
}

func (r *readCounter) BlockByHeight(h uint64) (*chain.Block, error) {
	r.n.Add(1)
	r.decodes.Add(1)
	return r.Store.BlockByHeight(h)
}

func (r *readCounter) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	r.n.Add(1)
	blocks, err := r.Store.Blocks(from, limit)
	r.decodes.Add(int64(len(blocks)))
	return blocks, err
}

// Headers reads blocks but decodes only their headers.
func (r *readCounter) Headers(from uint64, limit int) ([]*chain.Header, error) {
	r.n.Add(1)
	return r.Store.Headers(from, limit)
}

func (r *readCounter) HashAt(h uint64) (chain.Hash, error) {
	r.n.Add(1)
	return r.Store.HashAt(h)
}

func (r *readCounter) HasBlock(h chain.Hash) (bool, error) {
	r.n.Add(1)
	return r.Store.HasBlock(h)
}

// treeShape is the tree as comparable text: each node with its parent,
// height, rank and flags, and the tip.
func treeShape(m *Manager) map[string]string {
	m.ix.mu.RLock()
	defer m.ix.mu.RUnlock()
	out := make(map[string]string, len(m.ix.nodes)+1)
	for h, n := range m.ix.nodes {
		parent := "none"
		if n.Parent != nil {
			parent = n.Parent.Hash.String()
		}
		out[h.String()] = fmt.Sprintf("parent=%s height=%d rank=%d ts=%d flags=%b", parent, n.Height, n.Rank, n.Timestamp, n.Flags)
	}
	out["tip"] = fmt.Sprintf("%s justified=%d/%v", m.ix.tip.Hash, m.ix.tip.Justified, m.ix.tip.JustifiedKnown)
	return out
}

func hashesOf(nodes []*Node) []chain.Hash {
	out := make([]chain.Hash, len(nodes))
	for i, n := range nodes {
		out[i] = n.Hash
	}
	return out
}

func blockHashes(blocks []*chain.Block) []chain.Hash {
	out := make([]chain.Hash, len(blocks))
	for i, b := range blocks {
		out[i] = b.Hash()
	}
	return out
}

// TestBlockTreeFollowsSideBlocksReorgsAndRestarts: side blocks join the
// tree off the main chain, a reorg moves the main-chain bits and the tip,
// ancestry is walked without a store read, and the tree loaded at start
// equals the one built block by block.
func TestBlockTreeFollowsSideBlocksReorgsAndRestarts(t *testing.T) {
	tc := newTestChain(t)
	if err := tc.m.Close(); err != nil {
		t.Fatal(err)
	}
	var rc *readCounter
	tc.open(func(s Store) Store { rc = &readCounter{Store: s}; return rc })
	m := tc.m
	g0 := m.Head()
	a := tc.chainOf(g0, 3, 10)
	mustImport(t, m, a)
	b := tc.chainOf(g0, 2, 11)
	mustImport(t, m, b) // lower than the head: side blocks
	if m.Head() != a[2] {
		t.Fatalf("head %d, want a[2]", m.Head().Height)
	}
	for _, blk := range b {
		n, ok := m.ix.node(blk.Hash())
		if !ok || n.Flags != NodeValid || n.Parent == nil || n.Parent.Hash != blk.PrevHash {
			t.Fatalf("side block %d in the tree: %+v %v", blk.Height, n, ok)
		}
	}

	// The ancestry of a side block, and fork choice on it, from the tree alone.
	before := rc.n.Load()
	nodes, fork, err := m.ix.branch(b[1].Hash())
	if err != nil || fork.Hash != g0.Hash() || !slices.Equal(hashesOf(nodes), blockHashes(b)) {
		t.Fatalf("branch of b[1]: %v, fork %v, err %v", hashesOf(nodes), fork, err)
	}
	if better, err := m.chooses(nodes[len(nodes)-1]); better || err != nil {
		t.Fatalf("a shorter branch chosen: %v %v", better, err)
	}
	if reads := rc.n.Load() - before; reads != 0 {
		t.Fatalf("walking a side branch read the store %d times", reads)
	}
	// Offered again, a stored side block that loses is answered from the
	// tree: no block decoded (before the tree it was validated again, its
	// branch's state computed from the store).
	before = rc.decodes.Load()
	if err := m.ProcessBlock(b[1]); !errors.Is(err, ErrKnownBlock) {
		t.Fatalf("known side block: %v", err)
	}
	if reads := rc.decodes.Load() - before; reads != 0 {
		t.Fatalf("a known side block offered again decoded %d blocks", reads)
	}

	// The b branch overtakes: a reorg.
	c := tc.chainOf(b[1], 2, 11)
	mustImport(t, m, c)
	if m.Head() != c[1] {
		t.Fatalf("head at %d after the longer branch, want c[1]", m.Head().Height)
	}
	tip := m.ix.head()
	if tip.Hash != c[1].Hash() || !tip.JustifiedKnown {
		t.Fatalf("tree tip %v (justified known %v), want c[1]", tip.Hash, tip.JustifiedKnown)
	}
	for _, blk := range append(slices.Clone(b), c...) {
		if n, _ := m.ix.node(blk.Hash()); n == nil || n.Flags&NodeMain == 0 {
			t.Fatalf("block %d of the new main chain not marked main", blk.Height)
		}
	}
	before = rc.n.Load()
	nodes, fork, err = m.ix.branch(a[2].Hash())
	if err != nil || fork.Hash != g0.Hash() || !slices.Equal(hashesOf(nodes), blockHashes(a)) {
		t.Fatalf("branch of the reverted a[2]: %v, fork %v, err %v", hashesOf(nodes), fork, err)
	}
	if reads := rc.n.Load() - before; reads != 0 {
		t.Fatalf("walking the reverted branch read the store %d times", reads)
	}

	built := treeShape(m)
	tc.restart()
	if loaded := treeShape(tc.m); !maps.Equal(built, loaded) {
		t.Fatalf("tree after restart differs:\nbuilt  %v\nloaded %v", built, loaded)
	}
	// A start loads the main chain's window from headers alone: it
	// decodes no main-chain block (only the stored side blocks, here b's
	// reverted a, and the head, are decoded whole).
	if err := tc.m.Close(); err != nil {
		t.Fatal(err)
	}
	tc.open(func(s Store) Store { rc = &readCounter{Store: s}; return rc })
	if side, err := rc.Store.SideBlocks(); err != nil || rc.decodes.Load() > int64(len(side)) {
		t.Fatalf("a start decoded %d blocks with %d side blocks stored (%v)", rc.decodes.Load(), len(side), err)
	}
}

// TestBlockTreeWindowIsBounded: the main chain's nodes below the window
// are dropped (with the parent pointer into them), so the tree stays
// bounded however long the chain.
func TestBlockTreeWindowIsBounded(t *testing.T) {
	tc := newTestChain(t)
	m := tc.m
	blocks := tc.chainOf(m.Head(), mainWindow+3*pruneEvery, 10)
	mustImport(t, m, blocks)
	m.ix.mu.RLock()
	size := len(m.ix.nodes)
	lowest := m.ix.tip
	for lowest.Parent != nil {
		lowest = lowest.Parent
	}
	m.ix.mu.RUnlock()
	if size > mainWindow+pruneEvery+1 {
		t.Fatalf("%d nodes for a chain of %d, window %d", size, len(blocks), mainWindow)
	}
	if want := m.Head().Height - uint64(size) + 1; lowest.Height != want {
		t.Fatalf("lowest linked node at %d, want %d", lowest.Height, want)
	}
	tc.restart()
	tc.m.ix.mu.RLock()
	defer tc.m.ix.mu.RUnlock()
	if n := len(tc.m.ix.nodes); n != mainWindow+1 {
		t.Fatalf("%d nodes loaded, want the window %d", n, mainWindow+1)
	}
}
