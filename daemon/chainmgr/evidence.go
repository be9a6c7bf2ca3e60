package chainmgr

import (
	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/evidencepool"
)

// The evidence pool is its own package (daemon/evidencepool), fed by the
// manager's events: it is an Observer, told of every block whose header
// was checked and of every move of the main chain. The manager asks it one
// thing, for the side-block caps: whether a slot's forger equivocated
// already (sidecap.go).

// EvidenceRecord and EvidenceEvent are the pool's types, under the names
// the node has used.
type (
	EvidenceRecord = evidencepool.Record
	EvidenceEvent  = evidencepool.Event
)

// Observer hears, synchronously and in commit order, what the manager
// sees. It must not block or call back into the manager's imports (it
// runs under the import lock, or on the import's path before it).
type Observer interface {
	// Started is the chain New loaded: its head and the state after it
	// (which no one changes).
	Started(head *chain.Block, st *chain.State) error
	// BlockChecked: b's header (hash) was checked in full, on the main
	// chain or a side branch, whether b was stored or not (a side cap may
	// keep it out of the store). Blocks that join the main chain are
	// told by ChainMoved instead.
	BlockChecked(b *chain.Block, hash chain.Hash)
	// ChainMoved: the main chain's tip is head, with st the state after
	// it (no one changes it); added joined it (oldest first, checked in
	// full), reverted left it (newest first).
	ChainMoved(head *chain.Block, added, reverted []*chain.Block, st *chain.State)
}

var _ Observer = (*evidencepool.Pool)(nil)

// observers are the manager's Observers, the evidence pool first.
type observers []Observer

func (os observers) started(head *chain.Block, st *chain.State) error {
	for _, o := range os {
		if err := o.Started(head, st); err != nil {
			return err
		}
	}
	return nil
}

func (os observers) checked(b *chain.Block, hash chain.Hash) {
	for _, o := range os {
		o.BlockChecked(b, hash)
	}
}

func (os observers) moved(head *chain.Block, added, reverted []*chain.Block, st *chain.State) {
	for _, o := range os {
		o.ChainMoved(head, added, reverted, st)
	}
}

// EvidencePool is the node's evidence pool: pending evidence for the
// forger, evidence from peers, the records and their events.
func (m *Manager) EvidencePool() *evidencepool.Pool { return m.ev }
