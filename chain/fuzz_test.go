package chain

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeTx: the binary transaction codec (gossip batches, stored
// blocks) never panics, and whatever decodes re-encodes to the same bytes.
func FuzzDecodeTx(f *testing.F) {
	enc := func(tx Transaction) []byte { return EncodeTx(&tx) }
	f.Add(enc(signedTx(TxTransfer, "alice", testAddr("bob"), 5, 1, 1)))
	f.Add(enc(signedTx(TxStake, "alice", testAddr("alice"), 1, 0, 2)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := DecodeTx(data)
		if err != nil {
			return
		}
		if again := EncodeTx(tx); !bytes.Equal(again, data) {
			t.Fatalf("decode then encode changed the bytes:\n%x\n%x", data, again)
		}
		if err := tx.Validate(testChainID); err != nil && CodeOf(err) == "" {
			t.Fatalf("validation error without a code: %v", err)
		}
	})
}

// FuzzParseGenesis: genesis.json parsing never panics; an accepted genesis
// validates, and its JSON parses back to the same hash (what a joining node
// fetches is what the network runs).
func FuzzParseGenesis(f *testing.F) {
	g := DefaultGenesis()
	g.ChainID = "fuzz"
	g.Timestamp = 1_700_000_000_000
	g.Allocations = []Allocation{{Address: testAddr("alice"), Balance: 1000, Stake: 10}}
	data, _ := json.Marshal(g)
	f.Add(data)
	f.Add([]byte(`{"chain_id":"x","election":"weighted","slot_ms":1,"allocations":[]}`))
	f.Add([]byte(`{"exchange":["zz"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGenesis(data)
		if err != nil {
			return
		}
		if err := g.Validate(); err != nil {
			t.Fatalf("ParseGenesis accepted a genesis that does not validate: %v", err)
		}
		again, err := json.Marshal(g)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		g2, err := ParseGenesis(again)
		if err != nil {
			t.Fatalf("re-parse of its own JSON: %v\n%s", err, again)
		}
		if g2.Hash() != g.Hash() {
			t.Fatalf("hash changed on a JSON round trip")
		}
	})
}
