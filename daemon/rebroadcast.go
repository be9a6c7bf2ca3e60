package daemon

import (
	"context"
	"time"
)

// rebroadcastEvery is how often transactions that linger in the pool are
// gossiped again, and how long they must have lingered (a variable for tests).
var rebroadcastEvery = 15 * time.Second

// rebroadcastLoop gossips lingering pool transactions again. A transaction
// sent while this node had no peers was never heard by the forgers; a node
// with no stake would keep it for ever. Peers ignore what they already hold.
func (n *Node) rebroadcastLoop(ctx context.Context) {
	t := time.NewTicker(rebroadcastEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		oldest, ok := n.pool.Oldest()
		if !ok || n.net == nil || len(n.net.Peers()) == 0 || time.Since(oldest) < rebroadcastEvery {
			continue
		}
		txs := n.pool.Executable(maxRebroadcast) // never the gapped ones
		n.regossip(txs)                          // as new messages: regossip.go
		n.log.Debug("gossiped lingering pool transactions again", "count", len(txs))
	}
}

// maxRebroadcast bounds one rebroadcast (the oldest first).
const maxRebroadcast = 2000
