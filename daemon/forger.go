package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/poslab/posd/chain"
)

// forgeLoop forges whenever this node is an elected candidate and the
// forging policy says a block is due. It wakes on new transactions, new
// heads and timers; between them it sleeps.
func (n *Node) forgeLoop(ctx context.Context) {
	var headSeen chain.Hash
	var headSeenAt time.Time
	for {
		wait := n.forgeOnce(&headSeen, &headSeenAt)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-n.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// maxForgeSleep bounds how long the forger sleeps without looking again.
const maxForgeSleep = time.Second

// forgeOnce forges a block if one is due and returns how long to sleep
// before looking again. The policy: a block is due when block_size
// transactions are executable or the oldest has waited block_interval. The
// candidate at rank 0 forges at once; the candidate at rank k waits k slots
// from the moment the block became due (and, as consensus demands, k slots
// after the parent's timestamp), giving the better-ranked forgers their turn.
func (n *Node) forgeOnce(headSeen *chain.Hash, headSeenAt *time.Time) time.Duration {
	now := n.cfg.Now()
	n.mu.RLock()
	head := n.head
	headHash := head.Hash()
	if headHash != *headSeen {
		*headSeen, *headSeenAt = headHash, now
	}
	cands := n.candidatesLocked(&head.Header)
	rank := -1
	for i, c := range cands {
		if c == n.key.Address() {
			rank = i
			break
		}
	}
	if rank < 0 {
		n.mu.RUnlock()
		return maxForgeSleep
	}
	blockSize := int(n.blockSize.Load())
	interval := time.Duration(n.blockInterval.Load())
	ready := n.pool.Pending(blockSize, n.state)
	n.mu.RUnlock()
	if len(ready) == 0 {
		return maxForgeSleep
	}
	oldest, _ := n.pool.Oldest()
	dueAt := oldest.Add(interval)
	if len(ready) >= blockSize {
		dueAt = oldest
	}
	if dueAt.Before(*headSeenAt) {
		dueAt = *headSeenAt
	}
	slot := time.Duration(n.g.SlotMs) * time.Millisecond
	forgeAt := dueAt.Add(time.Duration(rank) * slot)
	earliest := time.UnixMilli(head.Timestamp + int64(rank)*n.g.SlotMs)
	if earliest.After(forgeAt) {
		forgeAt = earliest
	}
	if d := forgeAt.Sub(now); d > 0 {
		return min(d, maxForgeSleep)
	}
	n.forge(head, uint32(rank))
	return 0
}

// forge builds, signs and imports a block on head at rank, then publishes it.
func (n *Node) forge(head *chain.Block, rank uint32) {
	n.mu.RLock()
	if n.head != head {
		n.mu.RUnlock()
		return
	}
	txs := n.pool.Pending(n.g.MaxBlockTxs, n.state)
	n.mu.RUnlock()

	ts := max(n.cfg.Now().UnixMilli(), head.Timestamp+int64(rank)*n.g.SlotMs)
	for attempt := 0; attempt < 3; attempt++ {
		b := chain.NewBlock(n.g, &head.Header, rank, ts, txs)
		n.key.SignHeader(&b.Header)
		err := n.ImportBlock(b)
		if err == nil {
			n.metrics.blocksForged.Add(1)
			n.log.Info("forged block", "height", b.Height, "txs", len(txs), "rank", rank, "hash", b.Hash().String())
			if n.net != nil {
				n.net.PublishBlock(b)
			}
			return
		}
		// A transaction that became invalid must not stall the chain:
		// evict it with the reason and forge without it.
		bad, ok := badTxIndex(err, txs)
		if !ok {
			if !errors.Is(err, ErrKnownBlock) {
				n.log.Warn("could not forge", "height", b.Height, "err", err.Error())
			}
			return
		}
		n.log.Warn("evicting a transaction that no longer applies", "tx", txs[bad].ID().String(), "reason", err.Error())
		n.pool.Remove(txs[bad].ID())
		n.metrics.evicted.Add(1)
		txs = txs[:bad]
		if len(txs) == 0 {
			return // nothing left worth a block; the next round looks again
		}
	}
}

// badTxIndex finds which transaction a block error names.
func badTxIndex(err error, txs []chain.Transaction) (int, bool) {
	var te *chain.BlockTxError
	if !errors.As(err, &te) || te.Index >= len(txs) {
		return 0, false
	}
	return te.Index, true
}

// poke wakes the forger without blocking.
func (n *Node) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}
