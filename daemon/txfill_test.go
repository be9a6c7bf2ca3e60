package daemon

import (
	"testing"
	"time"

	"github.com/poslab/posd/chain"
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
		return forger.Account(k.Address()).Balance == 1000 && entry.Account(k.Address()).Balance == 1000
	})

	const quiet = 200
	first := entry.Account(k.Address()).Nonce + 1
	txs := make([]chain.Transaction, quiet+1)
	for i := range txs {
		txs[i] = chain.Transaction{Type: chain.TxTransfer, ChainID: entry.g.ChainID, To: to.Address(), Amount: 1, Nonce: first + uint64(i)}
		k.SignTx(&txs[i])
	}
	errs, ready := entry.pool.AdmitNewest(txs[:quiet], nil, newestView(entry.chain)) // no gossip
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(ready) != quiet {
		t.Fatalf("%d of %d pending at the entry node", len(ready), quiet)
	}
	time.Sleep(300 * time.Millisecond)
	if got := forger.Account(to.Address()).Balance; got != 0 {
		t.Fatalf("the forger committed %d before any gossip", got)
	}
	if _, err := entry.SubmitTx(txs[quiet]); err != nil { // gossiped: a gap at the forger
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "all 201 committed", func() bool {
		return forger.Account(to.Address()).Balance == quiet+1 && entry.Account(to.Address()).Balance == quiet+1
	})
}
