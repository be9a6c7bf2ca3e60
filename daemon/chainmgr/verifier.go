package chainmgr

import (
	"sync"

	"github.com/poslab/posd/chain"
)

// Verifier checks transaction signatures and remembers the ones it found
// valid, so a transaction verified when the pool admitted it is not
// verified again when a block carries it. The pool and block import share
// the node's one Verifier; the manager owns it. Safe for concurrent use.
//
// A cached signature is keyed by the transaction id (which covers every
// signed field, the public key included) and the signature bytes: a
// different signature for the same id is verified afresh.
//
// Signatures that arrive in numbers (an API batch, a gossip message, a
// block) go through VerifyTxs and CheckBlockTxs: chain.SigVerifier's batch
// check by the ZIP-215 rule, bisecting a failed batch, with the expanded
// public keys of recent senders kept. Single checks (VerifyTx) use the
// same rule, so no path accepts what another refuses.
type Verifier struct {
	chainID string
	cache   *sigCache
	batch   *chain.SigVerifier
}

// DefaultVerifierCache is how many verified signatures a Verifier keeps at
// least (it keeps up to twice as many): a full pool's worth.
const DefaultVerifierCache = 100000

// NewVerifier returns a Verifier for chainID remembering at least size
// signatures (DefaultVerifierCache when size <= 0).
func NewVerifier(chainID string, size int) *Verifier {
	return NewSharingVerifier(chainID, NewSigCache(size))
}

// NewSharingVerifier returns a Verifier for chainID that remembers
// verified signatures in sigs, which other Verifiers may share.
func NewSharingVerifier(chainID string, sigs *SigCache) *Verifier {
	return &Verifier{chainID: chainID, cache: sigs.seen, batch: sigs.batch}
}

// SigCache is what Verifiers may share: the verified signatures and the
// batch verifier with its expanded public keys. Whether a signature
// verifies is a fact about its bytes (the cache key is the transaction id,
// which covers the chain id, and the signature), not about a node, so the
// nodes of one process can share one: posd devnet's nodes then verify each
// signature once between them, as the machines of a real network each
// verify it once on cores of their own, instead of four times on the same
// two cores. Safe for concurrent use.
type SigCache struct {
	seen  *sigCache
	batch *chain.SigVerifier
}

// NewSigCache returns a SigCache remembering at least size signatures
// (DefaultVerifierCache when size <= 0).
func NewSigCache(size int) *SigCache {
	if size <= 0 {
		size = DefaultVerifierCache
	}
	return &SigCache{seen: newSigCache(size), batch: chain.NewSigVerifier(0)}
}

// VerifyTxs checks the signatures of txs in batches, skipping those cached
// and those whose errs[i] is already set, and sets errs[i] for each bad
// one. Good signatures are cached. It does not run the stateless rules.
// errs and txs have the same length.
func (v *Verifier) VerifyTxs(txs []chain.Transaction, errs []error) {
	var todo []int
	keys := make([]sigKey, len(txs))
	for i := range txs {
		if errs[i] != nil {
			continue
		}
		k, ok := keyOf(txs[i].ID(), txs[i].Signature)
		if ok && v.cache.has(k) {
			continue
		}
		keys[i] = k
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return
	}
	sub := make([]chain.Transaction, len(todo))
	for j, i := range todo {
		sub[j] = txs[i]
	}
	bad := v.batch.VerifyTxs(sub)
	good := make([]sigKey, 0, len(todo))
	for j, i := range todo {
		if bad[j] != nil {
			errs[i] = bad[j]
			continue
		}
		good = append(good, keys[i])
	}
	v.cache.addAll(good)
}

// CheckBlockTxs runs the stateless rules of every transaction of b and
// checks the signatures not cached (those the pool admitted) in batches.
// The error is a *chain.BlockTxError naming the lowest bad index, as a
// sequential check would. On success the block's signatures are cached,
// so validating it on its parent's state (TxVerifier) checks none again.
func (v *Verifier) CheckBlockTxs(g *chain.Genesis, b *chain.Block) error {
	var fresh []sigKey // called in order, on this goroutine
	err := chain.CheckBlockTxsBatch(g, b, v.batch, func(tx *chain.Transaction) bool {
		k, ok := keyOf(tx.ID(), tx.Signature)
		if ok && v.cache.has(k) {
			return true
		}
		if ok {
			fresh = append(fresh, k)
		}
		return false
	})
	if err == nil {
		v.cache.addAll(fresh)
	}
	return err
}

// VerifyTx checks tx's signature, from the cache when it was verified
// before; id is tx.ID(). It does not run the stateless rules.
func (v *Verifier) VerifyTx(tx *chain.Transaction, id chain.Hash) error {
	k, ok := keyOf(id, tx.Signature)
	if ok && v.cache.has(k) {
		return nil
	}
	if err := tx.VerifySignature(); err != nil {
		return err
	}
	if ok {
		v.cache.add(k)
	}
	return nil
}

// TxVerifier is the chain.TxVerifier block validation uses: the stateless
// rules always, the signature unless cached.
func (v *Verifier) TxVerifier() chain.TxVerifier {
	return func(tx *chain.Transaction) error {
		if err := tx.CheckStateless(v.chainID); err != nil {
			return err
		}
		return v.VerifyTx(tx, tx.ID())
	}
}

// Cached reports whether tx's signature is cached: verified before by this
// Verifier or one sharing its SigCache.
func (v *Verifier) Cached(tx *chain.Transaction) bool {
	k, ok := keyOf(tx.ID(), tx.Signature)
	return ok && v.cache.has(k)
}

// sigKey names one verified signature.
type sigKey struct {
	id  chain.Hash
	sig chain.Signature
}

// keyOf is the cache key of a signature; false when there is none (which
// never verifies, so never needs caching). The signature is bytes already:
// nothing is decoded per transaction per path.
func keyOf(id chain.Hash, sig chain.Signature) (sigKey, bool) {
	return sigKey{id: id, sig: sig}, !sig.IsZero()
}

// sigCache remembers verified signatures in two generations of at most gen
// keys each: when the current one fills, it becomes the previous one and
// the old previous one is dropped. So it holds between gen and 2·gen of the
// most recent keys.
type sigCache struct {
	mu        sync.RWMutex
	gen       int
	cur, prev map[sigKey]struct{}
}

func newSigCache(gen int) *sigCache {
	return &sigCache{gen: gen, cur: make(map[sigKey]struct{})}
}

func (c *sigCache) has(k sigKey) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if _, ok := c.cur[k]; ok {
		return true
	}
	_, ok := c.prev[k]
	return ok
}

func (c *sigCache) add(k sigKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(k)
}

// addAll adds keys under one lock.
func (c *sigCache) addAll(keys []sigKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		c.addLocked(k)
	}
}

func (c *sigCache) addLocked(k sigKey) {
	if len(c.cur) >= c.gen {
		c.prev, c.cur = c.cur, make(map[sigKey]struct{}, c.gen)
	}
	c.cur[k] = struct{}{}
}

// Batch is the batch signature verifier the Verifier uses (with its cache
// of expanded public keys): the vote gossip checks votes' signatures with
// it, so votes and transactions share one verifier.
func (v *Verifier) Batch() *chain.SigVerifier { return v.batch }
