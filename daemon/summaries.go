package daemon

import (
	"errors"
	"sync"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/api"
	"github.com/poslab/posd/daemon/store"
)

// summaryCacheSize is how many block summaries the node keeps: a dashboard
// opens with the newest few hundred, and a block with 10,000 transactions
// would otherwise be decoded whole again for each page load.
const summaryCacheSize = 2048

// summaryCache maps block hashes to their summaries (without passed_over,
// which the election cache answers at read time).
type summaryCache struct {
	mu    sync.Mutex
	m     map[chain.Hash]api.BlockSummary
	order []chain.Hash
}

func (c *summaryCache) get(h chain.Hash) (api.BlockSummary, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[h]
	return s, ok
}

func (c *summaryCache) put(s api.BlockSummary) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[chain.Hash]api.BlockSummary)
	}
	if _, ok := c.m[s.Hash]; ok {
		return
	}
	c.m[s.Hash] = s
	c.order = append(c.order, s.Hash)
	if len(c.order) > summaryCacheSize {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
}

// BlockSummaries implements api.BlockSummarizer: the main chain's summaries
// ascending from `from`, at most limit, decoding only the blocks not cached.
func (n *Node) BlockSummaries(from uint64, limit int) ([]api.BlockSummary, error) {
	out := make([]api.BlockSummary, 0, limit)
	for h := from; len(out) < limit; h++ {
		hash, err := n.chain.HashAt(h)
		if errors.Is(err, store.ErrNotFound) {
			break // past the head
		}
		if err != nil {
			return nil, err
		}
		s, ok := n.sums.get(hash)
		if !ok {
			b, err := n.chain.BlockByHash(hash)
			if err != nil {
				return nil, err
			}
			s = api.SummaryOf(b)
			n.sums.put(s)
		}
		if s.Rank > 0 {
			s.PassedOver = n.PassedOver(s.PrevHash, s.Rank)
		}
		out = append(out, s)
	}
	return out, nil
}

var _ api.BlockSummarizer = (*Node)(nil)
