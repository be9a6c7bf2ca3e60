// Package firststart does what a node does once per home with its own key:
// buy coins with an EXCHANGE (posd start --fund) and stake them (--stake).
// Each transaction is recorded in the chain's metadata, so a restart with
// the same flags submits it again until it is committed and never makes a
// second one.
package firststart

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// Chain is what the first start reads and records in the chain manager.
type Chain interface {
	Account(a chain.Address) chain.Account // committed, at the head
	TxLocation(id chain.Hash) (uint64, int, error)
	Meta(key string) ([]byte, error)
	PutMeta(key string, v []byte) error
}

// Submitter is the node's transaction door (the API's backend): SubmitOwn
// signs with the node key at its next pending nonce.
type Submitter interface {
	SubmitTx(tx chain.Transaction) (chain.Hash, error)
	SubmitOwn(tx chain.Transaction) (chain.Transaction, error)
}

// Network is what the first start asks of the peer-to-peer side.
type Network interface {
	Peers() []rpc.Peer
}

// Config is the node's parts and flags the first start works with.
type Config struct {
	Chain   Chain
	Submit  Submitter
	Net     Network // nil: no network
	Address chain.Address
	ChainID string
	Fund    uint64 // --fund
	Stake   uint64 // --stake
	Log     *slog.Logger
}

// Run waits (at most peerWait) for a peer, funds the node key if asked,
// then stakes if asked; it returns when done or when ctx ends.
func Run(ctx context.Context, c Config, peerWait time.Duration) {
	c.waitForPeers(ctx, peerWait)
	if c.Fund > 0 {
		c.fundOnce()
	}
	c.stakeOnce(ctx)
}

// waitForPeers returns once the node has a peer, or after timeout, or at
// once without a network or for a staker. A transaction gossiped before any peer listens is
// lost, and a node that is no forger would keep it in its pool for ever.
func (c Config) waitForPeers(ctx context.Context, timeout time.Duration) {
	staker := c.Chain.Account(c.Address).Stake > 0
	if c.Net == nil || staker { // a staker forges its own transactions in time
		return
	}
	deadline := time.Now().Add(timeout)
	for len(c.Net.Peers()) == 0 && time.Now().Before(deadline) {
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
func (c Config) fundOnce() {
	const metaKey = "funding_tx"
	if v, err := c.Chain.Meta(metaKey); err == nil {
		var tx chain.Transaction
		if json.Unmarshal(v, &tx) == nil {
			if _, _, err := c.Chain.TxLocation(tx.ID()); err == nil {
				return // committed
			}
			if _, err := c.Submit.SubmitTx(tx); err == nil {
				c.Log.Info("funding the node key again: not committed before the restart", "tx", tx.ID().String())
			}
			return
		}
	}
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: c.ChainID, To: c.Address, Amount: c.Fund}
	tx, err := c.Submit.SubmitOwn(tx)
	if err != nil {
		c.Log.Warn("could not fund the node key", "amount", c.Fund, "err", err)
		return
	}
	data, _ := json.Marshal(tx)
	if err := c.Chain.PutMeta(metaKey, data); err != nil {
		c.Log.Warn("could not record funding", "err", err)
	}
	c.Log.Info("funding the node key", "amount", c.Fund, "tx", tx.ID().String())
}
