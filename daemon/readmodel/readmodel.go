// Package readmodel answers the dashboard's and the explorer's read-only
// questions that no single part of the node owns: prefix search over the
// store's indexes and the pool, block summaries (cached), and the
// candidates a block's forger was ranked behind. It never writes.
package readmodel

import (
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/api"
	"github.com/poslab/posd/daemon/store"
)

// Index is what search reads of the store: its sorted keys.
type Index interface {
	BlocksWithPrefix(prefix string, max int) ([]chain.Hash, error)
	TxsWithPrefix(prefix string, max int) ([]chain.Hash, error)
	AccountsWithPrefix(prefix string, max int) ([]chain.Address, error)
}

// Pool is what search reads of the mempool.
type Pool interface {
	Len() int
	All() []chain.Transaction
}

// Chain is what summaries and passed-over read of the chain manager.
type Chain interface {
	HashAt(h uint64) (chain.Hash, error)
	BlockByHash(h chain.Hash) (*chain.Block, error)
	CachedCandidates(parent chain.Hash) ([]chain.Address, bool)
}

// maxPoolSearch bounds the pool Search hashes through.
const maxPoolSearch = 10000

// Search implements api.PrefixSearcher: blocks and committed transactions
// from the store's sorted keys (a seek, not a scan), pending transactions
// from the pool, accounts from the store.
func Search(ix Index, pool Pool, prefix string, max int) (api.SearchResult, error) {
	var res api.SearchResult
	var err error
	if res.Blocks, err = ix.BlocksWithPrefix(prefix, max); err != nil {
		return res, err
	}
	if res.Txs, err = ix.TxsWithPrefix(prefix, max); err != nil {
		return res, err
	}
	// The pool has no sorted index: look through it only while it is small,
	// so an unauthenticated lookup stays cheap.
	pending := []chain.Transaction(nil)
	if pool.Len() <= maxPoolSearch {
		pending = pool.All()
	}
	for _, tx := range pending {
		if len(res.Txs) >= max {
			break
		}
		if id := tx.ID(); strings.HasPrefix(id.String(), prefix) && !slices.Contains(res.Txs, id) {
			res.Txs = append(res.Txs, id)
		}
	}
	if len(prefix) <= 40 {
		if res.Accounts, err = ix.AccountsWithPrefix(prefix, max); err != nil {
			return res, err
		}
	}
	return res, nil
}

// PassedOver implements api.PassedOverer for the dashboard: the candidates
// the election on parent ranked before rank, who let their slots pass. It
// reads only the election cache (never runs an election), so it answers nil
// for parents the node no longer has at hand.
func PassedOver(c Chain, parent chain.Hash, rank uint32) []chain.Address {
	if rank == 0 {
		return nil
	}
	cands, ok := c.CachedCandidates(parent)
	if !ok {
		return nil
	}
	return slices.Clone(cands[:min(int(rank), len(cands))])
}

// summaryCacheSize is how many block summaries are kept: a dashboard
// opens with the newest few hundred, and a block with 10,000 transactions
// would otherwise be decoded whole again for each page load.
const summaryCacheSize = 2048

// Summaries maps block hashes to their summaries (without passed_over,
// which the election cache answers at read time). The zero value is ready.
type Summaries struct {
	mu    sync.Mutex
	m     map[chain.Hash]api.BlockSummary
	order []chain.Hash
}

func (c *Summaries) get(h chain.Hash) (api.BlockSummary, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[h]
	return s, ok
}

func (c *Summaries) put(s api.BlockSummary) {
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

// Range implements api.BlockSummarizer over ch: the main chain's summaries
// ascending from `from`, at most limit, decoding only the blocks not cached.
func (c *Summaries) Range(ch Chain, from uint64, limit int) ([]api.BlockSummary, error) {
	out := make([]api.BlockSummary, 0, limit)
	for h := from; len(out) < limit; h++ {
		hash, err := ch.HashAt(h)
		if errors.Is(err, store.ErrNotFound) {
			break // past the head
		}
		if err != nil {
			return nil, err
		}
		s, ok := c.get(hash)
		if !ok {
			b, err := ch.BlockByHash(hash)
			if err != nil {
				return nil, err
			}
			s = api.SummaryOf(b)
			c.put(s)
		}
		if s.Rank > 0 {
			s.PassedOver = PassedOver(ch, s.PrevHash, s.Rank)
		}
		out = append(out, s)
	}
	return out, nil
}
