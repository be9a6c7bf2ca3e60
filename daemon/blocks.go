package daemon

import "github.com/poslab/posd/daemon/chainmgr"

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
// they are coalesced, the newest state and the head before them kept,
// which is all the pool needs (it walks from that head to the chain's
// itself: Pool.Reset); API block streams miss the oldest blocks then.
const chainEventBytes = 16 << 20

// followChain keeps the node's other parts in step with the chain: it
// moves the pool to the new head (Pool.Reset: the transactions of blocks
// a reorg reverted go back, the pool re-checks itself against the new
// state), tells API subscribers about new blocks and wakes the forger.
// The chain manager only publishes events; it knows nothing of these
// parts.
func (n *Node) followChain(events <-chan chainmgr.Event) {
	if n.fin.voter != nil {
		n.fin.voter.OnHead() // the head the node started on
	}
	for ev := range events {
		// Votes first: the next forger waits for this node's vote on the
		// new head, and the pool's reset below takes 10-30 ms for a full
		// block.
		n.fin.onChain(ev) // votes in and out of the pool, a vote on the new head
		rs, evicted := n.pool.Reset(n.chain, ev.Prev, ev.Snapshot, ev.Reverted, ev.Added)
		if rs.Err != nil {
			n.log.Warn("the pool could not walk back all of a reorg", "reverted_blocks", rs.RevertedBlocks, "err", rs.Err.Error())
		}
		for _, e := range evicted {
			n.metrics.evicted.Add(1)
			n.log.Info("transaction evicted from the pool", "tx", e.Tx.ID().String(), "from", string(e.Tx.From), "reason", e.Err.Error())
		}
		if ev.MissedBlocks > 0 || ev.MissedReverted > 0 {
			n.log.Debug("block events coalesced while the chain moved fast", "missed_blocks", ev.MissedBlocks,
				"missed_reverted", ev.MissedReverted, "read_blocks", rs.ReadBlocks)
		}
		for _, b := range ev.Added {
			n.log.Debug("block imported", "height", b.Height, "hash", b.Hash().String(), "txs", len(b.Transactions), "rank", b.Rank)
			n.api.Notify(b)
		}
		n.forger.Poke()
	}
}
