package daemon

import (
	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/byzantine"
	"github.com/poslab/posd/daemon/chainmgr"
)

// The attack lab's part of the node: evidence (the chain manager keeps the
// pool; the node gossips it, gives it to the forger and the API) and a
// byzantine behaviour for the forger, on lab networks only.

// forgerLab is what the forger asks of the lab: whether to forge, which
// evidence to carry, how to build and publish. Its zero value is an
// honest forger without evidence.
type forgerLab struct {
	behaviour byzantine.Behaviour // nil: honest
	evidence  func() []chain.Evidence
}

func (l *forgerLab) mayForge(height uint64) bool {
	return l.behaviour == nil || l.behaviour.Forge(height)
}

// evidenceDue reports whether there is evidence to carry, which makes a
// block due even with no transaction waiting.
func (l *forgerLab) evidenceDue() bool {
	return l.evidence != nil && len(l.evidence()) > 0
}

// prepare attaches pending evidence to an unsigned block, lets the
// behaviour change it, and signs it with sign.
func (l *forgerLab) prepare(b *chain.Block, parent *chain.Block, snap *chainmgr.Snapshot, sign func(*chain.Header)) *chain.Block {
	if l.evidence != nil {
		if ev := l.evidence(); len(ev) > 0 {
			b.SetEvidence(ev)
		}
	}
	if l.behaviour != nil {
		b = l.behaviour.Build(b, parent, snap.ReadState())
	}
	sign(&b.Header)
	return b
}

// publish sends a forged block, the behaviour's way if there is one.
func (l *forgerLab) publish(publish func(*chain.Block), b, parent *chain.Block) {
	switch {
	case l.behaviour != nil:
		l.behaviour.Publish(b, parent)
	case publish != nil:
		publish(b)
	}
}

// setupLab gives the forger the evidence pool and, if configured, its
// behaviour; a behaviour on a genesis without "lab": true is refused.
func (n *Node) setupLab() error {
	n.forger.lab.evidence = n.chain.PendingEvidence
	if n.cfg.Byzantine == "" {
		return nil
	}
	f := n.forger
	b, err := byzantine.New(n.cfg.Byzantine, byzantine.Env{
		Genesis: n.g,
		Sign:    n.key.SignHeader,
		Publish: func(b *chain.Block) {
			if f.publish != nil {
				f.publish(b)
			}
		},
		Log: n.log.With("byzantine", n.cfg.Byzantine),
		Now: n.cfg.Now,
	})
	if err != nil {
		return err
	}
	f.lab.behaviour = b
	return nil
}

// Byzantine is the behaviour this node runs ("" when honest).
func (n *Node) Byzantine() string {
	if n.forger.lab.behaviour == nil {
		return ""
	}
	return n.forger.lab.behaviour.Name()
}

// startLab follows the evidence pool and runs a behaviour that works on
// its own (the private attack), until the node stops.
func (n *Node) startLab() {
	evs, evCancel := n.chain.SubscribeEvidence(64)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer evCancel()
		n.followEvidence(evs)
	}()
	r, ok := n.forger.lab.behaviour.(byzantine.Runner)
	if !ok {
		return
	}
	access := byzantine.NodeAccess{
		Head: func() (*chain.Block, *chain.State) {
			snap := n.chain.Snapshot()
			return snap.Head(), snap.ReadState().Clone()
		},
		Address: n.key.Address(),
		SignTx:  n.key.SignTx,
		Submit: func(tx chain.Transaction) error {
			_, err := n.SubmitTx(tx)
			return err
		},
		Committed: func(id chain.Hash) (uint64, bool) {
			h, _, err := n.chain.TxLocation(id)
			return h, err == nil
		},
		Import: n.chain.ProcessBlock,
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		r.Run(n.ctx, access)
	}()
}

// followEvidence gossips evidence seen here, wakes the forger to carry
// it, and tells API subscribers; until the node stops.
func (n *Node) followEvidence(ch <-chan chainmgr.EvidenceEvent) {
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev := <-ch:
			if ev.Type == "evidence" {
				if p, ok := n.net.(interface{ PublishEvidence(*chain.Evidence) }); ok {
					p.PublishEvidence(&ev.Record.Evidence)
				}
				n.forger.poke()
			}
			n.evSubs.send(evidenceRPC(ev.Record), ev.Type)
		}
	}
}

// HandleEvidence takes evidence from the network (p2p.EvidenceHandler).
func (h p2pHandler) HandleEvidence(e *chain.Evidence) error {
	if h.evidence == nil {
		return nil
	}
	fwd, err := h.evidence.AddEvidence(*e)
	switch {
	case err != nil:
		return h.mapBlockErr(err)
	case !fwd:
		return errIgnoreEvidence
	}
	return nil
}

// Evidence lists the equivocations the node knows (api.EvidenceBackend).
func (n *Node) Evidence() []rpc.Evidence {
	recs := n.chain.Evidence()
	out := make([]rpc.Evidence, len(recs))
	for i, r := range recs {
		out[i] = evidenceRPC(r)
	}
	return out
}

// SubscribeEvidence delivers evidence events (api.EvidenceBackend).
func (n *Node) SubscribeEvidence() (<-chan rpc.EvidenceEvent, func()) {
	return n.evSubs.subscribe()
}

func evidenceRPC(r chainmgr.EvidenceRecord) rpc.Evidence {
	e := &r.Evidence
	out := rpc.Evidence{
		ID: e.ID(), Kind: e.KindOf(), Height: e.Height(), Forger: e.Forger(),
		Hashes: []chain.Hash{e.A.Hash(), e.B.Hash()},
		SeenAt: r.SeenAt.UnixMilli(),
	}
	if e.KindOf() != chain.EvidenceEquivocation {
		out.Hashes = []chain.Hash{e.VoteA.Target.Hash, e.VoteB.Target.Hash}
	}
	if r.IncludedIn != 0 {
		in, burned := r.IncludedIn, r.Burned
		out.IncludedIn, out.Slashed = &in, &burned
	}
	return out
}
