package api

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/poslab/posd/chain"
)

// BenchmarkDashboardPage compares what a dashboard refresh downloads: the
// old page's newest 15 whole blocks against the newest 300 summaries, on a
// chain whose blocks hold 2,000 transactions each (the README's load).
func BenchmarkDashboardPage(b *testing.B) {
	f := newFake()
	tx := chain.Transaction{Type: chain.TxTransfer, ChainID: testChainID, From: alice, To: bob, Amount: 12345, Fee: 1, Nonce: 7,
		PublicKey: chain.PublicKey(bytes.Repeat([]byte{0xab}, 32)), Signature: chain.Signature(bytes.Repeat([]byte{0xcd}, 64))}
	body := make([]chain.Transaction, 2000)
	for i := range body {
		body[i] = tx
		body[i].Nonce = uint64(i + 1)
	}
	for _, blk := range f.blocks[len(f.blocks)-300:] {
		blk.Transactions = body
	}
	h := newTestHandler(f)
	for _, tc := range []struct{ name, path string }{
		{"blocks-15", "/v1/blocks?limit=15"},
		{"summaries-300", "/v1/blocks/summaries?limit=300"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", tc.path, nil))
				if w.Code != 200 {
					b.Fatalf("%s: %d", tc.path, w.Code)
				}
				n = w.Body.Len()
			}
			b.ReportMetric(float64(n), "bytes/page")
		})
	}
}
