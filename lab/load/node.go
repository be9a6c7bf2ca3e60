package load

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
)

// Node is what the load generator asks of one node. The transport is
// behind it: ClientNode speaks posd's HTTP API, submitting in the binary
// batch encoding.
type Node interface {
	// URL names the node in reports and errors.
	URL() string
	Status(ctx context.Context) (rpc.Status, error)
	Genesis(ctx context.Context) (*chain.Genesis, error)
	Account(ctx context.Context, addr chain.Address) (rpc.Account, error)
	// BlockTxIDs returns up to limit main-chain blocks from height from,
	// each with its transaction ids (the commit watcher reads no bodies).
	BlockTxIDs(ctx context.Context, from *uint64, limit int) ([]rpc.BlockTxIDs, error)
	// SubmitTxs sends a batch and returns one result per transaction, in
	// order. A refusal of the whole batch is a *RefusedError (each
	// transaction is then counted as refused with its code); any other
	// error ends the load.
	SubmitTxs(ctx context.Context, txs []chain.Transaction) ([]rpc.SubmitResult, error)
}

// RefusedError is a node's refusal of a whole batch (its pool shutting
// down, busy, ...): every transaction in it is refused with Code.
// RetryAfter is the wait the node asked for (Retry-After), if any.
type RefusedError struct {
	Code, Message string
	RetryAfter    time.Duration
}

func (e *RefusedError) Error() string { return e.Code + ": " + e.Message }

// ClientNode is a Node on posd's HTTP API.
type ClientNode struct{ *client.Client }

// URL is the client's base URL.
func (n ClientNode) URL() string { return n.BaseURL() }

// SubmitTxs posts the batch to /v1/txs in the binary encoding
// (client.SubmitTxsBinary), or in JSON to a node older than that encoding
// (it answers 400 bad_json or 415); an API error answering the whole batch
// becomes a *RefusedError.
func (n ClientNode) SubmitTxs(ctx context.Context, txs []chain.Transaction) ([]rpc.SubmitResult, error) {
	res, err := n.Client.SubmitTxsBinary(ctx, txs)
	var ae *client.APIError
	if errors.As(err, &ae) && (ae.Code == "bad_json" || ae.Status == http.StatusUnsupportedMediaType) {
		res, err = n.Client.SubmitTxs(ctx, txs)
	}
	if errors.As(err, &ae) {
		return nil, &RefusedError{Code: ae.Code, Message: ae.Message, RetryAfter: ae.RetryAfter}
	}
	return res, err
}

// BlockTxIDs reads GET /v1/blocks/txids, or whole blocks from a node older
// than that route (it answers 400 or 404), keeping their ids.
func (n ClientNode) BlockTxIDs(ctx context.Context, from *uint64, limit int) ([]rpc.BlockTxIDs, error) {
	out, err := n.Client.BlockTxIDs(ctx, from, limit)
	var ae *client.APIError
	if !errors.As(err, &ae) || (ae.Status != http.StatusBadRequest && ae.Status != http.StatusNotFound) {
		return out, err
	}
	blocks, err := n.Client.Blocks(ctx, from, limit)
	if err != nil {
		return nil, err
	}
	out = make([]rpc.BlockTxIDs, len(blocks))
	for i := range blocks {
		b := &blocks[i]
		out[i] = rpc.BlockTxIDs{Height: b.Height, Hash: b.Hash(), PrevHash: b.PrevHash, TxIDs: make([]chain.Hash, len(b.Transactions))}
		for j := range b.Transactions {
			out[i].TxIDs[j] = b.Transactions[j].ID()
		}
	}
	return out, nil
}

// isTransient reports whether err may go away by asking again.
func isTransient(err error) bool {
	var ue *client.UnreachableError
	return errors.As(err, &ue) || client.IsCode(err, "unavailable")
}
