package apibackend

import (
	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/chainmgr"
)

// Evidence lists the equivocations the node knows (api.EvidenceBackend).
func (b *Backend) Evidence() []rpc.Evidence {
	recs := b.p.Evidence.Records()
	out := make([]rpc.Evidence, len(recs))
	for i, r := range recs {
		out[i] = evidenceRPC(r)
	}
	return out
}

// SubscribeEvidence delivers evidence events (api.EvidenceBackend).
func (b *Backend) SubscribeEvidence() (<-chan rpc.EvidenceEvent, func()) {
	return subscribe(b.evidence, evidenceQueue)
}

// NotifyEvidence tells evidence subscribers about an evidence event.
func (b *Backend) NotifyEvidence(ev chainmgr.EvidenceEvent) {
	b.evidence.Send(rpc.EvidenceEvent{Type: ev.Type, Evidence: evidenceRPC(ev.Record)})
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
