package daemon

import (
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
	errs, ready := entry.pool.AdmitNewest(txs[:quiet], mempool.Local, newestView(entry.chain)) // no gossip
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
	_, gaps, err := h.HandleTxsGaps([]chain.Transaction{good}, true)
	if err != nil || len(gaps) != 1 || gaps[0].From != k.Address() {
		t.Fatalf("a signed transaction with a wide gap: gaps %v, err %v", gaps, err)
	}
	bad := far()
	bad.Signature = chain.Signature{63: 1}
	_, gaps, err = h.HandleTxsGaps([]chain.Transaction{bad}, true)
	if !p2p.IsReject(err) || len(gaps) != 0 {
		t.Fatalf("a bad signature with a wide gap: gaps %v, err %v (want a rejection, no gap)", gaps, err)
	}
}
