package client

import (
	"context"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// Finality is GET /v1/finality: the latest justified and finalized
// checkpoints and the tallies of the newest targets. A node without
// finality answers 501: the *APIError not_supported (IsNotSupported).
func (c *Client) Finality(ctx context.Context) (rpc.Finality, error) {
	return get[rpc.Finality](ctx, c, "/v1/finality", nil)
}

// IsNotSupported reports whether err is the node saying it does not offer
// the feature asked for (an older node, or one with it turned off).
func IsNotSupported(err error) bool { return IsCode(err, "not_supported") }

// WaitTxFinal is WaitTx until the transaction is final (TxInfo.Final), not
// only committed. A transaction a reorg takes back to the pool is waited
// for again. Only on a node that reports finality (Status.HasFinality):
// elsewhere it would wait until ctx ends.
func (c *Client) WaitTxFinal(ctx context.Context, id chain.Hash, poll time.Duration) (rpc.TxInfo, error) {
	return c.waitTx(ctx, id, poll, func(info rpc.TxInfo) bool { return info.Final }, nil)
}

// WaitTxStages waits for id to be committed, calls included with that
// answer, then waits for it to be final. It is WaitTxFinal for callers
// that report both stages (poscli tx --wait).
func (c *Client) WaitTxStages(ctx context.Context, id chain.Hash, poll time.Duration, included func(rpc.TxInfo)) (rpc.TxInfo, error) {
	return c.waitTx(ctx, id, poll, func(info rpc.TxInfo) bool { return info.Final }, included)
}
