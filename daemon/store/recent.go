package store

import (
	"sync"

	"github.com/poslab/posd/chain"
)

// recentBlocks keeps the newest blocks Switch appended, decoded, by hash,
// for Blocks. A client watching for its commits reads each new block
// right after it is committed (GET /v1/blocks/txids: poscli load, the
// explorer), and decoding it from the file again (the hex fields, an id
// hash per transaction) was 3% of a loaded node's CPU. A block never
// changes under its hash, so a hit is always the block the file holds.
// Bounded in transactions (a block of a few empty ones weighs one).
type recentBlocks struct {
	mu     sync.Mutex
	byHash map[chain.Hash]*chain.Block
	order  []chain.Hash // oldest first
	weight int          // the blocks' transactions, each block at least 1
}

// recentWeight bounds the transactions recentBlocks holds: a few blocks
// of a loaded node (a few MiB decoded).
const recentWeight = 1 << 14

func blockWeight(b *chain.Block) int { return max(1, len(b.Transactions)) }

// add keeps bs (newest last), dropping the oldest beyond recentWeight.
func (r *recentBlocks) add(bs []*chain.Block) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byHash == nil {
		r.byHash = make(map[chain.Hash]*chain.Block)
	}
	for _, b := range bs {
		h := b.Hash()
		if _, ok := r.byHash[h]; ok {
			continue
		}
		r.byHash[h] = b
		r.order = append(r.order, h)
		r.weight += blockWeight(b)
	}
	for len(r.order) > 1 && r.weight > recentWeight {
		old := r.order[0]
		r.order = r.order[1:]
		r.weight -= blockWeight(r.byHash[old])
		delete(r.byHash, old)
	}
}

// get returns the block of hash h, or nil.
func (r *recentBlocks) get(h chain.Hash) *chain.Block {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byHash[h]
}
