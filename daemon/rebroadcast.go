package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/poslab/posd/chain"
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
func rebroadcastInterval(slotMs int64) time.Duration {
	return min(rebroadcastEvery, time.Duration(rebroadcastSlots)*time.Duration(slotMs)*time.Millisecond)
}

// rebroadcaster is the node's loop that gossips lingering pool
// transactions again: the pool's Lingering over the network.
type rebroadcaster struct {
	pool interface {
		Lingering(now time.Time, every time.Duration, max int) []chain.Transaction
	}
	net    Network // nil: no network, nothing to do
	log    *slog.Logger
	slotMs int64
}

// run gossips lingering pool transactions again. A transaction
// sent while this node had no peers was never heard by the forgers; a node
// with no stake would keep it for ever. Peers ignore what they already hold.
func (r rebroadcaster) run(ctx context.Context) {
	every := rebroadcastInterval(r.slotMs)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.net == nil || len(r.net.Peers()) == 0 {
			continue // nobody to tell: the transactions stay unmarked
		}
		txs := r.pool.Lingering(time.Now(), every, maxRebroadcast) // never the gapped ones
		if len(txs) == 0 {
			continue
		}
		r.regossip(txs) // as new messages (regossip)
		r.log.Debug("gossiped lingering pool transactions again", "count", len(txs))
	}
}

// maxRebroadcast bounds one rebroadcast (the oldest first).
const maxRebroadcast = 2000

// republisher is a Network that can gossip transactions again as new
// messages (p2p.Node.RepublishTxs): the same bytes would be dropped as
// already seen for minutes, the publisher's own cache included.
type republisher interface {
	RepublishTxs(txs []chain.Transaction)
}

// regossip sends lingering pool transactions out again.
func (r rebroadcaster) regossip(txs []chain.Transaction) {
	if rp, ok := r.net.(republisher); ok {
		rp.RepublishTxs(txs)
		return
	}
	r.net.PublishTxs(txs)
}
