package p2p

import (
	"testing"

	"github.com/poslab/posd/chain"
)

// TestSameTxs: a message is forwarded as it came only when the pool took
// exactly its transactions. A refused copy of a promoted transaction (its
// signature, another field changed) must not pass for it: forwarding it
// would get this node penalised by every peer that checks the signature.
func TestSameTxs(t *testing.T) {
	promoted := chain.Transaction{Type: chain.TxTransfer, From: "a", To: "b", Amount: 5, Nonce: 2, Signature: chain.Signature{2}}
	x := chain.Transaction{Type: chain.TxTransfer, From: "a", To: "b", Amount: 1, Nonce: 1, Signature: chain.Signature{1}}
	forged := promoted
	forged.Amount = 500
	for _, tc := range []struct {
		name       string
		relay, msg []chain.Transaction
		want       bool
	}{
		{"the same, other order", []chain.Transaction{x, promoted}, []chain.Transaction{promoted, x}, true},
		{"a refused copy of a promoted transaction", []chain.Transaction{x, promoted}, []chain.Transaction{forged, x}, false},
		{"one missing", []chain.Transaction{x}, []chain.Transaction{x, promoted}, false},
		{"another transaction", []chain.Transaction{x, promoted}, []chain.Transaction{x, x}, false},
	} {
		if got := sameTxs(tc.relay, tc.msg); got != tc.want {
			t.Errorf("%s: sameTxs = %v, want %v", tc.name, got, tc.want)
		}
	}
}
