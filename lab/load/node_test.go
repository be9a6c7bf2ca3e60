package load

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/client"
)

// TestClientNodeTransport: ClientNode submits in the binary encoding and
// reads block ids without bodies; against a node without those routes it
// falls back to JSON and whole blocks.
func TestClientNodeTransport(t *testing.T) {
	g := newMemNode().g
	gen := g.Block()
	tx := chain.Transaction{Type: chain.TxTransfer, ChainID: g.ChainID, From: "a", To: "b", Amount: 1, Nonce: 1}
	b1 := chain.NewBlock(g, &gen.Header, 0, gen.Timestamp+1, []chain.Transaction{tx})
	for _, modern := range []bool{true, false} {
		var binary, json_, idsRoute, blocksRoute int
		mux := http.NewServeMux()
		mux.HandleFunc("POST /v1/txs", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			var txs []chain.Transaction
			if r.Header.Get("Content-Type") == rpc.ContentTypeTxBatch {
				if !modern {
					w.WriteHeader(400)
					json.NewEncoder(w).Encode(rpc.ErrorBody{Error: &rpc.Error{Code: "bad_json", Message: "invalid character"}})
					return
				}
				binary++
				txs, _ = rpc.DecodeTxBatch(body, 10)
			} else {
				json_++
				json.Unmarshal(body, &txs)
			}
			out := make([]rpc.SubmitResult, len(txs))
			for i := range txs {
				id := txs[i].ID()
				out[i] = rpc.SubmitResult{ID: &id, Status: rpc.TxPending}
			}
			json.NewEncoder(w).Encode(out)
		})
		mux.HandleFunc("GET /v1/blocks/txids", func(w http.ResponseWriter, r *http.Request) {
			if !modern {
				http.NotFound(w, r)
				return
			}
			idsRoute++
			json.NewEncoder(w).Encode([]rpc.BlockTxIDs{{Height: 1, Hash: b1.Hash(), PrevHash: b1.PrevHash, TxIDs: []chain.Hash{tx.ID()}}})
		})
		mux.HandleFunc("GET /v1/blocks", func(w http.ResponseWriter, r *http.Request) {
			blocksRoute++
			json.NewEncoder(w).Encode([]chain.Block{*b1})
		})
		srv := httptest.NewServer(mux)
		n := ClientNode{client.New(srv.URL)}
		ctx := context.Background()
		res, err := n.SubmitTxs(ctx, []chain.Transaction{tx, tx})
		if err != nil || len(res) != 2 || *res[0].ID != tx.ID() {
			t.Fatalf("modern %v: submit: %v %+v", modern, err, res)
		}
		from := uint64(1)
		ids, err := n.BlockTxIDs(ctx, &from, 5)
		if err != nil || len(ids) != 1 || ids[0].Hash != b1.Hash() || ids[0].PrevHash != gen.Hash() || len(ids[0].TxIDs) != 1 || ids[0].TxIDs[0] != tx.ID() {
			t.Fatalf("modern %v: ids: %v %+v", modern, err, ids)
		}
		if modern && (binary != 1 || json_ != 0 || idsRoute != 1 || blocksRoute != 0) {
			t.Errorf("modern node: %d binary, %d JSON posts, %d id reads, %d block reads", binary, json_, idsRoute, blocksRoute)
		}
		if !modern && (json_ != 1 || blocksRoute != 1) {
			t.Errorf("older node: %d JSON posts, %d block reads", json_, blocksRoute)
		}
		srv.Close()
	}
}
