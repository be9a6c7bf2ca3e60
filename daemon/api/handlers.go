package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

func (s *server) status(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, r, http.StatusOK, s.b.Status())
	return nil
}

func (s *server) account(w http.ResponseWriter, r *http.Request) error {
	addr, err := chain.ParseAddress(r.PathValue("addr"))
	if err != nil {
		return err // bad_address
	}
	s.writeJSON(w, r, http.StatusOK, s.b.Account(addr))
	return nil
}

// block is GET /v1/blocks/{height|hash}.
func (s *server) block(w http.ResponseWriter, r *http.Request) error {
	height, hash, byHash, err := parseBlockID(r.PathValue("id"))
	if err != nil {
		return err
	}
	var b *chain.Block
	if byHash {
		b, err = s.b.BlockByHash(hash)
	} else {
		b, err = s.b.BlockByHeight(height)
	}
	if err != nil {
		return err
	}
	if b == nil {
		return ErrNotFound
	}
	s.writeJSON(w, r, http.StatusOK, b)
	return nil
}

// parseBlockID reads a decimal height or a 64-hex block hash.
func parseBlockID(id string) (height uint64, hash chain.Hash, byHash bool, err error) {
	digits, hexOnly := id != "", id != ""
	for i := 0; i < len(id); i++ {
		c := id[i]
		isDigit := c >= '0' && c <= '9'
		digits = digits && isDigit
		hexOnly = hexOnly && (isDigit || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')
	}
	switch {
	case len(id) == 64 || hexOnly && !digits:
		hash, err = chain.ParseHash(id)
		if err != nil {
			return 0, hash, true, apiErr(codeBadHash, "block hash: %v", err)
		}
		return 0, hash, true, nil
	case digits:
		height, err = strconv.ParseUint(id, 10, 64)
		if err != nil {
			return 0, hash, false, apiErr(codeBadRequest, "height %s is out of range", id)
		}
		return height, hash, false, nil
	}
	return 0, hash, false, apiErr(codeBadRequest, "%q is neither a block height nor a 64-hex block hash", id)
}

func (s *server) tx(w http.ResponseWriter, r *http.Request) error {
	id, err := chain.ParseHash(r.PathValue("id"))
	if err != nil {
		return apiErr(codeBadHash, "transaction id: %v", err)
	}
	info, err := s.b.TxInfo(id)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, info)
	return nil
}

// postTxs is POST /v1/txs: one transaction or an array of them, or a
// binary batch (postTxsBinary).
func (s *server) postTxs(w http.ResponseWriter, r *http.Request) error {
	if isBinaryBatch(r) {
		return s.postTxsBinary(w, r)
	}
	data, err := s.readBody(r)
	if err != nil {
		return err
	}
	return s.submit(w, r, data)
}

// postTransaction is the original's POST /transaction: a bare transaction or
// {"transaction": {...}}, then as POST /v1/txs.
func (s *server) postTransaction(w http.ResponseWriter, r *http.Request) error {
	data, err := s.readBody(r)
	if err != nil {
		return err
	}
	if t := trimJSONSpace(data); len(t) > 0 && t[0] == '{' {
		var wrapper map[string]json.RawMessage
		if json.Unmarshal(t, &wrapper) == nil {
			if inner, ok := wrapper["transaction"]; ok {
				data = inner
			}
		}
	}
	return s.submit(w, r, data)
}

// submit decodes and submits one transaction (202) or a batch (200).
func (s *server) submit(w http.ResponseWriter, r *http.Request, data []byte) error {
	data = trimJSONSpace(data)
	if len(data) > 0 && data[0] == '[' {
		return s.submitBatch(w, r, data)
	}
	tx, err := decodeTx(data)
	if err != nil {
		return err
	}
	id, err := s.b.SubmitTx(tx)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusAccepted, rpc.SubmitResult{ID: &id, Status: rpc.TxPending})
	return nil
}

// submitBatch decodes every item first (a malformed item fails the request
// with 400), then answers per item what the pool said.
func (s *server) submitBatch(w http.ResponseWriter, r *http.Request, data []byte) error {
	var items []json.RawMessage
	if err := decodeJSON(data, &items); err != nil {
		return err
	}
	if limit := s.batchLimit(); len(items) > limit {
		return apiErr(codePayloadTooLarge, "batch of %d transactions, the limit is %d", len(items), limit)
	}
	txs := make([]chain.Transaction, len(items))
	for i, item := range items {
		tx, err := decodeTxItem(item)
		if err != nil {
			var re *chain.RuleError
			if errors.As(err, &re) {
				return apiErr(string(re.Code), "transaction %d: %s", i, re.Message)
			}
			return err
		}
		txs[i] = tx
	}
	out := make([]rpc.SubmitResult, len(txs))
	if len(txs) > 0 {
		ids, errs := s.b.SubmitTxs(txs)
		if len(ids) != len(txs) || len(errs) != len(txs) {
			return fmt.Errorf("backend SubmitTxs answered %d ids and %d errors for %d transactions", len(ids), len(errs), len(txs))
		}
		for i := range txs {
			if errs[i] != nil {
				id := txs[i].ID()
				_, e := s.errorOf(r, errs[i])
				out[i] = rpc.SubmitResult{ID: &id, Error: e}
				continue
			}
			id := ids[i]
			out[i] = rpc.SubmitResult{ID: &id, Status: rpc.TxPending}
		}
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// jsonTx is a transaction without chain.Transaction's UnmarshalJSON, which
// decodes its object a second time (encoding/json hands a method the raw
// bytes it already scanned): a 1000-transfer JSON batch spent a third of
// its decoding there. decodeTx caches the id as that method does.
type jsonTx chain.Transaction

// decodeTx decodes one JSON transaction and caches its id.
func decodeTx(data []byte) (chain.Transaction, error) {
	var p jsonTx
	if err := decodeJSON(data, &p); err != nil {
		return chain.Transaction{}, err
	}
	tx := chain.Transaction(p)
	tx.CacheID()
	return tx, nil
}

// decodeTxItem is decodeTx for an item of a batch, which the batch's own
// decoding already checked is one well-formed JSON value: no second
// decoder, nothing after it to look for.
func decodeTxItem(item json.RawMessage) (chain.Transaction, error) {
	if bytes.Equal(item, []byte("null")) {
		return chain.Transaction{}, apiErr(codeBadJSON, "expected a JSON object, got null")
	}
	var p jsonTx
	if err := json.Unmarshal(item, &p); err != nil {
		return chain.Transaction{}, apiErr(codeBadJSON, "%v", err)
	}
	tx := chain.Transaction(p)
	tx.CacheID()
	return tx, nil
}

// batchLimit is Options.MaxBatch, else the genesis max_block_txs.
func (s *server) batchLimit() int {
	if s.maxBatch > 0 {
		return s.maxBatch
	}
	if g := s.b.Genesis(); g != nil && g.MaxBlockTxs > 0 {
		return g.MaxBlockTxs
	}
	return chain.DefaultMaxBlockTxs
}

func (s *server) config(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, r, http.StatusOK, s.b.Config())
	return nil
}

func (s *server) putConfig(w http.ResponseWriter, r *http.Request) error {
	var p rpc.ConfigPatch
	if err := s.readJSON(r, &p); err != nil {
		return err
	}
	c, err := s.b.SetConfig(p)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, c)
	return nil
}

func (s *server) postStake(w http.ResponseWriter, r *http.Request) error {
	var req rpc.StakeRequest
	if err := s.readJSON(r, &req); err != nil {
		return err
	}
	return s.stakeFromNode(w, r, req.Amount)
}

// stakeAmount is the original's GET /stakes/{amount} (admin here).
func (s *server) stakeAmount(w http.ResponseWriter, r *http.Request) error {
	amount, err := strconv.ParseUint(r.PathValue("amount"), 10, 64)
	if err != nil {
		return apiErr(codeBadRequest, "amount must be an unsigned integer, got %q", r.PathValue("amount"))
	}
	return s.stakeFromNode(w, r, amount)
}

func (s *server) stakeFromNode(w http.ResponseWriter, r *http.Request, amount uint64) error {
	id, err := s.b.StakeFromNode(amount)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusAccepted, rpc.SubmitResult{ID: &id, Status: rpc.TxPending})
	return nil
}

// poolLimit is the original's GET /pool/limit/{n}: set block_size (admin).
func (s *server) poolLimit(w http.ResponseWriter, r *http.Request) error {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil {
		return apiErr(codeBadRequest, "n must be an integer, got %q", r.PathValue("n"))
	}
	c, err := s.b.SetConfig(rpc.ConfigPatch{BlockSize: &n})
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, c)
	return nil
}

func (s *server) peers(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, r, http.StatusOK, nonNil(s.b.Peers()))
	return nil
}

func (s *server) genesis(w http.ResponseWriter, r *http.Request) error {
	g := s.b.Genesis()
	if g == nil {
		return apiErr(codeUnavailable, "the node has no genesis loaded")
	}
	s.writeJSON(w, r, http.StatusOK, g)
	return nil
}

func (s *server) pkey(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, r, http.StatusOK, s.b.NodeKey())
	return nil
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}
