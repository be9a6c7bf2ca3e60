package daemon

import (
	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/chainmgr"
)

// MaxReorgDepth is the deepest reorg a node accepts (chainmgr.MaxReorgDepth).
const MaxReorgDepth = chainmgr.MaxReorgDepth

// Import outcomes, as the chain manager reports them.
var (
	ErrKnownBlock    = chainmgr.ErrKnownBlock
	ErrSideBlock     = chainmgr.ErrSideBlock
	ErrUnknownParent = chainmgr.ErrUnknownParent
	ErrReorgTooDeep  = chainmgr.ErrReorgTooDeep
)

// chainEventBytes bounds what the chain's events may hold while
// followChain catches up (a sync commits faster than it reads): past it
// they are coalesced, reverted blocks and the newest state kept, which is
// all the pool needs; API block streams miss the oldest blocks then.
const chainEventBytes = 16 << 20

// followChain keeps the node's other parts in step with the chain: it
// puts back into the pool the transactions of reverted blocks, re-checks
// the pool against the new state, tells API subscribers about new blocks
// and wakes the forger. The chain manager only publishes events; it knows
// nothing of these parts.
func (n *Node) followChain(events <-chan chainmgr.Event) {
	if n.fin.voter != nil {
		n.fin.voter.OnHead() // the head the node started on
	}
	for ev := range events {
		// All reverted blocks at once: a sender's later reverted nonces
		// must not be judged before its earlier ones are back.
		var reverted []chain.Transaction
		for _, rb := range ev.Reverted {
			reverted = append(reverted, rb.Transactions...)
		}
		if len(reverted) > 0 {
			n.pool.Reinsert(reverted, ev.Snapshot)
		}
		for _, e := range n.pool.Update(ev.Snapshot) {
			n.metrics.evicted.Add(1)
			n.log.Info("transaction evicted from the pool", "tx", e.Tx.ID().String(), "from", string(e.Tx.From), "reason", e.Err.Error())
		}
		if ev.MissedBlocks > 0 {
			n.log.Debug("block events coalesced while the chain moved fast", "missed_blocks", ev.MissedBlocks)
		}
		for _, b := range ev.Added {
			n.log.Debug("block imported", "height", b.Height, "hash", b.Hash().String(), "txs", len(b.Transactions), "rank", b.Rank)
			n.api.Notify(b)
		}
		n.fin.onChain(ev) // votes in and out of the pool, a vote on the new head
		n.forger.Poke()
	}
}
