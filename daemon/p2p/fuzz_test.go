package p2p

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/poslab/posd/chain"
)

// FuzzDecodeStatus: the status handshake message never panics the
// decoder, and what decodes re-encodes to the same bytes.
func FuzzDecodeStatus(f *testing.F) {
	f.Add(status{genesis: chain.Hash{1}, height: 42, head: chain.Hash{2}}.encode())
	f.Add([]byte{statusVersion})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeStatus(data)
		if err != nil {
			return
		}
		if again := s.encode(); !bytes.Equal(again, data) {
			t.Fatalf("status round trip changed the bytes:\n%x\n%x", data, again)
		}
	})
}

// FuzzDecodeTxBatch: a gossiped transaction batch never panics the
// decoder, never yields more than maxBatchTxs transactions, and what
// decodes re-encodes to the same bytes.
func FuzzDecodeTxBatch(f *testing.F) {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	var txs []chain.Transaction
	for i := range 3 {
		tx := chain.Transaction{Type: chain.TxTransfer, ChainID: "fuzz", To: chain.Address("ab"), Amount: uint64(i + 1), Nonce: uint64(i + 1)}
		tx.Sign(k)
		txs = append(txs, tx)
	}
	one, _ := encodeTxBatch(txs[:1])
	three, _ := encodeTxBatch(txs)
	f.Add(one)
	f.Add(three)
	f.Add([]byte{0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeTxBatch(data)
		if err != nil {
			return
		}
		if len(got) == 0 || len(got) > maxBatchTxs {
			t.Fatalf("decoded %d transactions", len(got))
		}
		plain := make([]chain.Transaction, len(got))
		for i, tx := range got {
			plain[i] = *tx
		}
		if again, _ := encodeTxBatch(plain); !bytes.Equal(again, data) {
			t.Fatalf("batch round trip changed the bytes")
		}
	})
}
