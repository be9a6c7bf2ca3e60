package chain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
)

const testChainID = "posd-test"

// testKey derives a deterministic key from a name, so vectors stay stable.
func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("posd test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func testAddr(name string) Address {
	return AddressOf(testKey(name).Public().(ed25519.PublicKey))
}

// testGenesis funds alice, bob and carol; alice alone stakes, unless stakers says otherwise.
func testGenesis(t testing.TB, mutate ...func(*Genesis)) *Genesis {
	t.Helper()
	g := DefaultGenesis()
	g.ChainID = testChainID
	g.Timestamp = 1_700_000_000_000
	g.Allocations = []Allocation{
		{Address: testAddr("alice"), Balance: 1000, Stake: 10},
		{Address: testAddr("bob"), Balance: 500},
		{Address: testAddr("carol"), Balance: 100},
	}
	for _, m := range mutate {
		m(g)
	}
	if err := g.Validate(); err != nil {
		t.Fatalf("test genesis invalid: %v", err)
	}
	return g
}

// signedTx builds and signs a transaction from the named key.
func signedTx(typ TxType, from string, to Address, amount, fee, nonce uint64) Transaction {
	tx := Transaction{Type: typ, ChainID: testChainID, To: to, Amount: amount, Fee: fee, Nonce: nonce}
	tx.Sign(testKey(from))
	return tx
}

// keyOf finds the test key whose address is a.
func keyOf(t testing.TB, a Address) ed25519.PrivateKey {
	t.Helper()
	for _, n := range []string{"alice", "bob", "carol", "dave", "erin"} {
		if testAddr(n) == a {
			return testKey(n)
		}
	}
	t.Fatalf("no test key for %s", a)
	return nil
}
