package api

import (
	"encoding/json"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/testkit"
)

// BenchmarkDecodeTxBatch1000 decodes a JSON batch of 1000 transfers as
// POST /v1/txs does (the array, then each item), ids cached.
func BenchmarkDecodeTxBatch1000(b *testing.B) {
	txs := make([]chain.Transaction, 1000)
	for i := range txs {
		txs[i] = testkit.Transfer(testkit.Alice, bob, 1, 0, uint64(i+1))
	}
	data, err := json.Marshal(txs)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var items []json.RawMessage
		if err := decodeJSON(data, &items); err != nil {
			b.Fatal(err)
		}
		for i, item := range items {
			tx, err := decodeTxItem(item)
			if err != nil || tx.ID() != txs[i].ID() {
				b.Fatal("decoded another transaction", err)
			}
		}
	}
}

// TestDecodeTxCachesID: a transaction decoded from JSON carries the id
// of its fields, equal (with ==) to the signed original.
func TestDecodeTxCachesID(t *testing.T) {
	want := testkit.Transfer(testkit.Alice, bob, 7, 1, 3)
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeTx(data)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if _, err := decodeTx([]byte(`{"type": 5}`)); err == nil {
		t.Fatal("a malformed transaction decoded")
	}
}
