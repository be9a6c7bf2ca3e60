package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// isBinaryBatch reports whether r carries a binary transaction batch
// (Content-Type: application/octet-stream).
func isBinaryBatch(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == rpc.ContentTypeTxBatch
}

// acceptsBinary reports whether r's Accept headers name
// application/octet-stream (not with q=0): the client reads binary
// answers. The answer varies with Accept, and says so.
func acceptsBinary(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Accept")
	for _, line := range r.Header.Values("Accept") {
		for _, part := range strings.Split(line, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != rpc.ContentTypeTxBatch {
				continue
			}
			if q, ok := params["q"]; ok {
				if v, err := strconv.ParseFloat(q, 64); err != nil || v <= 0 {
					continue // refused, or unreadable
				}
			}
			return true
		}
	}
	return false
}

// postTxsBinary is POST /v1/txs with a binary batch (rpc.EncodeTxBatch;
// docs/API.md): the lean path for wallets and load generators. It skips
// JSON on the way in; the answer is the JSON batch answer, one result per
// transaction, or its binary form (rpc.EncodeTxResults) when the request
// accepts application/octet-stream. A malformed body is 400 bad_request, a batch over the
// limit 413 payload_too_large, and nothing is admitted. A transaction
// whose public key or signature is not the lowercase hex of its size gets
// its rule code in its result (bad_public_key, bad_signature), as before
// those fields were bytes.
func (s *server) postTxsBinary(w http.ResponseWriter, r *http.Request) error {
	data, err := s.readBody(r)
	if err != nil {
		return err
	}
	limit := s.batchLimit()
	all, refused, err := rpc.DecodeTxBatchEach(data, limit)
	switch {
	case errors.Is(err, rpc.ErrTxBatchTooLarge):
		return apiErr(codePayloadTooLarge, "%v", err)
	case err != nil:
		return apiErr(codeBadRequest, "binary transaction batch: %v", err)
	}
	// A transaction whose key or signature is not the lowercase hex of its
	// size is refused alone, with its rule code and no id, as the pool
	// refused it when those fields were text.
	out := make([]rpc.SubmitResult, len(all))
	txs, at := all, []int(nil)
	if refused != nil {
		txs = make([]chain.Transaction, 0, len(all))
		for i := range all {
			if refused[i] != nil {
				_, e := s.errorOf(r, refused[i])
				out[i] = rpc.SubmitResult{Error: e}
				continue
			}
			txs = append(txs, all[i])
			at = append(at, i)
		}
	}
	if len(txs) > 0 {
		ids, errs := s.b.SubmitTxs(txs)
		if len(ids) != len(txs) || len(errs) != len(txs) {
			return fmt.Errorf("backend SubmitTxs answered %d ids and %d errors for %d transactions", len(ids), len(errs), len(txs))
		}
		for j := range txs {
			i := j
			if at != nil {
				i = at[j]
			}
			id := ids[j]
			if errs[j] != nil {
				if id == (chain.Hash{}) {
					id = txs[j].ID()
				}
				_, e := s.errorOf(r, errs[j])
				out[i] = rpc.SubmitResult{ID: &id, Error: e}
				continue
			}
			out[i] = rpc.SubmitResult{ID: &id, Status: rpc.TxPending}
		}
	}
	if acceptsBinary(w, r) {
		h := w.Header()
		h.Set("Content-Type", rpc.ContentTypeTxBatch)
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(rpc.EncodeTxResults(out))
		return nil
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// blockTxIDs is GET /v1/blocks/txids?from=H&limit=N: the main chain's
// blocks from height H (the newest N without from), each as its height,
// hash, parent and transaction ids: what a client watching for its
// commits needs, at a tenth of the bytes of GET /v1/blocks. With Accept
// application/octet-stream the page is binary (rpc.DecodeBlockTxIDsPage).
func (s *server) blockTxIDs(w http.ResponseWriter, r *http.Request) error {
	br, err := parseBlockRange(r, defaultBlocksLimit, maxBlocksLimit)
	if err != nil {
		return err
	}
	page := newPage(s.limits.MaxPageBytes)
	if acceptsBinary(w, r) {
		page = newBinaryPage(s.limits.MaxPageBytes, rpc.BlockTxIDsPageVersion)
	}
	return s.pageBlocks(w, page, br.newestFrom(s.b.Height()), br.limit, func(b *chain.Block) any {
		ids := make([]chain.Hash, len(b.Transactions))
		for j := range b.Transactions {
			ids[j] = b.Transactions[j].ID()
		}
		return rpc.BlockTxIDs{Height: b.Height, Hash: b.Hash(), PrevHash: b.PrevHash, TxIDs: ids}
	})
}
