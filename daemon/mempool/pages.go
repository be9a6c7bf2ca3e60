package mempool

import (
	"slices"
	"time"

	"github.com/poslab/posd/chain"
)

// Stats counts what the pool holds.
type Stats struct {
	Pending int   // executable transactions
	Queued  int   // gapped transactions
	Bytes   int64 // encoded bytes of both
	Senders int
}

// Stats returns the pool's counts.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Pending: len(p.byID) - p.nqueued, Queued: p.nqueued, Bytes: p.bytes, Senders: len(p.senders)}
}

// Status returns the pooled transaction with id and whether it is queued
// (gapped) rather than pending.
func (p *Pool) Status(id chain.Hash) (tx chain.Transaction, queued, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, found := p.byID[id]; found {
		return e.tx, e.queued, true
	}
	return chain.Transaction{}, false, false
}

// All returns every pooled transaction, pending and queued, oldest arrival
// first. It copies the whole pool: an API should use Page.
func (p *Pool) All() []chain.Transaction {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]chain.Transaction, 0, len(p.byID))
	for _, e := range p.order {
		if !e.gone {
			out = append(out, e.tx)
		}
	}
	return out
}

// Executable returns up to limit pending transactions, in the order they
// became executable (each sender's in nonce order): what a node may gossip
// again. limit ≤ 0 returns nothing.
func (p *Pool) Executable(limit int) []chain.Transaction {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []chain.Transaction
	for _, s := range p.pend[p.pendHead:] {
		if len(out) >= limit {
			break
		}
		if s.valid() {
			out = append(out, s.e.tx)
		}
	}
	return out
}

// Lingering returns, oldest first, at most limit executable transactions
// that went ungossiped for a wait: every since they became pending (when
// the node gossiped them), then twice and four times every since
// Lingering last returned them. It marks the ones it returns as gossiped
// at now. So a rebroadcast sends only what lingers, and what keeps
// lingering (full blocks, not a lost message) less and less often.
func (p *Pool) Lingering(now time.Time, every time.Duration, limit int) []chain.Transaction {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []chain.Transaction
	for _, s := range p.pend[p.pendHead:] {
		if len(out) >= limit {
			break
		}
		if !s.valid() {
			continue
		}
		e := s.e
		if now.Sub(e.since) < every {
			break // p.pend is in the order they became pending
		}
		if !e.resentAt.IsZero() && now.Sub(e.resentAt) < every<<min(e.resent, 2) {
			continue
		}
		e.resentAt = now
		e.resent = min(e.resent+1, 2)
		out = append(out, e.tx)
	}
	return out
}

// PooledTx is one transaction of a Page.
type PooledTx struct {
	Tx     chain.Transaction
	Queued bool // gapped: not executable until the missing nonces arrive
}

// Page is a slice of the pool in arrival order.
type Page struct {
	Txs []PooledTx
	// Next is the cursor of the following page; 0 when this page reached
	// the end of the pool.
	Next uint64
}

// Page returns pooled transactions (pending and queued) that arrived after
// cursor (0: from the oldest), oldest first, at most limit of them and, past
// the first, at most maxBytes of encoded transactions (≤ 0: no byte bound).
// Cursors stay valid while the pool changes: a page never repeats a
// transaction of an earlier page, and transactions that arrive later are
// on later pages. The lock is held only to copy the page.
func (p *Pool) Page(cursor uint64, limit int, maxBytes int) Page {
	if limit <= 0 {
		return Page{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i, _ := slices.BinarySearchFunc(p.order, cursor+1, func(e *entry, seq uint64) int { return compareSeq(e.seq, seq) })
	var pg Page
	bytes := 0
	var last uint64
	for ; i < len(p.order); i++ {
		e := p.order[i]
		if e.gone {
			continue
		}
		if len(pg.Txs) == limit || len(pg.Txs) > 0 && maxBytes > 0 && bytes+e.size > maxBytes {
			pg.Next = last
			return pg
		}
		pg.Txs = append(pg.Txs, PooledTx{Tx: e.tx, Queued: e.queued})
		bytes += e.size
		last = e.seq
	}
	return pg
}
