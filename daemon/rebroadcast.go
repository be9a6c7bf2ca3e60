package daemon

import (
	"context"
	"time"
)

// rebroadcastEvery is at most how often transactions that linger in the
// pool are gossiped again, and how long they must have lingered (a
// variable for tests); a network of shorter slots does it every two slots
// (rebroadcastInterval).
var rebroadcastEvery = 15 * time.Second

// rebroadcastSlots is how many slots a pending transaction may linger
// before it is gossiped again, if that is less than rebroadcastEvery (a
// variable for tests).
var rebroadcastSlots = 2

// rebroadcastInterval is two slots, at most rebroadcastEvery: a pending
// transaction no forger took within two slots may not have been heard by
// them (the last message of a sender lost on the way: no later one shows
// its peers the gap, p2p/txfill.go). Only such transactions are sent
// again: each when it went rebroadcastInterval ungossiped, then after
// twice and four times that (mempool.Pool.Lingering), at most
// maxRebroadcast at a time. Under full blocks most of the pool lingers
// for good reasons; sending it all every two slots, as when any pending
// transaction was that old, never stopped. Peers drop the ones they hold
// at the cost of a lookup.
func (n *Node) rebroadcastInterval() time.Duration {
	return min(rebroadcastEvery, time.Duration(rebroadcastSlots)*time.Duration(n.g.SlotMs)*time.Millisecond)
}

// rebroadcastLoop gossips lingering pool transactions again. A transaction
// sent while this node had no peers was never heard by the forgers; a node
// with no stake would keep it for ever. Peers ignore what they already hold.
func (n *Node) rebroadcastLoop(ctx context.Context) {
	every := n.rebroadcastInterval()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.net == nil || len(n.net.Peers()) == 0 {
			continue // nobody to tell: the transactions stay unmarked
		}
		txs := n.pool.Lingering(time.Now(), every, maxRebroadcast) // never the gapped ones
		if len(txs) == 0 {
			continue
		}
		n.regossip(txs) // as new messages: regossip.go
		n.log.Debug("gossiped lingering pool transactions again", "count", len(txs))
	}
}

// maxRebroadcast bounds one rebroadcast (the oldest first).
const maxRebroadcast = 2000
