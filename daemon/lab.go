package daemon

import (
	"errors"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/byzantine"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/daemon/p2p"
)

// The attack lab's part of the node: evidence (the chain manager keeps the
// pool; the node gossips it, gives it to the forger and the API) and a
// byzantine behaviour for the forger, on lab networks only. The forger's
// side is forge.Lab.

var errIgnoreEvidence = errors.Join(p2p.ErrIgnore, errors.New("evidence known, slashed or too old"))

// setupLab gives the forger the evidence pool and, if configured, its
// behaviour; a behaviour on a genesis without "lab": true is refused.
func (n *Node) setupLab() error {
	if n.cfg.Byzantine == "" {
		return nil
	}
	f := n.forger
	b, err := byzantine.New(n.cfg.Byzantine, byzantine.Env{
		Genesis: n.g,
		Sign:    n.key.SignHeader,
		SignVote: func(v *chain.Vote) {
			v.Sign(n.g.ChainID, n.key.PrivateKey())
		},
		Publish: f.Publish,
		Log:     n.log.With("byzantine", n.cfg.Byzantine),
		Now:     n.cfg.Now,
	})
	if err != nil {
		return err
	}
	f.SetBehaviour(b)
	if v, ok := b.(byzantine.Voting); ok {
		n.fin.byzantine = v
	}
	return nil
}

// startLab follows the evidence pool and runs a behaviour that works on
// its own (the private attack), until the node stops.
func (n *Node) startLab() {
	evs, evCancel := n.chain.EvidencePool().Subscribe(64)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer evCancel()
		n.followEvidence(evs)
	}()
	r, ok := n.forger.Behaviour().(byzantine.Runner)
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
			_, err := n.api.SubmitTx(tx)
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
		case ev, ok := <-ch:
			if !ok { // the subscription ended (daemon/feed closes it)
				return
			}
			if ev.Type == "evidence" {
				if p, ok := n.net.(interface{ PublishEvidence(*chain.Evidence) }); ok {
					p.PublishEvidence(&ev.Record.Evidence)
				}
				n.forger.Poke()
			}
			n.api.NotifyEvidence(ev)
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
