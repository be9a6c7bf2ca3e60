package p2p

import (
	"testing"

	"github.com/poslab/posd/chain"
)

// TestRelayBeyond: a message is forwarded as it came only when the pool
// took every one of its transactions; what it promoted besides is
// returned, to go out as a new message. A refused copy of a promoted
// transaction (its signature, another field changed) must not pass for
// it: forwarding it would get this node penalised by every peer that
// checks the signature.
func TestRelayBeyond(t *testing.T) {
	promoted := chain.Transaction{Type: chain.TxTransfer, From: "a", To: "b", Amount: 5, Nonce: 2, Signature: chain.Signature{2}}
	x := chain.Transaction{Type: chain.TxTransfer, From: "a", To: "b", Amount: 1, Nonce: 1, Signature: chain.Signature{1}}
	later := chain.Transaction{Type: chain.TxTransfer, From: "a", To: "b", Amount: 1, Nonce: 3, Signature: chain.Signature{3}}
	forged := promoted
	forged.Amount = 500
	for _, tc := range []struct {
		name       string
		relay, msg []chain.Transaction
		whole      bool
		extra      []chain.Transaction
	}{
		{"the same, other order", []chain.Transaction{x, promoted}, []chain.Transaction{promoted, x}, true, nil},
		{"the message and a later nonce it promoted", []chain.Transaction{x, promoted, later}, []chain.Transaction{promoted, x}, true, []chain.Transaction{later}},
		{"a refused copy of a promoted transaction", []chain.Transaction{x, promoted}, []chain.Transaction{forged, x}, false, nil},
		{"a refused copy, and another promoted", []chain.Transaction{x, promoted, later}, []chain.Transaction{forged, x}, false, nil},
		{"one missing", []chain.Transaction{x}, []chain.Transaction{x, promoted}, false, nil},
		{"one missing, another promoted", []chain.Transaction{x, later}, []chain.Transaction{x, promoted}, false, nil},
		{"another transaction", []chain.Transaction{x, promoted}, []chain.Transaction{x, x}, false, nil},
		{"a transaction twice in the message, relayed twice", []chain.Transaction{x, x}, []chain.Transaction{x, x}, true, nil},
		{"a transaction twice in the message, relayed once", []chain.Transaction{x}, []chain.Transaction{x, x}, false, nil},
	} {
		extra, whole := relayBeyond(tc.relay, tc.msg)
		if whole != tc.whole || len(extra) != len(tc.extra) {
			t.Errorf("%s: relayBeyond = %v, %d extra; want %v, %d", tc.name, whole, len(extra), tc.whole, len(tc.extra))
			continue
		}
		for i := range extra {
			if extra[i] != tc.extra[i] {
				t.Errorf("%s: extra %d is nonce %d, want %d", tc.name, i, extra[i].Nonce, tc.extra[i].Nonce)
			}
		}
	}
}
