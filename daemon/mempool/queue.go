package mempool

import "github.com/poslab/posd/chain"

// makeRoom evicts what it must so that tx (size bytes, brought by from;
// pending says whether it would be executable, newPend how many pending
// its sender would then hold) fits every bound, or changes nothing and
// says why it cannot. Victims, cheapest first:
//   - a queued transaction: any for an executable newcomer, one with a
//     strictly lower fee for a gapped one;
//   - for an executable newcomer within its sender's AccountSlots share
//     only, the last pending transaction of another sender: first of
//     senders over their share (any fee), else the lowest fee strictly
//     below tx's. A gapped newcomer never evicts a pending transaction.
//
// A Local tx's bounds leave out the relayers' share (Origin).
//
// p.mu is held.
func (p *Pool) makeRoom(tx *chain.Transaction, size int, from Origin, pending bool, newPend int) error {
	limit, maxBytes, whose := p.limit, p.cfg.MaxBytes, ""
	if from == Local {
		// A client's transaction may not grow the pool into the relayers'
		// share; in a pool already past it (relays filled it), it gets a
		// place as a newcomer does in a full pool: by evicting one, by
		// the same rules (a gapped one; within its sender's share, the
		// tail of a sender over its own), so neither guarantee of a full
		// pool is lost to the share.
		if len(p.byID)+1 <= limit && p.bytes+int64(size) <= maxBytes {
			whose = " for this node's clients (the last quarter is kept for peers' relays)"
		}
		limit = min(limit, max(limit-limit/relayShare, len(p.byID)))
		maxBytes = min(maxBytes, max(maxBytes-maxBytes/relayShare, p.bytes))
	}
	var victims []*entry
	var wasQueued []bool
	for {
		var full error
		switch {
		case len(p.byID)+1 > limit:
			full = ruleErr(ErrPoolFull, "the pool holds %d transactions, its limit%s, and none it may evict for this one (fee %d)", len(p.byID), whose, tx.Fee)
		case p.bytes+int64(size) > maxBytes:
			full = ruleErr(ErrPoolFull, "the pool holds %d bytes, and %d more would pass its limit of %d%s; none it may evict for this one (fee %d)", p.bytes, size, maxBytes, whose, tx.Fee)
		case !pending && p.nqueued+1 > p.queueLimit():
			full = ruleErr(ErrQueueFull, "%d gapped transactions are pooled, the limit, and none it may evict for this one (fee %d)", p.nqueued, tx.Fee)
		}
		if full == nil {
			break
		}
		var v *entry
		if len(victims) < maxEvictions {
			v = p.pickVictim(tx, pending, newPend)
		}
		if v == nil {
			// Put everything back as it was, last out first in.
			now := p.now()
			for i := len(victims) - 1; i >= 0; i-- {
				e := victims[i]
				p.dead--
				p.insert(e.owner, e, now)
			}
			return full
		}
		wasQueued = append(wasQueued, v.queued)
		i, _ := v.owner.find(v.tx.Nonce)
		p.removeAt(v.owner, i)
		victims = append(victims, v)
	}
	for k, v := range victims {
		why := "a gapped transaction"
		if !wasQueued[k] {
			why = "pending beyond its sender's share or cheaper"
		}
		p.evict(v, ruleErr(ErrEvicted, "%s (fee %d) made room for %s (fee %d): the pool was full", why, v.tx.Fee, tx.ID(), tx.Fee))
	}
	return nil
}

// pickVictim returns the next transaction makeRoom may evict for tx, or
// nil. p.mu is held.
func (p *Pool) pickVictim(tx *chain.Transaction, pending bool, newPend int) *entry {
	if len(p.queue) > 0 {
		if q := p.queue[0]; pending || q.tx.Fee < tx.Fee {
			return q
		}
	}
	if !pending || newPend > p.cfg.AccountSlots {
		return nil
	}
	s := p.victims.first(tx.From)
	if s == nil {
		return nil
	}
	tail := s.txs[s.npend-1]
	if s.npend > p.cfg.AccountSlots || tail.tx.Fee < tx.Fee {
		return tail
	}
	return nil
}

// queueHeap holds the queued entries, the first to evict on top: lowest
// fee, then the latest arrival (so a flood cannot push out what waited
// before it).
type queueHeap []*entry

func (h queueHeap) less(i, j int) bool {
	if h[i].tx.Fee != h[j].tx.Fee {
		return h[i].tx.Fee < h[j].tx.Fee
	}
	return h[i].seq > h[j].seq
}

func (h queueHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].qidx = i
	h[j].qidx = j
}

func (h *queueHeap) push(e *entry) {
	e.qidx = len(*h)
	*h = append(*h, e)
	h.up(e.qidx)
}

func (h *queueHeap) remove(e *entry) {
	i, n := e.qidx, len(*h)-1
	if i != n {
		h.swap(i, n)
	}
	(*h)[n] = nil
	*h = (*h)[:n]
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
	e.qidx = -1
}

func (h queueHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h queueHeap) down(i int) bool {
	start, n := i, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}

// senderHeap holds the senders with pending entries, the one whose last
// pending entry goes first on top: senders beyond their share (slots)
// first, the largest first; then the lowest fee of that last entry, then
// its latest arrival.
type senderHeap struct {
	slots int
	h     []*sender
}

func (sh *senderHeap) less(i, j int) bool {
	a, b := sh.h[i], sh.h[j]
	overA, overB := a.npend > sh.slots, b.npend > sh.slots
	if overA != overB {
		return overA
	}
	if overA && a.npend != b.npend {
		return a.npend > b.npend
	}
	ta, tb := a.txs[a.npend-1], b.txs[b.npend-1]
	if ta.tx.Fee != tb.tx.Fee {
		return ta.tx.Fee < tb.tx.Fee
	}
	return ta.seq > tb.seq
}

func (sh *senderHeap) swap(i, j int) {
	sh.h[i], sh.h[j] = sh.h[j], sh.h[i]
	sh.h[i].hidx = i
	sh.h[j].hidx = j
}

// update puts s in its place after its pending run changed: in, out or
// moved.
func (sh *senderHeap) update(s *sender) {
	switch {
	case s.npend == 0 && s.hidx >= 0:
		i, n := s.hidx, len(sh.h)-1
		if i != n {
			sh.swap(i, n)
		}
		sh.h[n] = nil
		sh.h = sh.h[:n]
		if i != n && !sh.down(i) {
			sh.up(i)
		}
		s.hidx = -1
	case s.npend > 0 && s.hidx < 0:
		s.hidx = len(sh.h)
		sh.h = append(sh.h, s)
		sh.up(s.hidx)
	case s.npend > 0:
		if !sh.down(s.hidx) {
			sh.up(s.hidx)
		}
	}
}

// first returns the top sender other than not (the second best in a binary
// heap is one of the root's children), or nil.
func (sh *senderHeap) first(not chain.Address) *sender {
	if len(sh.h) == 0 {
		return nil
	}
	if sh.h[0].addr != not {
		return sh.h[0]
	}
	switch {
	case len(sh.h) == 1:
		return nil
	case len(sh.h) == 2 || sh.less(1, 2):
		return sh.h[1]
	}
	return sh.h[2]
}

func (sh *senderHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !sh.less(i, parent) {
			return
		}
		sh.swap(i, parent)
		i = parent
	}
}

func (sh *senderHeap) down(i int) bool {
	start, n := i, len(sh.h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && sh.less(r, l) {
			m = r
		}
		if !sh.less(m, i) {
			break
		}
		sh.swap(i, m)
		i = m
	}
	return i > start
}
