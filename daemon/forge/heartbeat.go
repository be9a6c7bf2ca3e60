package forge

import (
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/chainmgr"
)

// The heartbeat (DESIGN v2 and v3, genesis `heartbeat` and `heartbeat_ms`):
// while the newest block with transactions is not yet protected, the
// rightful forger forges an empty block when the head is old enough. Rank
// 0 beats when the head is heartbeat_ms old; rank k ≥ 1 when it is k slots
// old (the fallback wait consensus demands anyway), so a silent rank 0
// costs the chain one slot.
//
// Protected means final when finality runs (v3): the beats carry the votes
// that justify and finalize the payment's block, about two beats with
// epoch_blocks 1, and then the chain rests until the next transaction.
// While finality stalls the chain keeps beating: blocks go on, and the
// missing votes find a block as soon as they come. Without finality (no
// stake votes: every node started with --vote=false) v2's rule holds:
// once the payment's block is max_reorg deep, no branch that reverts it
// can be adopted (it would fork max_reorg+1 below the head).
//
// Why heartbeat_ms and not slot_ms: a private chain forged by a third of
// the stake reverses a payment six deep 22.5% of the time against one beat
// a slot, 5.9% against one every quarter slot (docs/ATTACKS.md).

// maxBeatWalk bounds how far below the head the forger looks for the
// newest block with transactions after a reorg or a sync moved the head
// (while finality stalls the unfinalized part of the chain grows without
// bound). Past it, the forger assumes there is one: it keeps beating.
const maxBeatWalk = 1024

// beatMemo caches the newest non-empty height for one head, so the forger
// walks back through the store only when the head moves by more than one
// block.
type beatMemo struct {
	head     chain.Hash
	nonEmpty uint64 // 0: none above the walk's floor (block 0 protects nothing)
}

// lastNonEmpty returns the height of the newest block with transactions
// among the head and the blocks below it down to floor (exclusive), or 0
// if there is none. A walk that stops at maxBeatWalk without finding one
// answers the lowest height it looked at.
func (f *Forger) lastNonEmpty(snap *chainmgr.Snapshot, floor uint64) uint64 {
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
		for h := head.Height; h > floor; h-- {
			if head.Height-h >= maxBeatWalk {
				found = h // unknown below: assume something to protect
				break
			}
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
// with finality, a block with transactions above the finalized height;
// without, one fewer than max_reorg blocks below the head.
func (f *Forger) needsBeat(snap *chainmgr.Snapshot) bool {
	if f.votes != nil {
		if final, on := f.votes.Finalized(snap); on {
			return f.lastNonEmpty(snap, final) > final
		}
	}
	var floor uint64
	if snap.Height() > chainmgr.MaxReorgDepth {
		floor = snap.Height() - chainmgr.MaxReorgDepth - 1
	}
	last := f.lastNonEmpty(snap, floor)
	return last > 0 && snap.Height()-last < chainmgr.MaxReorgDepth
}

// beatAt is when this candidate's heartbeat block is due on snap's head,
// if the genesis asks for heartbeats and the chain has something to
// protect. The callers also wait for the head's votes (voteWait): with
// finality the beats are there to carry the votes that make the payment
// final.
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
	at = f.afterVotes(at, f.voteWait(snap), rank)
	if d := at.Sub(now); d > 0 {
		return min(d, maxForgeSleep)
	}
	f.forge(snap, uint32(rank))
	return 0
}
