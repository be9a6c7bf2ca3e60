package p2p

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
)

// TestRepublishReachesLateForger: A gossips a transaction while the forger
// C is away; C joins; publishing the same bytes again is dropped as seen
// (A's own cache), while RepublishTxs reaches C at once.
func TestRepublishReachesLateForger(t *testing.T) {
	ca, cb, cc := newFakeChain("g"), newFakeChain("g"), newFakeChain("g")
	nodes := line(t, []*fakeChain{ca, cb})
	a := nodes[0]
	a.PublishTxs([]chain.Transaction{tx(5)})
	waitFor(t, 10*time.Second, "tx 5 at B", func() bool { return cb.hasTx(5) })

	c := startNode(t, cc, nil, a)
	cID, err := peer.Decode(c.ID())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "C on A's tx topic", func() bool { return slices.Contains(a.txTopic.ListPeers(), cID) })

	a.PublishTxs([]chain.Transaction{tx(5)}) // the same bytes: dropped as seen
	flushed(t, a)
	a.PublishTxs([]chain.Transaction{tx(6)}) // a marker behind it, in order
	waitFor(t, 20*time.Second, "tx 6 at C", func() bool { return cc.hasTx(6) })
	if cc.hasTx(5) {
		t.Fatal("the same bytes got through: the seen cache no longer drops them, and this test no longer shows why RepublishTxs exists")
	}

	a.RepublishTxs([]chain.Transaction{tx(5)})
	waitFor(t, 20*time.Second, "tx 5 republished at C", func() bool { return cc.hasTx(5) })
}

func TestSaltedBatchCodec(t *testing.T) {
	txs := []chain.Transaction{tx(1), tx(2)}
	data, _ := encodeTxBatch(txs)
	salted := append(append(append([]byte(nil), data...), saltTag), 1, 2, 3, 4, 5, 6, 7, 8)
	got, err := decodeTxBatch(salted)
	if err != nil || len(got) != 2 || got[1].ID() != txs[1].ID() {
		t.Fatalf("salted batch: %v, %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"short salt":  append(append([]byte(nil), data...), saltTag, 1, 2),
		"long salt":   append(append([]byte(nil), data...), saltTag, 1, 2, 3, 4, 5, 6, 7, 8, 9),
		"wrong tag":   append(append([]byte(nil), data...), 0x00, 1, 2, 3, 4, 5, 6, 7, 8),
		"one trailer": append(append([]byte(nil), data...), 7),
	} {
		if _, err := decodeTxBatch(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
