package chainmgr

import (
	"errors"
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
	if v.Cached(&tx) {
		t.Fatal("cached before verified")
	}
	if err := verify(&tx); err != nil {
		t.Fatal(err)
	}
	if !v.Cached(&tx) {
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
	if v.Cached(&swapped) {
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
	if _, ok := keyOf(chain.Hash{}, chain.Signature{}); ok {
		t.Error("keyOf accepted a missing signature")
	}
}

// batchTxs signs n transfers from 8 keys on chain "c".
func batchTxs(t testing.TB, n int) []chain.Transaction {
	keys := make([]*keystore.Key, 8)
	for i := range keys {
		keys[i], _ = keystore.Generate()
	}
	txs := make([]chain.Transaction, n)
	for i := range txs {
		k := keys[i%len(keys)]
		txs[i] = chain.Transaction{Type: chain.TxTransfer, ChainID: "c", To: keys[(i+1)%len(keys)].Address(), Amount: 1, Nonce: uint64(i/len(keys) + 1)}
		k.SignTx(&txs[i])
	}
	return txs
}

// breakSig makes tx's signature a well-formed one that does not verify.
func breakSig(tx *chain.Transaction) {
	if tx.Signature[63] != 0 {
		tx.Signature[63] = 0
	} else {
		tx.Signature[63] = 1
	}
}

// TestVerifierBatch: VerifyTxs sets an error at each bad index only,
// caches the good ones, and skips what the caller already refused.
func TestVerifierBatch(t *testing.T) {
	v := NewVerifier("c", 0)
	txs := batchTxs(t, 200)
	breakSig(&txs[3])
	breakSig(&txs[150])
	errs := make([]error, len(txs))
	skipped := &chain.RuleError{Code: "skip"}
	errs[10] = skipped
	v.VerifyTxs(txs, errs)
	for i, err := range errs {
		switch i {
		case 3, 150:
			if chain.CodeOf(err) != chain.ErrBadSignature.Code {
				t.Errorf("tx %d: %v, want bad_signature", i, err)
			}
			if v.Cached(&txs[i]) {
				t.Errorf("tx %d: a bad signature was cached", i)
			}
		case 10:
			if err != skipped || v.Cached(&txs[i]) {
				t.Errorf("tx 10: refused before, yet verified (%v)", err)
			}
		default:
			if err != nil || !v.Cached(&txs[i]) {
				t.Errorf("tx %d: err %v, cached %v", i, err, v.Cached(&txs[i]))
			}
		}
	}
}

// TestVerifierCheckBlockTxs: the block check names the lowest bad index,
// skips signatures cached at admission, and caches what it verified.
func TestVerifierCheckBlockTxs(t *testing.T) {
	g := chain.DefaultGenesis()
	g.ChainID = "c"
	v := NewVerifier("c", 0)
	txs := batchTxs(t, 300)
	breakSig(&txs[250])
	breakSig(&txs[77])
	err := v.CheckBlockTxs(g, &chain.Block{Transactions: txs})
	var te *chain.BlockTxError
	if !errors.As(err, &te) || te.Index != 77 || chain.CodeOf(err) != chain.ErrBadSignature.Code {
		t.Fatalf("err = %v, want bad_signature at index 77", err)
	}
	// A planted cache entry for the bad one at 77 is trusted (the pool
	// verified it): the next bad index is named.
	k, _ := keyOf(txs[77].ID(), txs[77].Signature)
	v.cache.add(k)
	err = v.CheckBlockTxs(g, &chain.Block{Transactions: txs})
	if !errors.As(err, &te) || te.Index != 250 {
		t.Fatalf("err = %v, want index 250", err)
	}
	good := batchTxs(t, 100)
	if err := v.CheckBlockTxs(g, &chain.Block{Transactions: good}); err != nil {
		t.Fatal(err)
	}
	for i := range good {
		if !v.Cached(&good[i]) {
			t.Fatalf("tx %d of a valid block was not cached", i)
		}
	}
}

// TestCheckBlockTxsCachedIDs: the signature cache is keyed by each
// transaction's cached id, and a block that comes off the wire hashes its
// transactions afresh: a transaction changed after signing is found and
// named by its index even by a verifier that cached the original.
func TestCheckBlockTxsCachedIDs(t *testing.T) {
	k, _ := keystore.Generate()
	g := &chain.Genesis{ChainID: "c"}
	txs := make([]chain.Transaction, 5)
	for i := range txs {
		txs[i] = chain.Transaction{Type: chain.TxExchange, ChainID: "c", To: k.Address(), Amount: 1, Nonce: uint64(i + 1)}
		k.SignTx(&txs[i])
	}
	v := NewVerifier("c", 0)
	good := &chain.Block{Transactions: txs}
	if err := v.CheckBlockTxs(g, good); err != nil {
		t.Fatal(err)
	}
	for i := range txs {
		if !v.Cached(&txs[i]) {
			t.Fatalf("tx %d not cached under its id", i)
		}
	}
	bad := &chain.Block{Transactions: append([]chain.Transaction(nil), txs...)}
	bad.Transactions[3].Amount = 7 // signature no longer matches; cache left stale
	wire, err := chain.DecodeBlock(chain.EncodeBlock(bad))
	if err != nil {
		t.Fatal(err)
	}
	for name, ver := range map[string]*Verifier{"fresh verifier": NewVerifier("c", 0), "verifier that cached the original": v} {
		err := ver.CheckBlockTxs(g, wire)
		var te *chain.BlockTxError
		if !errors.As(err, &te) || te.Index != 3 || chain.CodeOf(err) != chain.ErrBadSignature.Code {
			t.Fatalf("%s: bad signature at 3: %v", name, err)
		}
	}
}

// TestSharedSigCache: Verifiers sharing a SigCache (posd devnet's nodes)
// skip what any of them verified, refuse what none verified, keep each its
// own chain id for the stateless rules, and never share a bad signature.
func TestSharedSigCache(t *testing.T) {
	k, _ := keystore.Generate()
	sigs := NewSigCache(0)
	a, b := NewSharingVerifier("c", sigs), NewSharingVerifier("c", sigs)
	own := NewVerifier("c", 0)
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: "c", To: k.Address(), Amount: 1, Nonce: 1}
	k.SignTx(&tx)
	bad := tx
	bad.Amount = 2 // the signature no longer matches
	bad.CacheID()
	txs := []chain.Transaction{tx, bad}
	errs := make([]error, 2)
	a.VerifyTxs(txs, errs)
	if errs[0] != nil || chain.CodeOf(errs[1]) != chain.ErrBadSignature.Code {
		t.Fatalf("verify: %v", errs)
	}
	if !b.Cached(&tx) {
		t.Error("b does not see the signature a verified")
	}
	if b.Cached(&bad) || a.Cached(&bad) {
		t.Error("a bad signature was shared")
	}
	if own.Cached(&tx) {
		t.Error("a Verifier with its own cache sees another's signatures")
	}
	other := NewSharingVerifier("other", sigs)
	if err := other.TxVerifier()(&tx); chain.CodeOf(err) != chain.ErrWrongChain.Code {
		t.Errorf("a sharing Verifier of another chain took the transaction: %v", err)
	}
}
