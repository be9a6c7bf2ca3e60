package daemon

import (
	"errors"
	"sync"

	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/p2p"
)

var errIgnoreEvidence = errors.Join(p2p.ErrIgnore, errors.New("evidence known, slashed or too old"))

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
