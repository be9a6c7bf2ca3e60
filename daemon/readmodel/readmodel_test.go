package readmodel

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/api"
	"github.com/poslab/posd/daemon/store"
)

// fakeChain is a main chain of blocks by height, counting block reads.
type fakeChain struct {
	blocks []*chain.Block // index = height
	cands  map[chain.Hash][]chain.Address
	reads  int
}

func (c *fakeChain) HashAt(h uint64) (chain.Hash, error) {
	if h >= uint64(len(c.blocks)) {
		return chain.Hash{}, store.ErrNotFound
	}
	return c.blocks[h].Hash(), nil
}

func (c *fakeChain) BlockByHash(h chain.Hash) (*chain.Block, error) {
	c.reads++
	for _, b := range c.blocks {
		if b.Hash() == h {
			return b, nil
		}
	}
	return nil, store.ErrNotFound
}

func (c *fakeChain) CachedCandidates(parent chain.Hash) ([]chain.Address, bool) {
	cs, ok := c.cands[parent]
	return cs, ok
}

func newFakeChain(n int) *fakeChain {
	c := &fakeChain{cands: map[chain.Hash][]chain.Address{}}
	var prev chain.Hash
	for h := range n {
		b := &chain.Block{Header: chain.Header{Height: uint64(h), PrevHash: prev, Timestamp: int64(h), Forger: chain.Address(fmt.Sprintf("%040x", h))}}
		c.blocks = append(c.blocks, b)
		prev = b.Hash()
	}
	return c
}

// TestPassedOver: rank 0 passed nobody over; an election no longer at hand
// answers nil; otherwise the candidates ranked before, as a copy.
func TestPassedOver(t *testing.T) {
	c := newFakeChain(2)
	parent := c.blocks[0].Hash()
	c.cands[parent] = []chain.Address{"a", "b", "c"}
	for _, tc := range []struct {
		name   string
		parent chain.Hash
		rank   uint32
		want   []chain.Address
	}{
		{"rank 0", parent, 0, nil},
		{"unknown parent", c.blocks[1].Hash(), 2, nil},
		{"rank 2", parent, 2, []chain.Address{"a", "b"}},
		{"rank beyond the candidates", parent, 9, []chain.Address{"a", "b", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PassedOver(c, tc.parent, tc.rank)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("PassedOver = %v, want %v", got, tc.want)
			}
			if len(got) > 0 {
				got[0] = "changed"
				if c.cands[parent][0] != "a" {
					t.Fatal("PassedOver handed out the election cache's slice")
				}
			}
		})
	}
}

// TestSummariesCacheAndBound: a second range decodes no block again, the
// range stops at the head, and the cache holds at most summaryCacheSize.
func TestSummariesCacheAndBound(t *testing.T) {
	c := newFakeChain(5)
	var s Summaries
	got, err := s.Range(c, 1, 10)
	if err != nil || len(got) != 4 || got[0].Height != 1 || got[3].Height != 4 {
		t.Fatalf("Range(1, 10) = %d summaries, %v; want heights 1..4", len(got), err)
	}
	reads := c.reads
	if _, err := s.Range(c, 0, 5); err != nil || c.reads != reads+1 {
		t.Fatalf("second range read %d blocks (err %v), want only the one not cached", c.reads-reads, err)
	}
	for i := range summaryCacheSize + 10 {
		s.put(apiSummary(i))
	}
	if len(s.m) != summaryCacheSize || len(s.order) != summaryCacheSize {
		t.Fatalf("cache holds %d (order %d), want at most %d", len(s.m), len(s.order), summaryCacheSize)
	}
}

// TestSummariesError: a store error other than "past the head" is the caller's.
func TestSummariesError(t *testing.T) {
	boom := errors.New("disk")
	_, err := new(Summaries).Range(errChain{boom}, 0, 3)
	if !errors.Is(err, boom) {
		t.Fatalf("Range = %v, want %v", err, boom)
	}
}

type errChain struct{ err error }

func (e errChain) HashAt(uint64) (chain.Hash, error)                   { return chain.Hash{}, e.err }
func (e errChain) BlockByHash(chain.Hash) (*chain.Block, error)        { return nil, e.err }
func (e errChain) CachedCandidates(chain.Hash) ([]chain.Address, bool) { return nil, false }

func apiSummary(i int) api.BlockSummary {
	var h chain.Hash
	h[0], h[1] = byte(i), byte(i>>8)
	return api.BlockSummary{Hash: h, Height: uint64(i)}
}
