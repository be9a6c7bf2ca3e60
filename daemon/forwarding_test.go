package daemon

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/p2p"
	"github.com/poslab/posd/keystore"
)

// spy is a peer that accepts whatever reaches it and remembers it.
type spy struct {
	genesis chain.Hash
	mu      sync.Mutex
	txs     map[chain.Hash]bool
	blocks  map[chain.Hash]bool
}

func (s *spy) GenesisHash() chain.Hash    { return s.genesis }
func (s *spy) Head() (uint64, chain.Hash) { return 0, chain.Hash{} }
func (s *spy) HandleTxs(txs []chain.Transaction) ([]chain.Transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range txs {
		s.txs[txs[i].ID()] = true
	}
	return txs, nil
}
func (s *spy) HandleBlock(b *chain.Block) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocks[b.Hash()] = true
	return nil
}
func (s *spy) Blocks(uint64, int) ([]*chain.Block, error) { return nil, nil }
func (s *spy) sawTx(id chain.Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.txs[id]
}
func (s *spy) sawBlock(h chain.Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocks[h]
}

func newSpyPeer(t *testing.T, n *Node) (*p2p.Node, *spy) {
	s := &spy{genesis: n.genesisHash, txs: map[chain.Hash]bool{}, blocks: map[chain.Hash]bool{}}
	peer, err := p2p.New(context.Background(), p2p.Config{ListenHost: "127.0.0.1", ChainID: n.g.ChainID, Peers: n.net.Addrs(), Logger: testLogger("spy")}, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	return peer, s
}

// TestInvalidMessagesAreNotForwarded: an attacker connected only to a real
// node publishes invalid transactions and blocks next to valid ones; a
// listener connected only to that node receives the valid ones and never
// the invalid ones.
func TestInvalidMessagesAreNotForwarded(t *testing.T) {
	d := startNet(t, []uint64{1}, func(_ int, c *Config) { c.BlockSize = 1000; c.BlockInterval = time.Hour })
	n := d.Nodes[0]
	attacker, _ := newSpyPeer(t, n)
	_, listener := newSpyPeer(t, n)
	waitUntil(t, 30*time.Second, "both peers", func() bool { return len(n.API().Peers()) == 2 })
	waitGossipPath(t, n, attacker, listener)

	k, _ := keystore.Generate()
	mk := func(nonce uint64) chain.Transaction {
		tx := chain.Transaction{Type: chain.TxExchange, ChainID: n.g.ChainID, To: k.Address(), Amount: 3, Nonce: nonce}
		k.SignTx(&tx)
		return tx
	}
	badSig := mk(2) // the id leaves the signature out: another nonce, another id
	badSig.Signature = mk(3).Signature
	wrongChain := chain.Transaction{Type: chain.TxExchange, ChainID: "elsewhere", To: k.Address(), Amount: 3, Nonce: 1}
	k.SignTx(&wrongChain)
	valid := mk(1)

	head := n.API().Head()
	forged := chain.NewBlock(n.g, &head.Header, 0, head.Timestamp+1, nil)
	forged.Header.Sign(k.PrivateKey()) // not an elected forger

	attacker.PublishTxs([]chain.Transaction{badSig})
	attacker.PublishTxs([]chain.Transaction{wrongChain})
	attacker.PublishBlock(forged)
	attacker.PublishTxs([]chain.Transaction{valid})

	waitUntil(t, 30*time.Second, "the valid transaction to be forwarded", func() bool { return listener.sawTx(valid.ID()) })
	time.Sleep(500 * time.Millisecond)
	if listener.sawTx(badSig.ID()) || listener.sawTx(wrongChain.ID()) {
		t.Fatal("an invalid transaction was forwarded")
	}
	if listener.sawBlock(forged.Hash()) {
		t.Fatal("a block from a non-elected forger was forwarded")
	}
	if n.API().Height() != 0 {
		t.Fatal("the node imported the forged block")
	}
}

// waitGossipPath waits until the path attacker → n → listener carries
// messages: gossip published before the peers exchanged subscriptions and
// formed their mesh is lost, so it sends fresh valid transactions (a new
// key each, so each is executable and a new message) until the listener
// sees one.
func waitGossipPath(t *testing.T, n *Node, attacker *p2p.Node, listener *spy) {
	t.Helper()
	waitUntil(t, 60*time.Second, "the gossip path to carry a transaction", func() bool {
		probe, _ := keystore.Generate()
		tx := chain.Transaction{Type: chain.TxExchange, ChainID: n.g.ChainID, To: probe.Address(), Amount: 1, Nonce: 1}
		probe.SignTx(&tx)
		attacker.PublishTxs([]chain.Transaction{tx})
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			if listener.sawTx(tx.ID()) {
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false
	})
}

// TestGossipedStakeOverTheLimitIsNotForwarded: gossip admits as the API
// does. A STAKE the chain would refuse on the head (stake_limit: more
// lots than max_lots) published by a peer is refused with that code, not
// pooled and not relayed, while a valid transaction published after it
// is.
func TestGossipedStakeOverTheLimitIsNotForwarded(t *testing.T) {
	d := startNet(t, []uint64{1}, nil)
	n := d.Nodes[0]
	whale, _ := keystore.Generate()
	send(t, n, whale, chain.Transaction{Type: chain.TxExchange, To: whale.Address(), Amount: 1 << 62})
	over := chain.Transaction{Type: chain.TxStake, ChainID: n.g.ChainID, To: whale.Address(), Amount: 1 << 62, Nonce: 2}
	whale.SignTx(&over)
	if lots := over.Amount / n.g.LotSize; lots <= n.g.MaxLots {
		t.Fatalf("the STAKE is %d lots, within max_lots %d: it tests nothing", lots, n.g.MaxLots)
	}

	attacker, _ := newSpyPeer(t, n)
	_, listener := newSpyPeer(t, n)
	waitUntil(t, 30*time.Second, "both peers", func() bool { return len(n.API().Peers()) == 2 })
	waitGossipPath(t, n, attacker, listener)

	k, _ := keystore.Generate()
	valid := chain.Transaction{Type: chain.TxExchange, ChainID: n.g.ChainID, To: k.Address(), Amount: 3, Nonce: 1}
	k.SignTx(&valid)
	attacker.PublishTxs([]chain.Transaction{over})
	attacker.PublishTxs([]chain.Transaction{valid})
	waitUntil(t, 30*time.Second, "the valid transaction to be forwarded", func() bool { return listener.sawTx(valid.ID()) })
	time.Sleep(500 * time.Millisecond)
	if listener.sawTx(over.ID()) {
		t.Fatal("a STAKE over max_lots was forwarded")
	}
	if _, ok := n.pool.Get(over.ID()); ok {
		t.Fatal("a STAKE over max_lots was pooled")
	}
	// The gossip handler says why, as the API does.
	relay, errs, err := n.p2pHandler().handleTxs([]chain.Transaction{over})
	if err != nil || len(relay) != 0 || !errors.Is(errs[0], chain.ErrStakeLimit) {
		t.Fatalf("gossiped STAKE over max_lots: relay %d, errs %v, err %v; want none relayed and %s", len(relay), errs, err, chain.ErrStakeLimit.Code)
	}
	code, errCode := submitCode(t, n, whale, chain.Transaction{Type: chain.TxStake, To: whale.Address(), Amount: 1 << 62})
	if code/100 != 4 || errCode != string(chain.ErrStakeLimit.Code) {
		t.Fatalf("the same STAKE through the API: status %d code %q", code, errCode)
	}
}
