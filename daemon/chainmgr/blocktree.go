package chainmgr

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/store"
)

// The block tree: what the manager knows of the blocks within reorg reach,
// in memory, after btcd's blockNode. A Node holds the header fields fork
// choice and ancestry need (hash, parent, height, rank, timestamp), its
// status bits and, when the state after it is known, its branch's
// justified checkpoint. Ancestry walks (which branch a block is on, where
// it meets the main chain, the common ancestor of two tips) follow Parent
// pointers and never read the store; only a block's body (transactions,
// to apply them) is read from disk, and only once a walk decided it is
// needed.
//
// Bounds: the tree keeps the main chain's most recent mainWindow blocks
// and the stored side blocks (themselves pruned below the reorg limit,
// sidecap.go bounds them further). Older main-chain nodes are dropped, not
// kept compactly: no branch forking below the reorg limit may win, so a
// walk that runs off the bottom of the window is a reorg too deep (or an
// unknown parent) whatever lies below. The window is the reorg limit plus
// two pruning periods, so that a side block the store still holds (pruned
// every pruneEvery heights, below head-MaxReorgDepth) always finds its
// fork point in the tree.
//
// The tree is loaded at start from the store (New: the window's main-chain
// blocks and every stored side block) and updated on every commit
// (publishLocked: added blocks join the main chain, reverted ones leave
// it), every side block stored (sideLocked) and every pruning.

// mainWindow is how many main-chain nodes below the head the tree keeps.
const mainWindow = MaxReorgDepth + 2*pruneEvery

// NodeFlags are a node's status bits.
type NodeFlags uint8

// Node status bits. A node in the tree is valid (fully validated and
// stored); NodeMain marks the main chain. Invalid blocks are not nodes
// (never stored, their parents not always known): the index remembers
// them by hash.
const (
	NodeValid NodeFlags = 1 << iota
	NodeMain
)

// Node is one block in the tree. Its fields do not change once it is in
// the tree, except Flags, Parent (cut when the window moves) and the
// justified checkpoint, which change only under both the import lock and
// the tree's lock: fork choice, which runs under the import lock, reads
// nodes and walks Parent freely; other readers go through the tree's
// methods.
type Node struct {
	Parent    *Node // nil at the bottom of the window (or not known)
	Hash      chain.Hash
	PrevHash  chain.Hash
	Height    uint64
	Rank      uint32
	Timestamp int64
	Flags     NodeFlags
	// Justified is the height of the justified checkpoint of the chain
	// state after this block (chain.State.Finality().Justified), when
	// JustifiedKnown: always for the main chain's tip, for a side branch
	// once the manager computed the state after it (it does when it
	// validates a side block). Fork choice v3 compares it.
	Justified      uint64
	JustifiedKnown bool
}

// newNode is the node of b, linked to parent (nil: not known).
func newNode(b *chain.Block, hash chain.Hash, parent *Node) *Node {
	return headerNode(&b.Header, hash, parent)
}

// headerNode is newNode from a block's header.
func headerNode(h *chain.Header, hash chain.Hash, parent *Node) *Node {
	return &Node{Parent: parent, Hash: hash, PrevHash: h.PrevHash, Height: h.Height, Rank: h.Rank, Timestamp: h.Timestamp, Flags: NodeValid}
}

// setJustified records the justified checkpoint of the state after n.
func (n *Node) setJustified(st *chain.State) {
	n.Justified, n.JustifiedKnown = st.Finality().Justified.Height, true
}

// Fork returns the common ancestor of a and b and the first node above it
// on each side (nil when a or b is the ancestor itself); ancestor is nil
// when the two do not meet within the tree.
func Fork(a, b *Node) (ancestor, aFirst, bFirst *Node) {
	for a != nil && b != nil && a != b && a.Hash != b.Hash {
		if a.Height >= b.Height {
			aFirst, a = a, a.Parent
		} else {
			bFirst, b = b, b.Parent
		}
	}
	if a == nil || b == nil {
		return nil, nil, nil
	}
	return a, aFirst, bFirst
}

// index is the block tree plus what the manager knows beyond it: invalid
// blocks (remembered, never stored) and the side blocks counted under the
// caps, all mirrored on disk so a restart knows them.
type index struct {
	mu      sync.RWMutex
	nodes   map[chain.Hash]*Node
	tip     *Node // the main chain's head
	invalid map[chain.Hash]store.BlockRef
	book    sideBook // side blocks under the caps (sidecap.go)

	// For the invalid records: where they are kept, the log, and the
	// counter of blocks refused as known invalid. Set by load.
	st           Store
	log          *slog.Logger
	knownInvalid *atomic.Int64
}

// load builds the tree from the store: the main chain's window below head
// and every stored side block, then the invalid records.
func (ix *index) load(st Store, log *slog.Logger, knownInvalid *atomic.Int64, head *chain.Block, headState *chain.State) error {
	ix.st, ix.log, ix.knownInvalid = st, log, knownInvalid
	ix.nodes = make(map[chain.Hash]*Node)
	ix.invalid = make(map[chain.Hash]store.BlockRef)
	ix.book.init()
	from := uint64(0)
	if head.Height > mainWindow {
		from = head.Height - mainWindow
	}
	// Headers only: the tree needs no transactions, and reading the
	// window's blocks whole read and decoded hundreds of MB at a start on
	// a chain of full blocks.
	for from <= head.Height {
		headers, err := st.Headers(from, int(head.Height-from+1))
		if err != nil {
			return err
		}
		if len(headers) == 0 {
			return fmt.Errorf("chainmgr: main chain has no block at height %d", from)
		}
		for _, h := range headers {
			n := headerNode(h, h.Hash(), nil)
			n.Flags |= NodeMain
			ix.nodes[n.Hash] = n
		}
		from = headers[len(headers)-1].Height + 1
	}
	side, err := st.SideBlocks()
	if err != nil {
		return err
	}
	for _, r := range side {
		b, err := st.BlockByHash(r.Hash)
		if err != nil {
			return fmt.Errorf("read side block %s: %w", r.Hash, err)
		}
		ix.nodes[r.Hash] = newNode(b, r.Hash, nil)
		ix.book.add(r.Hash, sideEntry{slot: slotOf(b), size: int64(len(chain.EncodeBlock(b)))})
	}
	for _, n := range ix.nodes {
		n.Parent = ix.nodes[n.PrevHash]
	}
	ix.tip = ix.nodes[head.Hash()]
	ix.tip.setJustified(headState)
	inv, err := st.InvalidBlocks()
	if err != nil {
		return err
	}
	for _, r := range inv {
		ix.invalid[r.Hash] = r
	}
	return nil
}

func (ix *index) invalidRef(h chain.Hash) (store.BlockRef, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	r, ok := ix.invalid[h]
	return r, ok
}

func (ix *index) isSide(h chain.Hash) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n, ok := ix.nodes[h]
	return ok && n.Flags&NodeMain == 0
}

// node returns the tree's node for h.
func (ix *index) node(h chain.Hash) (*Node, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n, ok := ix.nodes[h]
	return n, ok
}

// head is the main chain's tip node.
func (ix *index) head() *Node {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.tip
}

// candidate is the node b would be, on its parent in the tree, without
// adding it (fork choice weighs it before it is stored); st, if not nil,
// is the state after it.
func (ix *index) candidate(b *chain.Block, hash chain.Hash, st *chain.State) *Node {
	ix.mu.RLock()
	n := newNode(b, hash, ix.nodes[b.PrevHash])
	ix.mu.RUnlock()
	if st != nil {
		n.setJustified(st)
	}
	return n
}

// setJustified records the justified checkpoint of the state after n, a
// node already in the tree (under the import lock: see Node).
func (ix *index) setJustified(n *Node, st *chain.State) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n.setJustified(st)
}

// addLocked puts b in the tree (or returns its node), linked to its parent.
func (ix *index) addLocked(b *chain.Block, hash chain.Hash) *Node {
	if n, ok := ix.nodes[hash]; ok {
		return n
	}
	n := newNode(b, hash, ix.nodes[b.PrevHash])
	ix.nodes[hash] = n
	return n
}

// addSide records b as a stored side block; st, if not nil, is the state
// after it. size > 0: counted under the caps (sidecap.go).
func (ix *index) addSide(b *chain.Block, h chain.Hash, size int64, st *chain.State) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := ix.addLocked(b, h)
	if st != nil {
		n.setJustified(st)
	}
	if size > 0 {
		ix.book.add(h, sideEntry{slot: slotOf(b), size: size})
	}
}

// connect follows a commit: reverted blocks (newest first) leave the main
// chain and stay as side nodes, added blocks (oldest first) join it, and
// st is the state after the new tip.
func (ix *index) connect(added, reverted []*chain.Block, st *chain.State) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, b := range reverted {
		if n, ok := ix.nodes[b.Hash()]; ok {
			n.Flags &^= NodeMain
		}
	}
	for _, b := range added {
		h := b.Hash()
		n := ix.addLocked(b, h)
		n.Flags |= NodeMain
		ix.book.remove(h)
		ix.tip = n
	}
	ix.tip.setJustified(st)
}

// branch walks from the node of hash back to the main chain: the branch
// ending with it (ascending; empty when it is on the main chain) and the
// main-chain node it forks from. It reads nothing but the tree.
func (ix *index) branch(hash chain.Hash) ([]*Node, *Node, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	cur, ok := ix.nodes[hash]
	if !ok {
		return nil, nil, ErrUnknownParent
	}
	var branch []*Node
	for i := 0; cur.Flags&NodeMain == 0; i++ {
		if i > MaxReorgDepth+1 {
			return nil, nil, &chain.RuleError{Code: ErrReorgTooDeep.Code, Message: "branch longer than the reorg limit without meeting the main chain"}
		}
		branch = append(branch, cur)
		if cur.Parent == nil {
			// Below the window, or pruned: either way out of reach.
			if ix.tip != nil && cur.Height+MaxReorgDepth < ix.tip.Height {
				return nil, nil, &chain.RuleError{Code: ErrReorgTooDeep.Code, Message: fmt.Sprintf("branch reaches height %d without meeting the main chain", cur.Height)}
			}
			return nil, nil, ErrUnknownParent
		}
		cur = cur.Parent
	}
	for l, r := 0, len(branch)-1; l < r; l, r = l+1, r-1 {
		branch[l], branch[r] = branch[r], branch[l]
	}
	return branch, cur, nil
}

// check refuses a block known invalid, or whose parent is.
func (ix *index) check(b *chain.Block, hash chain.Hash) error {
	if ref, ok := ix.invalidRef(hash); ok {
		ix.knownInvalid.Add(1)
		return knownInvalid(hash, ref.Code)
	}
	if ref, ok := ix.invalidRef(b.PrevHash); ok {
		ix.knownInvalid.Add(1)
		return &chain.RuleError{Code: ErrInvalidAncestor.Code, Message: fmt.Sprintf("parent %s is invalid (%s)", b.PrevHash, ref.Code)}
	}
	return nil
}

// judge remembers a block that broke a rule binding its hash, on disk
// too.
func (ix *index) judge(b *chain.Block, hash chain.Hash, err error) {
	code, ok := remembered(err)
	if !ok {
		return
	}
	ref := store.BlockRef{Hash: hash, Height: b.Height, Code: code}
	if !ix.addInvalid(ref) {
		return
	}
	if perr := ix.st.PutInvalid(ref); perr != nil {
		ix.log.Warn("could not record an invalid block", "hash", hash.String(), "err", perr.Error())
	}
	ix.log.Info("block refused", "height", b.Height, "hash", hash.String(), "forger", string(b.Forger), "err", err.Error())
}

// addInvalid remembers ref; false when the index is full or knew it.
func (ix *index) addInvalid(ref store.BlockRef) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if _, ok := ix.invalid[ref.Hash]; ok || len(ix.invalid) >= maxInvalid {
		return false
	}
	ix.invalid[ref.Hash] = ref
	return true
}

// prune drops the side blocks the store removed, invalid records below
// below, and main-chain nodes below the window (their children's Parent
// is cut, so nothing keeps them alive).
func (ix *index) prune(below uint64, removed []store.BlockRef) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, r := range removed {
		delete(ix.nodes, r.Hash)
		ix.book.remove(r.Hash)
	}
	for h, r := range ix.invalid {
		if r.Height < below {
			delete(ix.invalid, h)
		}
	}
	if ix.tip == nil || ix.tip.Height <= mainWindow {
		return
	}
	cut := ix.tip.Height - mainWindow
	for h, n := range ix.nodes {
		if n.Height < cut {
			delete(ix.nodes, h)
		}
	}
	for _, n := range ix.nodes {
		if n.Parent != nil && n.Parent.Height < cut {
			n.Parent = nil
		}
	}
}

// blocksOf reads the blocks of nodes from the store (their bodies: a walk
// decided they are needed).
func blocksOf(st Store, nodes []*Node) ([]*chain.Block, error) {
	out := make([]*chain.Block, len(nodes))
	for i, n := range nodes {
		b, err := st.BlockByHash(n.Hash)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrUnknownParent
		} else if err != nil {
			return nil, local("read block", err)
		}
		out[i] = b
	}
	return out, nil
}
