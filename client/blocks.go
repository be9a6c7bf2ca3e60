package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// headerNextFrom is the cursor a node sends when it cut a block list short
// at its page's byte bound: the first height it left out.
const headerNextFrom = "X-Next-From"

// Blocks is GET /v1/blocks: ascending from height *from, or the newest limit
// blocks when from is nil. limit <= 0 leaves the node's default (20) and
// reads one page.
//
// A node cuts a page at a byte bound (large blocks fill it before limit
// does) and names the next height in X-Next-From; Blocks follows it until
// it holds limit blocks or the chain ends, so a caller never gets a silent
// short list. Each page holds at least one block, so there are at most
// limit pages.
//
// Without from, the node answers the newest blocks that fit one page, with
// no cursor: when that is fewer than limit, Blocks reads the blocks below
// the page's first from the height they start at.
func (c *Client) Blocks(ctx context.Context, from *uint64, limit int) ([]chain.Block, error) {
	if from == nil {
		page, _, err := listPage[chain.Block](ctx, c, "/v1/blocks", nil, limit, nil)
		if err != nil || limit <= 0 || len(page) >= limit || len(page) == 0 || page[0].Height == 0 {
			return page, err
		}
		first := page[0].Height
		start := first - min(uint64(limit-len(page)), first)
		below, err := c.Blocks(ctx, &start, int(first-start))
		if err != nil {
			return nil, err
		}
		return append(below, page...), nil
	}
	return followPages(ctx, c, "/v1/blocks", from, limit, func(b chain.Block) uint64 { return b.Height }, nil)
}

// BlockTxIDs is GET /v1/blocks/txids: up to limit main-chain blocks from
// height from (nil: the newest limit), ascending, each with its
// transaction ids only. limit <= 0 leaves the node's default and reads one
// page. Like Blocks, it follows X-Next-From when the node cuts a page at
// its byte bound (a block of many transactions fills it first), so a
// caller never gets a silent short list; without from the node pages
// ascending from the newest limit blocks, with the same cursor.
func (c *Client) BlockTxIDs(ctx context.Context, from *uint64, limit int) ([]rpc.BlockTxIDs, error) {
	return followPages(ctx, c, "/v1/blocks/txids", from, limit, func(b rpc.BlockTxIDs) uint64 { return b.Height },
		func(data []byte) ([]rpc.BlockTxIDs, error) { return rpc.DecodeBlockTxIDsPage(data, maxPageBlocks) })
}

// maxPageBlocks is the most blocks a node puts in one page of a block
// list (docs/API.md: limit max 1000); a binary page holding more is
// refused.
const maxPageBlocks = 1000

// followPages reads the block list at path from height from (nil: where
// the node starts it), following X-Next-From until it holds limit items or
// the chain ends; limit <= 0 reads one page. height is an item's height:
// the cursor must name the height after a page's last item, so each page
// moves on by at least one block and there are at most limit pages.
// binary, if not nil, decodes a binary page, asked for in Accept.
func followPages[T any](ctx context.Context, c *Client, path string, from *uint64, limit int, height func(T) uint64, binary func([]byte) ([]T, error)) ([]T, error) {
	var out []T
	for {
		page, next, err := listPage(ctx, c, path, from, limit-len(out), binary)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == nil || limit <= 0 || len(out) >= limit {
			return out, nil
		}
		// The cursor must move on past what this page returned: a node
		// that answers otherwise would keep the loop going for ever.
		if len(page) == 0 || *next != height(page[len(page)-1])+1 {
			return nil, fmt.Errorf("unexpected answer to GET %s from %s: %s %d after %d blocks", path, c.base, headerNextFrom, *next, len(page))
		}
		from = next
	}
}

// listPage is one GET of the block list at path and its X-Next-From, if
// any; binary, if not nil, decodes a binary page, asked for in Accept.
func listPage[T any](ctx context.Context, c *Client, path string, from *uint64, limit int, binary func([]byte) ([]T, error)) ([]T, *uint64, error) {
	q := url.Values{}
	if from != nil {
		q.Set("from", strconv.FormatUint(*from, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var items []T
	r := request{method: http.MethodGet, path: path, query: q}
	if binary != nil {
		r.binary = func(data []byte) (err error) {
			items, err = binary(data)
			return err
		}
	}
	resp, cancel, err := c.send(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	if err := c.decode(ctx, r, resp, &items); err != nil {
		return nil, nil, err
	}
	h := resp.Header.Get(headerNextFrom)
	if h == "" {
		return items, nil, nil
	}
	next, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		return nil, nil, fmt.Errorf("unexpected answer to GET %s from %s: %s %q", path, c.base, headerNextFrom, h)
	}
	return items, &next, nil
}
