package chainmgr

import (
	"sync"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// Finality events: when a commit moves the main chain's justified or
// finalized checkpoint (chain.Finality, in the snapshot's state), the
// manager tells its finality subscribers, after the snapshot is swapped
// in. The fan-out is bounded and never blocks an import: each subscriber
// has a buffer of finalityBuffer events and misses events it has no room
// for (the next one, or the snapshot, says where finality is).

const (
	finalityBuffer  = 64
	maxFinalitySubs = 256
)

type finalitySubs struct {
	mu     sync.Mutex
	m      map[chan rpc.FinalityEvent]struct{}
	closed bool
}

// SubscribeFinality delivers rpc.EventJustified and rpc.EventFinalized
// events (the checkpoint and the time this node saw it so), in commit
// order, until cancel is called or the manager closes (the channel is
// closed then). A subscriber that does not keep up misses events. Past
// maxFinalitySubs subscribers, the channel comes closed.
func (m *Manager) SubscribeFinality() (<-chan rpc.FinalityEvent, func()) {
	ch := make(chan rpc.FinalityEvent, finalityBuffer)
	fs := &m.fin
	fs.mu.Lock()
	if fs.closed || len(fs.m) >= maxFinalitySubs {
		fs.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	if fs.m == nil {
		fs.m = map[chan rpc.FinalityEvent]struct{}{}
	}
	fs.m[ch] = struct{}{}
	fs.mu.Unlock()
	return ch, func() {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		if _, ok := fs.m[ch]; ok {
			delete(fs.m, ch)
			close(ch)
		}
	}
}

// emitFinality compares the records of two successive snapshots and
// tells subscribers what moved: justified first, then finalized.
func (m *Manager) emitFinality(old, cur *Snapshot) {
	if old == nil {
		return
	}
	of, nf := old.Finality(), cur.Finality()
	var evs []rpc.FinalityEvent
	now := m.now().UnixMilli()
	if nf.Justified != of.Justified && nf.Justified != (chain.Checkpoint{}) {
		evs = append(evs, rpc.FinalityEvent{Type: rpc.EventJustified, Checkpoint: nf.Justified, Time: now})
	}
	if nf.Finalized != of.Finalized && nf.Finalized != (chain.Checkpoint{}) {
		evs = append(evs, rpc.FinalityEvent{Type: rpc.EventFinalized, Checkpoint: nf.Finalized, Time: now})
	}
	if len(evs) == 0 {
		return
	}
	fs := &m.fin
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for ch := range fs.m {
		for _, ev := range evs {
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

// closeFinality ends every finality subscription.
func (m *Manager) closeFinality() {
	fs := &m.fin
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.closed = true
	for ch := range fs.m {
		delete(fs.m, ch)
		close(ch)
	}
}
