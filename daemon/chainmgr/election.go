package chainmgr

import (
	"sync"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/election"
	"github.com/poslab/posd/daemon/metrics"
)

// elections computes the forger candidates for the child of a parent block
// once per parent, outside every lock that readers or importers wait on:
// the first caller for a parent runs the election, later callers for the
// same parent wait for that one result (single flight), and recent results
// are kept. An election's cost grows with stake, and a node asks for the
// same parent many times (forger, import, API).
type elections struct {
	g       *chain.Genesis
	alg     election.Algorithm
	maxRank uint32
	met     *metrics.Chain // nil-safe

	mu    sync.Mutex
	calls map[chain.Hash]*electionCall
	order []chain.Hash
}

type electionCall struct {
	done  chan struct{}
	cands []chain.Address
}

// electionCacheSize bounds the results kept: enough for every parent a
// reorg within the limit can touch, on a few branches.
const electionCacheSize = 4 * MaxReorgDepth

func newElections(g *chain.Genesis, alg election.Algorithm) *elections {
	return &elections{g: g, alg: alg, maxRank: g.MaxRank, calls: make(map[chain.Hash]*electionCall)}
}

// candidates returns the candidates for the block after parent, whose
// post-state is state (which must not change during the call). The seed
// is the parent's (chain.ElectionSeed: its VRF seed, or its hash under the
// v1 block_hash source); results are kept by the parent's hash.
func (e *elections) candidates(parentBlock *chain.Block, state *chain.State) []chain.Address {
	parent := parentBlock.Hash()
	e.mu.Lock()
	if c, ok := e.calls[parent]; ok {
		e.mu.Unlock()
		<-c.done
		return c.cands
	}
	c := &electionCall{done: make(chan struct{})}
	e.calls[parent] = c
	e.order = append(e.order, parent)
	if len(e.order) > electionCacheSize {
		old := e.order[0]
		e.order = e.order[1:]
		if oc, ok := e.calls[old]; ok {
			select {
			case <-oc.done:
				delete(e.calls, old)
			default: // still running: its waiters hold it; keep it
				e.order = append(e.order, old)
			}
		}
	}
	e.mu.Unlock()
	start := time.Now()
	c.cands = chain.ElectWith(e.alg, e.maxRank, chain.ElectionSeed(e.g, &parentBlock.Header), chain.ElectionTable(e.g, state))
	e.met.ObserveElection(time.Since(start))
	close(c.done)
	return c.cands
}

// cached returns a finished election for the child of parent, if kept.
func (e *elections) cached(parent chain.Hash) ([]chain.Address, bool) {
	e.mu.Lock()
	c, ok := e.calls[parent]
	e.mu.Unlock()
	if !ok {
		return nil, false
	}
	select {
	case <-c.done:
		return c.cands, true
	default:
		return nil, false
	}
}
