package client

import (
	"context"
	"net/url"

	"github.com/poslab/posd/chain"
)

// SearchResult is the answer of GET /v1/search (daemon/api.SearchResult):
// the blocks, transactions and accounts whose hex starts with Prefix, a
// few of each; two or more of a kind mean the prefix is ambiguous there.
type SearchResult struct {
	Prefix   string          `json:"prefix"`
	Blocks   []chain.Hash    `json:"blocks"`
	Txs      []chain.Hash    `json:"txs"`
	Accounts []chain.Address `json:"accounts"`
}

// Search is GET /v1/search?prefix=P (4 to 64 hex characters).
func (c *Client) Search(ctx context.Context, prefix string) (SearchResult, error) {
	return get[SearchResult](ctx, c, "/v1/search", url.Values{"prefix": {prefix}})
}
