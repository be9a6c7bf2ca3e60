package firststart

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
func (c Config) stakeOnce(ctx context.Context) {
	if c.Stake == 0 {
		return
	}
	if v, err := c.Chain.Meta(metaFirstStake); err == nil {
		var tx chain.Transaction
		if json.Unmarshal(v, &tx) == nil {
			if _, _, err := c.Chain.TxLocation(tx.ID()); err == nil {
				return // committed before
			}
			if _, err := c.Submit.SubmitTx(tx); err == nil {
				c.Log.Info("staking again: the STAKE was not committed before the restart", "tx", tx.ID().String())
			}
		}
		return
	}
	addr := c.Address
	for logged := false; ; {
		bal := c.Chain.Account(addr).Balance
		if bal >= c.Stake {
			break
		}
		if !logged {
			c.Log.Info("waiting for the node key's balance to cover --stake", "stake", c.Stake, "balance", bal)
			logged = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
	tx, err := c.Submit.SubmitOwn(chain.Transaction{Type: chain.TxStake, ChainID: c.ChainID, To: addr, Amount: c.Stake})
	if err != nil {
		c.Log.Warn("could not stake from the node key", "amount", c.Stake, "err", err)
		return
	}
	data, _ := json.Marshal(tx)
	if err := c.Chain.PutMeta(metaFirstStake, data); err != nil {
		c.Log.Warn("could not record the first stake", "err", err)
	}
	c.Log.Info("staking from the node key", "amount", c.Stake, "tx", tx.ID().String())
}
