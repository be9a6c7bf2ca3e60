package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/store"
)

// MaxReorgDepth is the deepest reorg a node accepts: a branch forking
// further back is refused, so a long-absent peer cannot rewrite history.
const MaxReorgDepth = 64

// Block import outcomes that are not the block's fault.
var (
	// ErrKnownBlock: the block is already stored.
	ErrKnownBlock = errors.New("block already known")
	// ErrUnknownParent: the block's parent is not stored; sync first.
	ErrUnknownParent = errors.New("unknown parent")
	// ErrReorgTooDeep refuses a branch that forks more than MaxReorgDepth back.
	ErrReorgTooDeep = &chain.RuleError{Code: "reorg_too_deep"}
)

// electionCache keeps the candidates elected on recent parents: an election
// costs time that grows with stake (the lottery hashes once per staked
// coin), and a node asks for the same parent many times.
type electionCache struct {
	mu     sync.Mutex
	byHash map[chain.Hash][]chain.Address
	order  []chain.Hash
}

const electionCacheSize = 256

func (c *electionCache) get(h chain.Hash) ([]chain.Address, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.byHash[h]
	return v, ok
}

func (c *electionCache) put(h chain.Hash, cands []chain.Address) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byHash == nil {
		c.byHash = make(map[chain.Hash][]chain.Address)
	}
	if _, ok := c.byHash[h]; ok {
		return
	}
	c.byHash[h] = cands
	c.order = append(c.order, h)
	if len(c.order) > electionCacheSize {
		delete(c.byHash, c.order[0])
		c.order = c.order[1:]
	}
}

// candidatesLocked returns the forger candidates for the block after parent,
// whose post-state is n.state. Caller holds n.mu (shared or exclusive).
func (n *Node) candidatesLocked(parent *chain.Header) []chain.Address {
	ph := parent.Hash()
	if c, ok := n.elect.get(ph); ok {
		return c
	}
	c := chain.ElectWith(n.alg, n.g.MaxRank, chain.ElectionSeed(n.g, parent), chain.ElectionTable(n.g, n.state))
	n.elect.put(ph, c)
	return c
}

// ImportBlock validates b and adds it to the chain: it extends the head,
// or is kept as a side branch, or triggers a reorg when its branch wins the
// fork choice. It returns nil when the head moved, ErrKnownBlock,
// ErrSideBlock (kept, but its branch loses), ErrUnknownParent, or the rule
// error that refused it.
func (n *Node) ImportBlock(b *chain.Block) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.importLocked(b)
}

func (n *Node) importLocked(b *chain.Block) error {
	if err := n.halted.Load(); err != nil {
		return *err
	}
	hash := b.Hash()
	if known, err := n.st.HasBlock(hash); err != nil {
		return err
	} else if known {
		return n.knownBlockLocked(b, hash)
	}
	if b.PrevHash == n.head.Hash() {
		return n.extendLocked(b)
	}
	if ok, err := n.st.HasBlock(b.PrevHash); err != nil {
		return err
	} else if !ok {
		return ErrUnknownParent
	}
	return n.sideBlockLocked(b)
}

// extendLocked validates b on the head, applies it and commits it.
func (n *Node) extendLocked(b *chain.Block) error {
	parent := &n.head.Header
	cands := n.candidatesLocked(parent)
	undo, err := chain.ValidateAndApply(n.g, parent, b, cands, n.state, n.cfg.Now().UnixMilli(), n.pool.Verifier())
	if err != nil {
		return err
	}
	if err := n.st.Commit(b, undo, n.state); err != nil {
		n.state.Revert(undo)
		return fmt.Errorf("commit block %d: %w", b.Height, err)
	}
	n.head = b
	n.afterHeadChangeLocked([]*chain.Block{b}, nil)
	n.log.Debug("block imported", "height", b.Height, "hash", b.Hash().String(), "txs", len(b.Transactions), "rank", b.Rank)
	return nil
}

// afterHeadChangeLocked runs once the chain moved: added blocks joined the
// main chain (oldest first), reverted ones left it. It counts, refills and
// re-checks the pool, and tells subscribers about the new blocks.
func (n *Node) afterHeadChangeLocked(added, reverted []*chain.Block) {
	for _, b := range reverted {
		n.metrics.txsCommitted.Add(-int64(len(b.Transactions)))
	}
	for _, b := range added {
		n.metrics.blocksImported.Add(1)
		n.metrics.txsCommitted.Add(int64(len(b.Transactions)))
	}
	for _, rb := range reverted {
		n.pool.Reinsert(rb.Transactions, n.state)
	}
	for _, ev := range n.pool.Update(n.state) {
		n.metrics.evicted.Add(1)
		n.log.Info("transaction evicted from the pool", "tx", ev.Tx.ID().String(), "from", string(ev.Tx.From), "reason", ev.Err.Error())
	}
	for _, b := range added {
		n.notify(b)
	}
	n.poke()
}

// ImportBlocks imports consecutive blocks, as sync delivers them. Blocks
// that extend the head are validated one by one in memory and committed
// together in one bbolt transaction (atomic like a single block: a crash
// keeps all or none), which spares a disk sync per block. It returns how
// many blocks it got through and, if it stopped early, why: the error of
// blocks[accepted], with ImportBlock's meanings. Known blocks and side
// blocks that were kept count as got through.
func (n *Node) ImportBlocks(blocks []*chain.Block) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.halted.Load(); err != nil {
		return 0, *err
	}
	tip := n.head
	var batch []*chain.Block
	var undos []*chain.Undo
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := n.st.Switch(0, batch, undos, n.state); err != nil {
			for i := len(undos) - 1; i >= 0; i-- {
				n.state.Revert(undos[i])
			}
			return fmt.Errorf("commit %d blocks: %w", len(batch), err)
		}
		n.head = batch[len(batch)-1]
		n.afterHeadChangeLocked(batch, nil)
		batch, undos = nil, nil
		return nil
	}
	now := n.cfg.Now().UnixMilli()
	start := 0 // index in blocks of batch[0]: what a failed flush loses
	for i, b := range blocks {
		if b.PrevHash == tip.Hash() {
			undo, err := chain.ValidateAndApply(n.g, &tip.Header, b, n.candidatesLocked(&tip.Header), n.state, now, n.pool.Verifier())
			if err != nil {
				if ferr := flush(); ferr != nil {
					return start, ferr
				}
				return i, err
			}
			if len(batch) == 0 {
				start = i
			}
			batch, undos, tip = append(batch, b), append(undos, undo), b
			continue
		}
		if err := flush(); err != nil {
			return start, err
		}
		if err := n.importLocked(b); err != nil && !errors.Is(err, ErrKnownBlock) && !errors.Is(err, ErrSideBlock) {
			return i, err
		}
		tip = n.head
	}
	if err := flush(); err != nil {
		return start, err
	}
	return len(blocks), nil
}

// ErrSideBlock: the block is valid as far as a node can tell without its
// branch's state, and kept, but its branch loses the fork choice. It is not
// the sender's fault, and not worth forwarding.
var ErrSideBlock = errors.New("side block: its branch does not win the fork choice")

// knownBlockLocked answers a block already stored. On the main chain it is
// just known; on a side branch the fork choice runs again, since what
// refused the branch before may have been passing (a timestamp ahead of
// our clock, a failed disk write).
func (n *Node) knownBlockLocked(b *chain.Block, hash chain.Hash) error {
	if main, err := n.st.HashAt(b.Height); err == nil && main == hash {
		return ErrKnownBlock
	}
	stored, err := n.st.BlockByHash(hash)
	if err != nil {
		return err
	}
	branch, fork, err := n.branchTo(stored)
	if err != nil {
		return err
	}
	if better, err := n.betterThanMain(branch, fork); err != nil || !better {
		if err == nil {
			err = ErrKnownBlock
		}
		return err
	}
	return n.reorgLocked(branch, fork)
}

// sideBlockLocked checks a block whose parent is known but is not the head,
// stores it, then applies the fork choice: the higher chain wins; at equal
// height the branch whose first differing block has the lower rank, then
// the lower hash. Everything that can be checked without the branch's state
// is checked before the block costs disk (signatures of the header and of
// every transaction, tx root, rank, timestamps, and the forger when the
// parent's election is known), so a peer cannot fill the store with junk.
func (n *Node) sideBlockLocked(b *chain.Block) error {
	parent, err := n.st.BlockByHash(b.PrevHash)
	if err != nil {
		return err
	}
	now := n.cfg.Now().UnixMilli()
	if cands, ok := n.elect.get(b.PrevHash); ok {
		err = chain.CheckHeader(n.g, &parent.Header, b, cands, now)
	} else {
		err = chain.CheckHeaderUnelected(n.g, &parent.Header, b, now)
	}
	if err != nil {
		return err
	}
	if err := chain.CheckBlockTxs(n.g, b, n.pool.Verifier()); err != nil {
		return err
	}
	branch, fork, err := n.branchTo(b)
	if err != nil {
		return err
	}
	if n.head.Height-fork.Height > MaxReorgDepth {
		return &chain.RuleError{Code: ErrReorgTooDeep.Code, Message: fmt.Sprintf("branch forks at height %d, %d blocks below the head (limit %d)", fork.Height, n.head.Height-fork.Height, MaxReorgDepth)}
	}
	if err := n.st.PutBlock(b); err != nil {
		return err
	}
	better, err := n.betterThanMain(branch, fork)
	if err != nil {
		return err
	}
	if !better {
		return ErrSideBlock
	}
	return n.reorgLocked(branch, fork)
}

// branchTo walks from b back to the main chain: it returns the branch's
// blocks in ascending order (ending with b) and the main-chain block it forks from.
func (n *Node) branchTo(b *chain.Block) ([]*chain.Block, *chain.Block, error) {
	branch := []*chain.Block{b}
	cur := b
	for i := 0; ; i++ {
		if i > MaxReorgDepth+1 {
			return nil, nil, &chain.RuleError{Code: ErrReorgTooDeep.Code, Message: "branch longer than the reorg limit without meeting the main chain"}
		}
		parent, err := n.st.BlockByHash(cur.PrevHash)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, ErrUnknownParent
		} else if err != nil {
			return nil, nil, err
		}
		mainHash, err := n.st.HashAt(parent.Height)
		if err == nil && mainHash == cur.PrevHash {
			for l, r := 0, len(branch)-1; l < r; l, r = l+1, r-1 {
				branch[l], branch[r] = branch[r], branch[l]
			}
			return branch, parent, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, nil, err
		}
		branch = append(branch, parent)
		cur = parent
	}
}

// betterThanMain applies the fork choice between the branch and the main chain above fork.
func (n *Node) betterThanMain(branch []*chain.Block, fork *chain.Block) (bool, error) {
	tip := branch[len(branch)-1]
	switch {
	case tip.Height > n.head.Height:
		return true, nil
	case tip.Height < n.head.Height:
		return false, nil
	}
	mainFirst, err := n.st.BlockByHeight(fork.Height + 1)
	if err != nil {
		return false, err
	}
	first := branch[0]
	if first.Rank != mainFirst.Rank {
		return first.Rank < mainFirst.Rank, nil
	}
	fh, mh := first.Hash(), mainFirst.Hash()
	return bytes.Compare(fh[:], mh[:]) < 0, nil
}

// reorgLocked reverts the main chain down to fork and applies branch, all
// validated; the store switches in one transaction. If any branch block is
// invalid, the node stays on its chain, state untouched.
func (n *Node) reorgLocked(branch []*chain.Block, fork *chain.Block) error {
	oldHead := n.head
	var reverted []*chain.Block
	var revertedUndos []*chain.Undo
	for h := oldHead.Height; h > fork.Height; h-- {
		blk, err := n.st.BlockByHeight(h)
		if err != nil {
			n.reapply(reverted, revertedUndos)
			return err
		}
		undo, err := n.st.Undo(h)
		if err != nil {
			n.reapply(reverted, revertedUndos)
			return err
		}
		n.state.Revert(undo)
		reverted = append(reverted, blk)
		revertedUndos = append(revertedUndos, undo)
	}
	undos := make([]*chain.Undo, 0, len(branch))
	parent := &fork.Header
	now := n.cfg.Now().UnixMilli()
	for _, blk := range branch {
		cands := n.candidatesLocked(parent)
		undo, err := chain.ValidateAndApply(n.g, parent, blk, cands, n.state, now, n.pool.Verifier())
		if err != nil {
			for i := len(undos) - 1; i >= 0; i-- {
				n.state.Revert(undos[i])
			}
			n.reapply(reverted, revertedUndos)
			n.log.Warn("branch refused", "height", blk.Height, "hash", blk.Hash().String(), "err", err.Error())
			return err
		}
		undos = append(undos, undo)
		parent = &blk.Header
	}
	if err := n.st.Switch(len(reverted), branch, undos, n.state); err != nil {
		for i := len(undos) - 1; i >= 0; i-- {
			n.state.Revert(undos[i])
		}
		n.reapply(reverted, revertedUndos)
		return fmt.Errorf("switch to branch: %w", err)
	}
	n.head = branch[len(branch)-1]
	n.metrics.reorgs.Add(1)
	n.log.Info("reorganised", "fork_height", fork.Height, "reverted", len(reverted), "applied", len(branch),
		"old_head", oldHead.Hash().String(), "new_head", n.head.Hash().String())
	n.afterHeadChangeLocked(branch, reverted)
	return nil
}

// reapply restores blocks reverted during a failed reorg (newest first in
// the slices), re-applying them oldest first. They were valid, so Apply
// cannot fail; if it does, the in-memory state is reloaded from disk, which
// still holds the old chain.
func (n *Node) reapply(reverted []*chain.Block, undos []*chain.Undo) {
	for i := len(reverted) - 1; i >= 0; i-- {
		if _, err := n.state.Apply(reverted[i], n.g); err != nil {
			n.log.Error("re-applying a reverted block failed; reloading state from disk", "height", reverted[i].Height, "err", err)
			st, lerr := n.st.LoadState()
			if lerr != nil {
				// Memory and disk disagree and disk cannot be read: going on
				// would validate blocks against a wrong state.
				n.halt(fmt.Errorf("state lost after a failed reorg: %v; reading it from disk: %w", err, lerr))
				return
			}
			n.state = st
			return
		}
	}
}

// halt stops the node from forging and importing after an error it cannot
// recover from; the API keeps answering so the operator can see what
// happened (the log says it), and a restart reloads state from disk.
func (n *Node) halt(err error) {
	n.log.Error("node halted: restart it", "err", err.Error())
	n.halted.Store(&err)
	if n.cancel != nil {
		n.cancel()
	}
}
