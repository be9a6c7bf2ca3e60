package api

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/poslab/posd/chain"
)

// blockRange is the from/limit query of the block lists (/v1/blocks,
// /v1/blocks/summaries, /v1/blocks/txids).
type blockRange struct {
	from    uint64
	hasFrom bool
	limit   int
}

// parseBlockRange reads ?from=H&limit=N: limit from 1 to max (def when
// absent), from a height (absent: hasFrom is false).
func parseBlockRange(r *http.Request, def, max int) (blockRange, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return blockRange{}, apiErr(codeBadRequest, "query: %v", err)
	}
	br := blockRange{limit: def}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > max {
			return blockRange{}, apiErr(codeBadRequest, "limit must be an integer from 1 to %d, got %q", max, q.Get("limit"))
		}
		br.limit = n
	}
	if q.Has("from") {
		if br.from, err = strconv.ParseUint(q.Get("from"), 10, 64); err != nil {
			return blockRange{}, apiErr(codeBadRequest, "from must be a block height, got %q", q.Get("from"))
		}
		br.hasFrom = true
	}
	return br, nil
}

// newestFrom is where a list without from starts: the newest limit blocks.
func (br blockRange) newestFrom(height uint64) uint64 {
	if br.hasFrom {
		return br.from
	}
	if height >= uint64(br.limit) {
		return height + 1 - uint64(br.limit)
	}
	return 0
}

// pageBlocks writes the main chain's blocks from `from`, at most limit,
// each as item(b), ascending, in one page bounded by Limits.MaxPageBytes:
// a count alone does not bound the answer (a block of 20,000 transactions
// is megabytes). Blocks are read a few at a time; when the page is full,
// X-Next-From says where the next one starts. page is the empty page.
func (s *server) pageBlocks(w http.ResponseWriter, page *pageWriter, from uint64, limit int, item func(*chain.Block) any) error {
	next, left := from, limit
	for left > 0 {
		n := min(left, blockchainChunk)
		chunk, err := s.b.Blocks(next, n)
		if err != nil {
			return err
		}
		for _, b := range chunk {
			ok, err := page.add(item(b))
			if err != nil {
				return err
			}
			if !ok {
				w.Header().Set(headerNextFrom, strconv.FormatUint(next, 10))
				page.write(w)
				return nil
			}
			next++
			left--
		}
		if len(chunk) < n {
			break // the head
		}
	}
	page.write(w)
	return nil
}
