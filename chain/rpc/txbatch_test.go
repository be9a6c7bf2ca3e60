package rpc

import (
	"crypto/ed25519"
	"errors"
	"reflect"
	"testing"

	"github.com/poslab/posd/chain"
)

func sampleTxs() []chain.Transaction {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	var txs []chain.Transaction
	for i, typ := range []chain.TxType{chain.TxTransfer, chain.TxExchange, chain.TxStake} {
		tx := chain.Transaction{Type: typ, ChainID: "c", To: "00112233445566778899aabbccddeeff00112233", Amount: uint64(i + 1), Fee: 1 << 40, Nonce: uint64(i)}
		tx.Sign(priv)
		txs = append(txs, tx)
	}
	var empty chain.Transaction // empty fields travel as they are
	empty.CacheID()             // and decode with their id cached, as signed ones
	return append(txs, empty)
}

func TestTxBatchRoundTrip(t *testing.T) {
	for _, txs := range [][]chain.Transaction{nil, sampleTxs()} {
		got, err := DecodeTxBatch(EncodeTxBatch(txs), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(txs) || (len(txs) > 0 && !reflect.DeepEqual(got, txs)) {
			t.Fatalf("round trip: %+v, want %+v", got, txs)
		}
	}
	if _, err := DecodeTxBatch(EncodeTxBatch(sampleTxs()), 3); !errors.Is(err, ErrTxBatchTooLarge) {
		t.Errorf("4 transactions with a limit of 3: %v", err)
	}
	enc := EncodeTxBatch(sampleTxs())
	for cut := range len(enc) {
		if _, err := DecodeTxBatch(enc[:cut], 10); !errors.Is(err, chain.ErrDecode) {
			t.Fatalf("cut at %d: %v, want ErrDecode", cut, err)
		}
	}
}

// FuzzDecodeTxBatch: the decoder never panics, refuses only with its
// two kinds of error, and what it accepts survives a re-encoding.
func FuzzDecodeTxBatch(f *testing.F) {
	f.Add(EncodeTxBatch(sampleTxs()))
	f.Add(EncodeTxBatch(nil))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 1, 30})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, data []byte) {
		txs, err := DecodeTxBatch(data, 1000)
		if err != nil {
			if !errors.Is(err, chain.ErrDecode) && !errors.Is(err, ErrTxBatchTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		again, err := DecodeTxBatch(EncodeTxBatch(txs), 1000)
		if err != nil || len(again) != len(txs) || (len(txs) > 0 && !reflect.DeepEqual(again, txs)) {
			t.Fatalf("re-encoding changed the batch (%v)", err)
		}
	})
}
