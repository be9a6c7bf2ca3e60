package apibackend

import (
	"sync"

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
	return b.evSubs.subscribe()
}

// NotifyEvidence tells evidence subscribers about an evidence event.
func (b *Backend) NotifyEvidence(ev chainmgr.EvidenceEvent) {
	b.evSubs.send(evidenceRPC(ev.Record), ev.Type)
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

// evidenceSubs fans evidence events out to API streams; a slow stream
// misses events rather than slowing the node.
type evidenceSubs struct {
	mu   sync.Mutex
	subs map[chan rpc.EvidenceEvent]struct{}
}

func (s *evidenceSubs) subscribe() (<-chan rpc.EvidenceEvent, func()) {
	ch := make(chan rpc.EvidenceEvent, 16)
	s.mu.Lock()
	if s.subs == nil {
		s.subs = make(map[chan rpc.EvidenceEvent]struct{})
	}
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs, ch)
			s.mu.Unlock()
		})
	}
}

func (s *evidenceSubs) send(e rpc.Evidence, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- rpc.EvidenceEvent{Type: typ, Evidence: e}:
		default:
		}
	}
}
