package daemon

import (
	"context"
	"encoding/json"
	"time"

	"github.com/poslab/posd/chain"
)

// metaFirstStake records the STAKE of `posd start --stake`, so a restart with
// the same flags never stakes twice.
const metaFirstStake = "first_stake_tx"

// stakeOnce stakes cfg.Stake from the node key, once per home: it waits
// until the key's committed balance covers the amount (the EXCHANGE of
// --fund, or coins sent by someone), then submits the STAKE. A network whose
// nodes all stake this way goes on forging when any one of them dies.
func (n *Node) stakeOnce(ctx context.Context) {
	if n.cfg.Stake == 0 {
		return
	}
	if v, err := n.chain.Meta(metaFirstStake); err == nil {
		var tx chain.Transaction
		if json.Unmarshal(v, &tx) == nil {
			if _, _, err := n.chain.TxLocation(tx.ID()); err == nil {
				return // committed before
			}
			if _, err := n.api.SubmitTx(tx); err == nil {
				n.log.Info("staking again: the STAKE was not committed before the restart", "tx", tx.ID().String())
			}
		}
		return
	}
	addr := n.key.Address()
	for logged := false; ; {
		bal := n.chain.Account(addr).Balance
		if bal >= n.cfg.Stake {
			break
		}
		if !logged {
			n.log.Info("waiting for the node key's balance to cover --stake", "stake", n.cfg.Stake, "balance", bal)
			logged = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
	tx, err := n.api.SubmitOwn(chain.Transaction{Type: chain.TxStake, ChainID: n.g.ChainID, To: addr, Amount: n.cfg.Stake})
	if err != nil {
		n.log.Warn("could not stake from the node key", "amount", n.cfg.Stake, "err", err)
		return
	}
	data, _ := json.Marshal(tx)
	if err := n.chain.PutMeta(metaFirstStake, data); err != nil {
		n.log.Warn("could not record the first stake", "err", err)
	}
	n.log.Info("staking from the node key", "amount", n.cfg.Stake, "tx", tx.ID().String())
}
