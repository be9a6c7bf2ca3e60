package forge

import (
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/chainmgr"
)

// The heartbeat (DESIGN v2, genesis `heartbeat` and `heartbeat_ms`): while
// the newest block with transactions has fewer than max_reorg blocks on top
// of it, the rightful forger forges an empty block when the head is old
// enough. Rank 0 beats when the head is heartbeat_ms old; rank k ≥ 1 when it
// is k slots old (the fallback wait consensus demands anyway), so a silent
// rank 0 costs the chain one slot. Once the payment-bearing block is
// max_reorg deep, no branch that reverts it can be adopted (it would fork
// max_reorg+1 below the head) and the chain rests until the next
// transaction.
//
// (finality: coming) with finality the heartbeat beats until the newest
// payment is final rather than max_reorg deep; needsBeat is the seam.
//
// Why heartbeat_ms and not slot_ms: a private chain forged by a third of
// the stake reverses a payment six deep 22.5% of the time against one beat
// a slot, 5.9% against one every quarter slot (docs/ATTACKS.md).

// beatMemo caches the newest non-empty height for one head, so the forger
// walks back through the store only when the head moves by more than one
// block.
type beatMemo struct {
	head     chain.Hash
	nonEmpty uint64 // 0: none within max_reorg (block 0 protects nothing)
}

// lastNonEmpty returns the height of the newest block with transactions
// among the head and the max_reorg blocks below it, or 0 if there is none.
func (f *Forger) lastNonEmpty(snap *chainmgr.Snapshot) uint64 {
	head := snap.Head()
	if f.beat.head == snap.HeadHash() {
		return f.beat.nonEmpty
	}
	var found uint64
	switch {
	case len(head.Transactions) > 0:
		found = head.Height
	case f.beat.head == head.PrevHash:
		found = f.beat.nonEmpty // one empty block on the head we knew
	default:
		// A reorg or a sync moved the head: look through the window. A
		// read error counts as "nothing to protect" (the forger looks
		// again at the next head).
		for h := head.Height; h > 0 && head.Height-h <= chainmgr.MaxReorgDepth; h-- {
			b, err := f.chain.BlockByHeight(h)
			if err != nil {
				break
			}
			if len(b.Transactions) > 0 {
				found = h
				break
			}
		}
	}
	f.beat = beatMemo{head: snap.HeadHash(), nonEmpty: found}
	return found
}

// needsBeat reports whether the chain at snap has something to protect:
// a block with transactions fewer than max_reorg blocks below the head.
func (f *Forger) needsBeat(snap *chainmgr.Snapshot) bool {
	last := f.lastNonEmpty(snap)
	return last > 0 && snap.Height()-last < chainmgr.MaxReorgDepth
}

// beatAt is when this candidate's heartbeat block is due on snap's head,
// if the genesis asks for heartbeats and the chain has something to protect.
func (f *Forger) beatAt(snap *chainmgr.Snapshot, rank int) (time.Time, bool) {
	if !f.g.Heartbeat || !f.needsBeat(snap) {
		return time.Time{}, false
	}
	wait := f.g.HeartbeatMs
	if rank > 0 {
		wait = max(wait, int64(rank)*f.g.SlotMs)
	}
	return time.UnixMilli(snap.Head().Timestamp + wait), true
}

// heartbeat forges an empty block if a beat is due (beatAt); it returns how
// long to sleep before looking again.
func (f *Forger) heartbeat(snap *chainmgr.Snapshot, rank int, now time.Time) time.Duration {
	at, ok := f.beatAt(snap, rank)
	if !ok {
		return maxForgeSleep
	}
	if d := at.Sub(now); d > 0 {
		return min(d, maxForgeSleep)
	}
	f.forge(snap, uint32(rank))
	return 0
}
