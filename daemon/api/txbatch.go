package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// isBinaryBatch reports whether r carries a binary transaction batch
// (Content-Type: application/octet-stream).
func isBinaryBatch(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == rpc.ContentTypeTxBatch
}

// postTxsBinary is POST /v1/txs with a binary batch (rpc.EncodeTxBatch;
// docs/API.md): the lean path for wallets and load generators. It skips
// JSON on the way in; the answer is the JSON batch answer, one result per
// transaction. A malformed body is 400 bad_request, a batch over the
// limit 413 payload_too_large, and nothing is admitted.
func (s *server) postTxsBinary(w http.ResponseWriter, r *http.Request) error {
	data, err := s.readBody(r)
	if err != nil {
		return err
	}
	limit := s.batchLimit()
	txs, err := rpc.DecodeTxBatch(data, limit)
	switch {
	case errors.Is(err, rpc.ErrTxBatchTooLarge):
		return apiErr(codePayloadTooLarge, "%v", err)
	case err != nil:
		return apiErr(codeBadRequest, "binary transaction batch: %v", err)
	}
	out := make([]rpc.SubmitResult, len(txs))
	if len(txs) > 0 {
		ids, errs := s.b.SubmitTxs(txs)
		if len(ids) != len(txs) || len(errs) != len(txs) {
			return fmt.Errorf("backend SubmitTxs answered %d ids and %d errors for %d transactions", len(ids), len(errs), len(txs))
		}
		for i := range txs {
			id := ids[i]
			if errs[i] != nil {
				if id == (chain.Hash{}) {
					id = txs[i].ID()
				}
				_, e := s.errorOf(r, errs[i])
				out[i] = rpc.SubmitResult{ID: &id, Error: e}
				continue
			}
			out[i] = rpc.SubmitResult{ID: &id, Status: rpc.TxPending}
		}
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// blockTxIDs is GET /v1/blocks/txids?from=H&limit=N: the main chain's
// blocks from height H (the newest N without from), each as its height,
// hash, parent and transaction ids: what a client watching for its
// commits needs, at a tenth of the bytes of GET /v1/blocks.
func (s *server) blockTxIDs(w http.ResponseWriter, r *http.Request) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return apiErr(codeBadRequest, "query: %v", err)
	}
	limit := defaultBlocksLimit
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > maxBlocksLimit {
			return apiErr(codeBadRequest, "limit must be an integer from 1 to %d, got %q", maxBlocksLimit, q.Get("limit"))
		}
		limit = n
	}
	var from uint64
	if q.Has("from") {
		from, err = strconv.ParseUint(q.Get("from"), 10, 64)
		if err != nil {
			return apiErr(codeBadRequest, "from must be a block height, got %q", q.Get("from"))
		}
	} else if h := s.b.Height(); h >= uint64(limit) {
		from = h + 1 - uint64(limit)
	}
	// Paged by bytes like GET /v1/blocks: a block of 20,000 transactions
	// is 1.3 MB of ids, so a count alone does not bound the answer.
	page := newPage(s.limits.MaxPageBytes)
	next, left := from, limit
	for left > 0 {
		n := min(left, blockchainChunk)
		chunk, err := s.b.Blocks(next, n)
		if err != nil {
			return err
		}
		for _, b := range chunk {
			ids := make([]chain.Hash, len(b.Transactions))
			for j := range b.Transactions {
				ids[j] = b.Transactions[j].ID()
			}
			ok, err := page.add(rpc.BlockTxIDs{Height: b.Height, Hash: b.Hash(), PrevHash: b.PrevHash, TxIDs: ids})
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
