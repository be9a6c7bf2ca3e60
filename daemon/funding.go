package daemon

import (
	"context"
	"encoding/json"
	"time"

	"github.com/poslab/posd/chain"
)

// waitForPeers returns once the node has a peer, or after timeout, or at
// once without a network or for a staker. A transaction gossiped before any peer listens is
// lost, and a node that is no forger would keep it in its pool for ever.
func (n *Node) waitForPeers(ctx context.Context, timeout time.Duration) {
	staker := n.chain.Snapshot().Account(n.key.Address()).Stake > 0
	if n.net == nil || staker { // a staker forges its own transactions in time
		return
	}
	deadline := time.Now().Add(timeout)
	for len(n.net.Peers()) == 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fundOnce buys cfg.Fund coins for the node key with an EXCHANGE on the
// node's first start only: the original minted again at every restart. The
// pool is not kept across restarts, so until the EXCHANGE is committed a
// restart submits it again (same id, so never twice on chain).
func (n *Node) fundOnce() {
	const metaKey = "funding_tx"
	if v, err := n.chain.Meta(metaKey); err == nil {
		var tx chain.Transaction
		if json.Unmarshal(v, &tx) == nil {
			if _, _, err := n.chain.TxLocation(tx.ID()); err == nil {
				return // committed
			}
			if _, err := n.api.SubmitTx(tx); err == nil {
				n.log.Info("funding the node key again: not committed before the restart", "tx", tx.ID().String())
			}
			return
		}
	}
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: n.g.ChainID, To: n.key.Address(), Amount: n.cfg.Fund}
	tx, err := n.api.SubmitOwn(tx)
	if err != nil {
		n.log.Warn("could not fund the node key", "amount", n.cfg.Fund, "err", err)
		return
	}
	data, _ := json.Marshal(tx)
	if err := n.chain.PutMeta(metaKey, data); err != nil {
		n.log.Warn("could not record funding", "err", err)
	}
	n.log.Info("funding the node key", "amount", n.cfg.Fund, "tx", tx.ID().String())
}
