package mempool

import "github.com/poslab/posd/chain"

// Run returns a's pending (executable) transactions from nonce from on,
// in nonce order: at most limit of them and, past the first, at most
// maxBytes encoded. A peer that missed some of a sender's gossip asks for
// them (p2p's gap filling); queued ones are never served, as they are
// never gossiped.
func (p *Pool) Run(a chain.Address, from uint64, limit, maxBytes int) []chain.Transaction {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.senders[a]
	if s == nil || limit <= 0 {
		return nil
	}
	i, _ := s.find(from)
	var out []chain.Transaction
	size := 0
	for ; i < s.npend && len(out) < limit; i++ {
		e := s.txs[i]
		if len(out) > 0 && size+e.size > maxBytes {
			break
		}
		size += e.size
		out = append(out, e.tx)
	}
	return out
}
