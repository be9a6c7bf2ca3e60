package mempool

import (
	"errors"
	"fmt"

	"github.com/poslab/posd/chain"
)

// maxResetDepth bounds the blocks one Reset walks back from the old head:
// well past the deepest reorg a node accepts (chainmgr.MaxReorgDepth, 64)
// and the pruning that follows it.
const maxResetDepth = 256

// Chain is what Reset reads of the chain (chainmgr.Manager has it): any
// stored block by hash, main chain or side branch (a reverted block stays
// stored as a side block while a reorg could reach it), and the hash of
// the main chain's block at a height (store.ErrNotFound or any error: no
// block there).
type Chain interface {
	BlockByHash(h chain.Hash) (*chain.Block, error)
	HashAt(height uint64) (chain.Hash, error)
}

// ResetStats say what one Reset found.
type ResetStats struct {
	RevertedBlocks int // blocks between the old head and the main chain
	RevertedTxs    int // their transactions, offered back to the pool
	ReadBlocks     int // of those blocks, read from the chain (not in known)
	// Err is why the walk stopped before it met the main chain (a block
	// unreadable, or more than maxResetDepth blocks): what it found
	// before was put back all the same.
	Err error
}

// Reset brings the pool from the chain it last followed, whose head was
// old, to the chain now, whose committed state is st (the state after the
// new head), as go-ethereum's txpool reset(old, new) does: it walks back
// from old through the stored blocks until it meets the main chain, puts
// back the transactions of every block it walked (Reinsert: those st has
// committed, on the new branch, are skipped by their nonces), then
// re-checks the pool against st (Update, whose evictions it returns).
//
// The pool computes what was reverted itself, so a follower whose events
// were coalesced, or carried only some of the reverted blocks, loses
// nothing: known holds blocks the caller has at hand (an event's reverted
// and added blocks), which the walk takes before reading the chain. The
// walk tests "on the main chain" against the chain as it is when Reset
// runs, which may be ahead of st: a block the chain reverted and then
// took back is left to the next Reset, which sees it committed, and one
// reverted since st is put back early (its transactions are not
// committed in st either). old nil (the first head followed): nothing to
// walk.
func (p *Pool) Reset(c Chain, old *chain.Block, st StateView, known ...[]*chain.Block) (ResetStats, []Eviction) {
	var rs ResetStats
	var txs []chain.Transaction
	if old != nil && c != nil {
		var have map[chain.Hash]*chain.Block // known by hash, made if a parent is needed
		onMain := func(height uint64, hash chain.Hash) bool {
			h, err := c.HashAt(height)
			return err == nil && h == hash
		}
		// Each block is tested by its hash before it is read, so the walk
		// reads only the blocks it puts back (and known has most).
		for b := old; b != nil && !onMain(b.Height, b.Hash()); {
			if b.Height == 0 {
				rs.Err = fmt.Errorf("mempool: reset: the old genesis %s is not the chain's", b.Hash())
				break
			}
			if rs.RevertedBlocks == maxResetDepth {
				rs.Err = fmt.Errorf("mempool: reset: height %d is still off the main chain after %d blocks", b.Height, maxResetDepth)
				break
			}
			rs.RevertedBlocks++
			txs = append(txs, b.Transactions...)
			if onMain(b.Height-1, b.PrevHash) {
				break
			}
			if have == nil {
				have = make(map[chain.Hash]*chain.Block)
				for _, bs := range known {
					for _, k := range bs {
						have[k.Hash()] = k
					}
				}
			}
			parent, ok := have[b.PrevHash]
			if !ok {
				var err error
				if parent, err = c.BlockByHash(b.PrevHash); err != nil {
					rs.Err = errors.Join(fmt.Errorf("mempool: reset: parent of %d", b.Height), err)
					break
				}
				rs.ReadBlocks++
			}
			b = parent
		}
	}
	rs.RevertedTxs = len(txs)
	if len(txs) > 0 {
		// All at once: a sender's later reverted nonces must not be
		// judged before its earlier ones are back.
		p.Reinsert(txs, st)
	}
	return rs, p.Update(st)
}
