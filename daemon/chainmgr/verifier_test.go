package chainmgr

import (
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/keystore"
)

// TestVerifier: a cached signature is one that verified for the same id;
// any other signature for that id is verified; stateless rules always run.
func TestVerifier(t *testing.T) {
	k, _ := keystore.Generate()
	v := NewVerifier("c", 0)
	verify := v.TxVerifier()
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: "c", To: k.Address(), Amount: 1, Nonce: 1}
	k.SignTx(&tx)
	if v.cached(&tx) {
		t.Fatal("cached before verified")
	}
	if err := verify(&tx); err != nil {
		t.Fatal(err)
	}
	if !v.cached(&tx) {
		t.Fatal("a verified signature was not cached")
	}
	other := tx
	other.Amount = 2
	k.SignTx(&other)
	swapped := tx
	swapped.Signature = other.Signature // same id, a real signature over other bytes
	if err := verify(&swapped); chain.CodeOf(err) != chain.ErrBadSignature.Code {
		t.Fatalf("swapped signature: %v", err)
	}
	if v.cached(&swapped) {
		t.Fatal("a bad signature was cached")
	}
	// A planted entry really skips the check: the cache is what is trusted.
	planted := tx
	planted.Nonce = 9 // signature now wrong
	kk, _ := keyOf(planted.ID(), planted.Signature)
	v.cache.add(kk)
	if err := verify(&planted); err != nil {
		t.Fatalf("planted entry verified anyway: %v", err)
	}
	wrongChain := tx
	wrongChain.ChainID = "other"
	k.SignTx(&wrongChain)
	v.VerifyTx(&wrongChain, wrongChain.ID())
	if err := verify(&wrongChain); chain.CodeOf(err) != chain.ErrWrongChain.Code {
		t.Fatalf("stateless rules skipped on a hit: %v", err)
	}
}

func TestSigCacheBounded(t *testing.T) {
	c := newSigCache(3)
	var keys []sigKey
	for i := range 10 {
		var k sigKey
		k.id[0] = byte(i)
		keys = append(keys, k)
		c.add(k)
		if (len(c.cur) + len(c.prev)) > 6 {
			t.Fatalf("after %d adds the cache holds %d, more than 2·3", i+1, (len(c.cur) + len(c.prev)))
		}
	}
	// Generations of 3: the last 3 keys are always there, older ones go.
	for i, k := range keys {
		if i >= 7 && !c.has(k) {
			t.Errorf("recent key %d evicted", i)
		}
		if i < 6 && c.has(k) {
			t.Errorf("old key %d kept", i)
		}
	}
	// The same id with another signature is another key.
	k := keys[9]
	k.sig[0] = 1
	if c.has(k) {
		t.Error("a different signature hit")
	}
	if _, ok := keyOf(chain.Hash{}, "zz"); ok {
		t.Error("keyOf accepted a short signature")
	}
	if _, ok := keyOf(chain.Hash{}, strings.Repeat("g", 128)); ok {
		t.Error("keyOf accepted non-hex")
	}
}
