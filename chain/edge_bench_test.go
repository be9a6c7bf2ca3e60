package chain

import (
	"encoding/json"
	"testing"
)

// BenchmarkTxFromJSON is a transaction's way in from the API, one at a
// time: JSON decoding, then the stateless rules and the signature. Where
// the key and signature are bytes, their hex is decoded once, here.
func BenchmarkTxFromJSON(b *testing.B) {
	tx := signedTx(TxTransfer, "alice", testAddr("bob"), 5, 1, 1)
	data, err := json.Marshal(tx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var got Transaction
		if err := json.Unmarshal(data, &got); err != nil {
			b.Fatal(err)
		}
		if err := got.Validate(testChainID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTxFromBinary is the same from the binary codec (gossip, the
// binary batch): decoding, the stateless rules and the signature.
func BenchmarkTxFromBinary(b *testing.B) {
	tx := signedTx(TxTransfer, "alice", testAddr("bob"), 5, 1, 1)
	data := EncodeTx(&tx)
	b.ReportAllocs()
	for b.Loop() {
		got, err := DecodeTx(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := got.Validate(testChainID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckStateless1000 is the stateless rules of 1000 transfers
// without their signatures: what a block's check costs per transaction
// when the pool verified its signatures already.
func BenchmarkCheckStateless1000(b *testing.B) {
	txs := make([]Transaction, 1000)
	for i := range txs {
		txs[i] = signedTx(TxTransfer, "alice", testAddr("bob"), 5, 1, uint64(i+1))
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range txs {
			if err := txs[i].CheckStateless(testChainID); err != nil {
				b.Fatal(err)
			}
		}
	}
}
