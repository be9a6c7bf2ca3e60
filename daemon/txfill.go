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

// HandleTxsGaps is HandleTxs, and for each sender with a transaction the
// pool queued (gapped) or refused for a gap, the first nonce it lacks.
func (h p2pHandler) HandleTxsGaps(txs []chain.Transaction) ([]chain.Transaction, []p2p.TxGap, error) {
	ready, errs, err := h.handleTxs(txs)
	if err != nil {
		return nil, nil, err
	}
	promoted := make(map[chain.Hash]bool, len(ready))
	for i := range ready {
		promoted[ready[i].ID()] = true
	}
	var gapped map[chain.Address]bool
	for i := range txs {
		e := errs[i]
		queued := e == nil && !promoted[txs[i].ID()]
		if queued || errors.Is(e, mempool.ErrNonceGap) || errors.Is(e, mempool.ErrQueueFull) {
			if gapped == nil {
				gapped = map[chain.Address]bool{}
			}
			gapped[txs[i].From] = true
		}
	}
	if len(gapped) == 0 {
		return ready, nil, nil
	}
	view := h.chain.Snapshot()
	gaps := make([]p2p.TxGap, 0, len(gapped))
	for a := range gapped {
		gaps = append(gaps, p2p.TxGap{From: a, Next: h.pool.PendingNonce(a, view) + 1})
	}
	return ready, gaps, nil
}

// PooledRun serves a peer that lacks some of from's transactions.
func (h p2pHandler) PooledRun(from chain.Address, nonce uint64, limit, maxBytes int) []chain.Transaction {
	return h.pool.Run(from, nonce, limit, maxBytes)
}
