package store

import (
	"sync"

	"github.com/poslab/posd/chain"
)

// recentBlocks keeps the newest blocks Switch wrote, decoded, by hash,
// for Blocks. A client watching for its commits reads each new block
// right after it is committed (GET /v1/blocks/txids: poscli load, the
// explorer), and decoding it from the file again (the hex fields, an id
// hash per transaction) was 3% of a loaded node's CPU. Only a block whose
// body this Switch wrote is kept: a hash leaves some text out (the
// header's signature as written), so a block stored earlier under the
// same hash may differ from the one committed, and Blocks must hand out
// what the file holds. Bounded by the blocks' encoded bytes, votes and
// evidence included.
type recentBlocks struct {
	mu     sync.Mutex
	byHash map[chain.Hash]*chain.Block
	order  []recentBlock // oldest first
	bytes  int           // the kept blocks' encodings
}

type recentBlock struct {
	hash chain.Hash
	size int // encoded bytes
}

// recentBytes bounds the encoded bytes of the blocks recentBlocks keeps:
// a few blocks of a loaded node.
const recentBytes = 8 << 20

// add keeps block b of hash h and encoded size bytes, dropping the oldest
// beyond recentBytes (the newest stays, whatever its size).
func (r *recentBlocks) add(h chain.Hash, b *chain.Block, size int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byHash == nil {
		r.byHash = make(map[chain.Hash]*chain.Block)
	}
	if _, ok := r.byHash[h]; ok {
		return
	}
	r.byHash[h] = b
	r.order = append(r.order, recentBlock{h, size})
	r.bytes += size
	for len(r.order) > 1 && r.bytes > recentBytes {
		old := r.order[0]
		r.order = r.order[1:]
		r.bytes -= old.size
		delete(r.byHash, old.hash)
	}
}

// get returns the block of hash h, or nil.
func (r *recentBlocks) get(h chain.Hash) *chain.Block {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byHash[h]
}
