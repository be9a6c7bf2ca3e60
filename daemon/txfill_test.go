package daemon

import (
	"fmt"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/daemon/p2p"
	"github.com/poslab/posd/keystore"
)

// TestGapFillBetweenNodes: the forger missed the gossip of a sender's
// first 200 transfers (they went into the entry node's pool without a
// message, as when a message is lost); the 201st reaches it with a gap,
// it asks the entry node for the rest, and all 201 commit. The
// rebroadcast is out of play (an hour), so only gap filling can do it.
func TestGapFillBetweenNodes(t *testing.T) {
	oldEvery, oldSlots := rebroadcastEvery, rebroadcastSlots
	rebroadcastEvery, rebroadcastSlots = time.Hour, 1<<20
	t.Cleanup(func() { rebroadcastEvery, rebroadcastSlots = oldEvery, oldSlots })
	d := startNet(t, []uint64{1, 0}, nil)
	waitPeers(t, d, 1)
	forger, entry := d.Nodes[0], d.Nodes[1]

	k, _ := keystore.Generate()
	to, _ := keystore.Generate()
	sendFrom(t, entry, k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 1000})
	waitUntil(t, 30*time.Second, "the sender funded on both nodes", func() bool {
		return forger.API().Account(k.Address()).Balance == 1000 && entry.API().Account(k.Address()).Balance == 1000
	})

	const quiet = 200
	first := entry.API().Account(k.Address()).Nonce + 1
	txs := make([]chain.Transaction, quiet+1)
	for i := range txs {
		txs[i] = chain.Transaction{Type: chain.TxTransfer, ChainID: entry.g.ChainID, To: to.Address(), Amount: 1, Nonce: first + uint64(i)}
		k.SignTx(&txs[i])
	}
	errs, ready := entry.pool.AdmitNewest(txs[:quiet], newestView(entry.chain)) // no gossip
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(ready) != quiet {
		t.Fatalf("%d of %d pending at the entry node", len(ready), quiet)
	}
	time.Sleep(300 * time.Millisecond)
	if got := forger.API().Account(to.Address()).Balance; got != 0 {
		t.Fatalf("the forger committed %d before any gossip", got)
	}
	if _, err := entry.API().SubmitTx(txs[quiet]); err != nil { // gossiped: a gap at the forger
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "all 201 committed", func() bool {
		return forger.API().Account(to.Address()).Balance == quiet+1 && entry.API().Account(to.Address()).Balance == quiet+1
	})
}

// TestGapSignalNeedsASignature: a transaction the pool refuses for a
// gap too wide before any signature check shows a gap only when its
// signature verifies; with a bad one the message is rejected and no
// gap is reported (else any peer could send this node asking for
// made-up runs of any funded sender).
func TestGapSignalNeedsASignature(t *testing.T) {
	d := startNet(t, []uint64{1}, nil)
	node := d.Nodes[0]
	h := node.p2pHandler()
	k, _ := keystore.Generate()
	to, _ := keystore.Generate()
	sendFrom(t, node, k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 1000})
	waitUntil(t, 30*time.Second, "the sender funded", func() bool { return node.API().Account(k.Address()).Balance == 1000 })

	far := func() chain.Transaction {
		tx := chain.Transaction{Type: chain.TxTransfer, ChainID: node.g.ChainID, To: to.Address(), Amount: 1,
			Nonce: node.API().Account(k.Address()).Nonce + 1 + 2*mempool.DefaultMaxNonceGap}
		k.SignTx(&tx)
		return tx
	}
	good := far()
	res, err := h.HandleTxsGaps([]chain.Transaction{good})
	if gaps := res.Gaps; err != nil || len(gaps) != 1 || gaps[0].From != k.Address() || res.Forward {
		t.Fatalf("a signed transaction with a wide gap: gaps %v, forward %v, err %v (want its gap, not forwarded)", gaps, res.Forward, err)
	}
	bad := far()
	bad.Signature = chain.Signature{63: 1}
	res, err = h.HandleTxsGaps([]chain.Transaction{bad})
	if gaps := res.Gaps; !p2p.IsReject(err) || len(gaps) != 0 {
		t.Fatalf("a bad signature with a wide gap: gaps %v, err %v (want a rejection, no gap)", res.Gaps, err)
	}
}

// A gossiped message travels on as it came only when the node checked
// every transaction of it (taken now, or a pooled copy), took one at
// least, and no more of them queued than executable.
func TestForwardable(t *testing.T) {
	known := &chain.RuleError{Code: mempool.ErrAlreadyKnown.Code, Message: "transaction x is already pooled"}
	for _, c := range []struct {
		name   string
		errs   []error
		queued int
		want   bool
	}{
		{"all executable", []error{nil, nil}, 0, true},
		{"half queued", []error{nil, nil}, 1, true},
		{"mostly queued", []error{nil, nil, nil}, 2, false},
		{"all queued", []error{nil}, 1, false},
		{"already_known, not a pooled copy (its signature unchecked)", []error{nil, known, nil}, 0, false},
		{"empty", nil, 0, false},
		{"a used nonce", []error{nil, chain.ErrBadNonce}, 0, false},
		{"a gap too wide", []error{nil, mempool.ErrNonceGap}, 0, false},
		{"a full pool", []error{nil, mempool.ErrPoolFull}, 0, false},
		{"wrapped refusal", []error{nil, fmt.Errorf("tx 1: %w", chain.ErrInsufficientFunds)}, 0, false},
	} {
		if got := forwardable(c.errs, c.queued); got != c.want {
			t.Errorf("%s: forwardable = %v, want %v", c.name, got, c.want)
		}
	}
}

// What a peer could slip into a message the node forwards as it came:
// a copy of a pooled transaction with a bad signature (its id leaves the
// signature out, so the pool answers already_known before any check),
// and one new transaction repeated (each copy but the first answered
// already_known). Neither message is forwarded; a message of new, good
// transactions is, and so is one with a true copy of a pooled one.
func TestForwardNeedsEveryTransactionChecked(t *testing.T) {
	d := startNet(t, []uint64{1}, nil)
	node := d.Nodes[0]
	h := node.p2pHandler()
	k, _ := keystore.Generate()
	k2, _ := keystore.Generate()
	to, _ := keystore.Generate()
	for _, key := range []*keystore.Key{k, k2} {
		sendFrom(t, node, key, chain.Transaction{Type: chain.TxExchange, To: key.Address(), Amount: 1000})
		waitUntil(t, 30*time.Second, "the sender funded", func() bool { return node.API().Account(key.Address()).Balance == 1000 })
	}
	transfer := func(key *keystore.Key, nonce uint64) chain.Transaction {
		tx := chain.Transaction{Type: chain.TxTransfer, ChainID: node.g.ChainID, To: to.Address(), Amount: 1, Fee: 1, Nonce: nonce}
		key.SignTx(&tx)
		return tx
	}
	base := node.API().Account(k.Address()).Nonce
	if res, err := h.HandleTxsGaps([]chain.Transaction{transfer(k, base+1)}); err != nil || !res.Forward {
		t.Fatalf("a new, good transaction: forward %v, err %v", res.Forward, err)
	}
	// Pooled for good: queued behind a gap of k2's, never committed here.
	pooled := transfer(k2, node.API().Account(k2.Address()).Nonce+2)
	if errs, _ := node.pool.AdmitNewest([]chain.Transaction{pooled}, newestView(node.chain)); errs[0] != nil {
		t.Fatal(errs[0])
	}
	forged := pooled
	forged.Signature = chain.Signature{63: 1}
	if res, err := h.HandleTxsGaps([]chain.Transaction{transfer(k, base+2), forged}); err != nil || res.Forward {
		t.Fatalf("a pooled transaction's copy with a bad signature: forward %v, err %v (want kept here)", res.Forward, err)
	}
	repeated := transfer(k, base+3)
	if res, err := h.HandleTxsGaps([]chain.Transaction{repeated, repeated, repeated}); err != nil || res.Forward {
		t.Fatalf("one transaction three times: forward %v, err %v (want kept here)", res.Forward, err)
	}
	// A pooled transaction's copy with its own signature was checked when
	// the pool took it: beside a new one, the message goes on.
	if res, err := h.HandleTxsGaps([]chain.Transaction{pooled, transfer(k, base+4)}); err != nil || !res.Forward {
		t.Fatalf("a pooled copy beside a new transaction: forward %v, err %v (want forwarded)", res.Forward, err)
	}
}
