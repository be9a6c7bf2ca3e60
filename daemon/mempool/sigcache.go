package mempool

import (
	"crypto/ed25519"
	"sync"

	"github.com/poslab/posd/chain"
)

// sigKey names one verified signature: the transaction id (which covers
// every signed field, the public key included) and the signature bytes.
// A different signature for the same id is a different key.
type sigKey struct {
	id  chain.Hash
	sig [ed25519.SignatureSize]byte
}

// keyOf decodes sigHex into a key; false when it is not a well-formed
// signature (which never verifies, so never needs caching).
func keyOf(id chain.Hash, sigHex string) (sigKey, bool) {
	k := sigKey{id: id}
	if len(sigHex) != 2*len(k.sig) {
		return k, false
	}
	for i := range k.sig {
		hi, ok1 := unhex(sigHex[2*i])
		lo, ok2 := unhex(sigHex[2*i+1])
		if !ok1 || !ok2 {
			return k, false
		}
		k.sig[i] = hi<<4 | lo
	}
	return k, true
}

// unhex accepts what encoding/hex accepts: both cases.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// sigCache remembers verified signatures in two generations of at most gen
// keys each: when the current one fills, it becomes the previous one and
// the old previous one is dropped. So it holds between gen and 2·gen of the
// most recent keys. Safe for concurrent use.
type sigCache struct {
	mu        sync.RWMutex
	gen       int
	cur, prev map[sigKey]struct{}
}

func newSigCache(gen int) *sigCache {
	return &sigCache{gen: gen, cur: make(map[sigKey]struct{})}
}

func (c *sigCache) setGeneration(gen int) {
	c.mu.Lock()
	c.gen = gen
	c.mu.Unlock()
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

func (c *sigCache) add(keys ...sigKey) {
	if len(keys) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if len(c.cur) >= c.gen {
			c.prev, c.cur = c.cur, make(map[sigKey]struct{})
		}
		c.cur[k] = struct{}{}
	}
}

// len is the number of cached keys (tests).
func (c *sigCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.prev)
}
