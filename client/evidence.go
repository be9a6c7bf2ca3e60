package client

import (
	"context"

	"github.com/poslab/posd/chain/rpc"
)

// Evidence is GET /v1/evidence: the equivocations the node knows, newest
// height first.
func (c *Client) Evidence(ctx context.Context) ([]rpc.Evidence, error) {
	return get[[]rpc.Evidence](ctx, c, "/v1/evidence", nil)
}
