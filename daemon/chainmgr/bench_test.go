package chainmgr

import (
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/keystore"
)

// BenchmarkVerifierCached1000 checks a block of 1000 transactions whose
// signatures the Verifier checked before (at pool admission).
func BenchmarkVerifierCached1000(b *testing.B) {
	g := chain.DefaultGenesis()
	g.ChainID = "bench"
	keys := make([]*keystore.Key, 250)
	for i := range keys {
		keys[i], _ = keystore.Generate()
	}
	txs := make([]chain.Transaction, 1000)
	for i := range txs {
		k := keys[i%len(keys)]
		txs[i] = chain.Transaction{Type: chain.TxTransfer, ChainID: g.ChainID, To: keys[(i+1)%len(keys)].Address(), Amount: 1, Nonce: uint64(i/len(keys) + 1)}
		k.SignTx(&txs[i])
	}
	v := NewVerifier(g.ChainID, 0)
	verify := v.TxVerifier()
	blk := &chain.Block{Transactions: txs}
	if err := chain.CheckBlockTxs(g, blk, verify); err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		if err := chain.CheckBlockTxs(g, blk, verify); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*len(txs))/b.Elapsed().Seconds(), "tx/s")
}
