package chainmgr

import "github.com/poslab/posd/chain"

// Reads are the reads of stored blocks, transactions and the node's own
// small records, straight from the store: bbolt readers do not wait for
// the writer, so these never wait for an import, and they touch nothing
// else of the manager (no lock, no state, no tree). The Manager embeds
// them, so callers read through it.
type Reads struct{ st Store }

// BlockByHeight returns a main-chain block (store.ErrNotFound when absent).
func (r Reads) BlockByHeight(h uint64) (*chain.Block, error) { return r.st.BlockByHeight(h) }

// BlockByHash returns any stored block, main chain or side branch.
func (r Reads) BlockByHash(h chain.Hash) (*chain.Block, error) { return r.st.BlockByHash(h) }

// Blocks returns main-chain blocks ascending from `from`, at most limit.
// The newest are shared with other readers (store.Store.Blocks): a caller
// must not change them.
func (r Reads) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	return r.st.Blocks(from, limit)
}

// HashAt is the hash of the main-chain block at height h.
func (r Reads) HashAt(h uint64) (chain.Hash, error) { return r.st.HashAt(h) }

// TxLocation finds a committed transaction.
func (r Reads) TxLocation(id chain.Hash) (uint64, int, error) { return r.st.TxLocation(id) }

// Meta and PutMeta keep the node's own small records in the store.
func (r Reads) Meta(key string) ([]byte, error) { return r.st.Meta(key) }

// PutMeta stores a node record (see Meta).
func (r Reads) PutMeta(key string, v []byte) error { return r.st.PutMeta(key, v) }
