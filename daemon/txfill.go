package daemon

import (
	"errors"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/daemon/p2p"
)

// The node takes part in the network's gap filling (p2p/txfill.go): it
// says which senders of a gossiped message arrived with a nonce gap, and
// serves its pooled runs to peers that lack them.
var _ p2p.TxFiller = p2pHandler{}

// HandleTxsGaps is HandleTxs (for a gap fill answer, not gossiped: only
// what became ready is relayed), and for each sender with a transaction
// the pool queued (gapped) or refused for a gap, the first nonce it lacks.
//
// A gap makes this node ask the peer for the sender's run, so it is only
// believed of a transaction whose signature verified: the pool refuses a
// gap too wide (ErrNonceGap) or a full queue (ErrQueueFull) before it
// checks signatures, and a made-up transaction of any funded sender would
// otherwise send this node asking for nothing. One such transaction per
// sender is verified here; a bad signature rejects the message.
func (h p2pHandler) HandleTxsGaps(txs []chain.Transaction, gossiped bool) ([]chain.Transaction, []p2p.TxGap, error) {
	ready, errs, err := h.handleTxs(txs)
	if err != nil {
		return nil, nil, err
	}
	relay := ready
	if gossiped {
		relay = h.relayOf(txs, ready, errs)
	}
	// The pool holds one transaction per sender and nonce: an admitted
	// one is ready if its sender's nonce is (no hashing needed).
	type slot struct {
		from  chain.Address
		nonce uint64
	}
	promoted := make(map[slot]bool, len(ready))
	for i := range ready {
		promoted[slot{ready[i].From, ready[i].Nonce}] = true
	}
	var gapped map[chain.Address]bool // true: shown by a verified transaction
	var unverified []int              // per sender, one refused before its signature check
	for i := range txs {
		e, from := errs[i], txs[i].From
		switch {
		case e == nil && !promoted[slot{from, txs[i].Nonce}]: // queued: verified
			if gapped == nil {
				gapped = map[chain.Address]bool{}
			}
			gapped[from] = true
		case errors.Is(e, mempool.ErrNonceGap) || errors.Is(e, mempool.ErrQueueFull):
			if gapped == nil {
				gapped = map[chain.Address]bool{}
			}
			if _, seen := gapped[from]; !seen {
				gapped[from] = false
				unverified = append(unverified, i)
			}
		}
	}
	if err := h.verifyGapped(txs, unverified, gapped); err != nil {
		return nil, nil, err
	}
	if len(gapped) == 0 {
		return relay, nil, nil
	}
	view := h.chain.Snapshot()
	gaps := make([]p2p.TxGap, 0, len(gapped))
	for a, ok := range gapped {
		if ok {
			gaps = append(gaps, p2p.TxGap{From: a, Next: h.pool.PendingNonce(a, view) + 1})
		}
	}
	return relay, gaps, nil
}

// verifyGapped checks the signatures of txs[idx...] for the senders gapped does not yet trust, and marks those
// that verify. A bad one is the message's fault: rejected.
func (h p2pHandler) verifyGapped(txs []chain.Transaction, idx []int, gapped map[chain.Address]bool) error {
	var sub []chain.Transaction
	for _, i := range idx {
		if !gapped[txs[i].From] {
			sub = append(sub, txs[i])
		}
	}
	if len(sub) == 0 {
		return nil
	}
	errs := make([]error, len(sub))
	h.sigs.VerifyTxs(sub, errs)
	for i, err := range errs {
		if err != nil {
			return p2p.Reject(err)
		}
		gapped[sub[i].From] = true
	}
	return nil
}

// PooledRun serves a peer that lacks some of from's transactions.
func (h p2pHandler) PooledRun(from chain.Address, nonce uint64, limit, maxBytes int) []chain.Transaction {
	return h.pool.Run(from, nonce, limit, maxBytes)
}
