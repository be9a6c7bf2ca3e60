package chainmgr

import (
	"slices"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/feed"
)

// What an event is estimated to hold, for a subscriber's byte budget. A
// decoded transaction is its strings plus its fixed fields, and the state
// version of its snapshot keeps the paths it changed (two accounts, a few
// nodes each, shared in part with the next version) alive while the
// event waits: about 512 B in all. An event
// also holds its snapshot's own nodes and the blocks' headers.
const (
	eventBaseBytes  = 16 << 10
	blockBaseBytes  = 1 << 10
	txOverheadBytes = 512
)

// MinEventBytes is the smallest budget Subscribe accepts.
const MinEventBytes = 1 << 20

// maxSubscribers bounds the Subscribe calls alive at once (the node makes
// one; each holds up to its budget).
const maxSubscribers = 64

// eventBytes estimates what ev keeps alive while it is queued.
func eventBytes(ev Event) int {
	n := eventBaseBytes
	for _, bs := range [][]*chain.Block{ev.Added, ev.Reverted} {
		for _, b := range bs {
			n += blockBytes(b)
		}
	}
	return n
}

func blockBytes(b *chain.Block) int {
	n := blockBaseBytes
	for i := range b.Transactions {
		tx := &b.Transactions[i]
		n += txOverheadBytes + len(tx.ChainID) + len(tx.From) + len(tx.To) + 2*len(tx.PublicKey) + 2*len(tx.Signature)
	}
	return n
}

// newEventFeed is the manager's feed of chain events.
func newEventFeed() *feed.Feed[Event] {
	return feed.New[Event](feed.Options{MaxSubscribers: maxSubscribers})
}

// eventPolicy is every chain subscriber's policy: lossless with
// coalescing within budget bytes (see coalesceEvents).
func eventPolicy(budget int) feed.Policy[Event] {
	return feed.Coalesce(budget, eventBytes, coalesceEvents)
}

// coalesceEvents folds the queued events (oldest first) into one, for a
// subscriber that fell a budget behind: the newest snapshot, the head
// before the oldest event (Prev: so the pool can compute what the chain
// reverted in between, mempool.Pool.Reset), the newest event's added
// blocks (always: a reader that keeps up loses nothing even when one
// commit alone outweighs the budget, as a sync batch can), then the
// reverted blocks newest first and the older added blocks newest first
// while they fit. What is left out is counted in MissedBlocks and
// MissedReverted. So a queue holds at most the budget and the newest
// event; every event carries the whole snapshot, so the reader is up to
// date after it.
//
// The reverted blocks are a convenience, not a promise: a deep reorg (or
// many) under a slow reader does not fit, and the reader that needs them
// (the pool) walks from Prev to the new head itself.
func coalesceEvents(queue []Event, budget int) (Event, int) {
	newest := queue[len(queue)-1]
	merged := Event{Snapshot: newest.Snapshot, Prev: queue[0].Prev}
	var older, reverted []*chain.Block
	for i, ev := range queue {
		// Newest first within an event, and later events' reverts are
		// newer: the whole list stays newest first.
		reverted = append(slices.Clip(ev.Reverted), reverted...)
		merged.MissedBlocks += ev.MissedBlocks
		merged.MissedReverted += ev.MissedReverted
		if i < len(queue)-1 {
			older = append(older, ev.Added...)
		}
	}
	size := eventBaseBytes
	for _, b := range newest.Added {
		size += blockBytes(b)
	}
	kept := 0
	for kept < len(reverted) && size+blockBytes(reverted[kept]) <= budget {
		size += blockBytes(reverted[kept])
		kept++
	}
	merged.Reverted = slices.Clip(reverted[:kept])
	merged.MissedReverted += len(reverted) - kept
	left := len(older) // the oldest added blocks left out
	for left > 0 && size+blockBytes(older[left-1]) <= budget {
		size += blockBytes(older[left-1])
		left--
	}
	merged.Added = append(slices.Clip(older[left:]), newest.Added...)
	merged.MissedBlocks += left
	return merged, len(queue) - 1
}

// subscribe is Subscribe with any budget (tests go below MinEventBytes).
func (m *Manager) subscribe(budget int) (*feed.Subscription[Event], error) {
	return m.feed.Subscribe(eventPolicy(budget))
}
