package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/poslab/posd/chain"
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
		page, _, err := c.blocksPage(ctx, nil, limit)
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
	var out []chain.Block
	for {
		page, next, err := c.blocksPage(ctx, from, limit-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == nil || limit <= 0 || len(out) >= limit {
			return out, nil
		}
		// The cursor must move on past what this page returned: a node
		// that answers otherwise would keep the loop going for ever.
		if len(page) == 0 || *next != page[len(page)-1].Height+1 {
			return nil, fmt.Errorf("unexpected answer to GET /v1/blocks from %s: %s %d after %d blocks", c.base, headerNextFrom, *next, len(page))
		}
		from = next
	}
}

// blocksPage is one GET /v1/blocks and its X-Next-From, if any.
func (c *Client) blocksPage(ctx context.Context, from *uint64, limit int) ([]chain.Block, *uint64, error) {
	q := url.Values{}
	if from != nil {
		q.Set("from", strconv.FormatUint(*from, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	resp, cancel, err := c.send(ctx, request{method: http.MethodGet, path: "/v1/blocks", query: q})
	if err != nil {
		return nil, nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	var blocks []chain.Block
	if err := json.NewDecoder(resp.Body).Decode(&blocks); err != nil {
		if perr := ctx.Err(); perr != nil {
			return nil, nil, perr
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return nil, nil, &UnreachableError{URL: c.base, Err: fmt.Errorf("no complete answer within %s", c.timeout)}
		}
		return nil, nil, fmt.Errorf("unexpected answer to GET /v1/blocks from %s: %w", c.base, err)
	}
	h := resp.Header.Get(headerNextFrom)
	if h == "" {
		return blocks, nil, nil
	}
	next, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		return nil, nil, fmt.Errorf("unexpected answer to GET /v1/blocks from %s: %s %q", c.base, headerNextFrom, h)
	}
	return blocks, &next, nil
}
