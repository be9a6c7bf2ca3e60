package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/keystore"

	"github.com/poslab/posd/internal/testutil"
)

// These tests run real libp2p hosts on 127.0.0.1, several nodes in one process.

func testLogger(name string) *slog.Logger {
	if os.Getenv("POSD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", name)
	}
	return slog.New(slog.DiscardHandler)
}

// startNet runs a devnet of len(stakes) nodes on random ports.
func startNet(t testing.TB, stakes []uint64, mutate func(i int, c *Config), params ...func(*GenesisParams)) *Devnet {
	t.Helper()
	p := DefaultGenesisParams()
	p.ChainID = "posd-nettest"
	p.SlotMs = 2 * chain.MaxFutureMs // the least genesis allows
	for _, f := range params {
		f(&p)
	}
	d, err := StartDevnet(context.Background(), DevnetConfig{
		Home: t.TempDir(), Nodes: len(stakes), Stakes: stakes, Genesis: p, Host: "127.0.0.1",
		Logger: testLogger(t.Name()),
		// Each node verifies what it receives, as on a real network.
		OwnSigCaches: true,
		NodeConfig: func(i int, c *Config) {
			c.APIPort, c.P2PPort = 0, 0
			c.BlockInterval = 20 * time.Millisecond
			if mutate != nil {
				mutate(i, c)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}

// agreed reports whether every node has the same head and an empty pool.
func agreed(nodes ...*Node) bool {
	head := nodes[0].API().Head().Hash()
	for _, n := range nodes {
		if n.API().Head().Hash() != head || n.pool.Len() != 0 {
			return false
		}
	}
	return true
}

func waitPeers(t testing.TB, d *Devnet, want int) {
	t.Helper()
	waitUntil(t, 10*time.Second, "peers", func() bool {
		for _, n := range d.Nodes {
			if len(n.API().Peers()) < want {
				return false
			}
		}
		return true
	})
}

// sendFrom submits a signed transaction to node n (nonce from n's view).
func sendFrom(t testing.TB, n *Node, k *keystore.Key, tx chain.Transaction) chain.Hash {
	t.Helper()
	acc := n.API().Account(k.Address())
	tx.ChainID = n.API().Genesis().ChainID
	tx.Nonce = *acc.PendingNonce + 1
	k.SignTx(&tx)
	id, err := n.API().SubmitTx(tx)
	if err != nil {
		t.Fatalf("submit to %s: %v", n.APIURL(), err)
	}
	return id
}

func TestFourNodesAgree(t *testing.T) {
	d := startNet(t, []uint64{1, 2, 3, 4}, nil)
	waitPeers(t, d, 3)
	users := make([]*keystore.Key, 4)
	for i := range users {
		users[i], _ = keystore.Generate()
	}
	// Each user talks to a different node: first buys coins, then passes
	// them on to the next user, four times.
	for round := 0; round < 5; round++ {
		for i, u := range users {
			tx := chain.Transaction{Type: chain.TxTransfer, To: users[(i+1)%4].Address(), Amount: 10}
			if round == 0 {
				tx = chain.Transaction{Type: chain.TxExchange, To: u.Address(), Amount: 10}
			}
			sendFrom(t, d.Nodes[i], u, tx)
		}
		waitUntil(t, 20*time.Second, fmt.Sprintf("round %d on every node", round), func() bool {
			for _, n := range d.Nodes {
				for _, u := range users {
					if n.API().Account(u.Address()).Nonce != uint64(round+1) {
						return false
					}
				}
			}
			return true
		})
	}
	waitUntil(t, 30*time.Second, "all four nodes on one head with empty pools", func() bool { return agreed(d.Nodes...) })
	for _, n := range d.Nodes[1:] {
		if !n.chain.Snapshot().SameState(d.Nodes[0].chain.Snapshot()) {
			t.Fatalf("node %s state differs", n.APIURL())
		}
	}
	for i, u := range users {
		acc := d.Nodes[(i+2)%4].API().Account(u.Address())
		if acc.Nonce != 5 || acc.Balance != 10 {
			t.Errorf("user %d: %+v, want nonce 5 balance 10", i, acc)
		}
	}
}

func TestLateNodeSyncsFromScratch(t *testing.T) {
	d := startNet(t, []uint64{1, 1}, nil)
	waitPeers(t, d, 1)
	k, _ := keystore.Generate()
	for i := 0; i < 40; i++ {
		sendFrom(t, d.Nodes[i%2], k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 1})
		// Both nodes: the next transaction takes its nonce from the other
		// node, which must not still be waiting for this one's gossip.
		waitUntil(t, 30*time.Second, "commit", func() bool {
			return d.Nodes[0].API().Account(k.Address()).Nonce == uint64(i+1) && d.Nodes[1].API().Account(k.Address()).Nonce == uint64(i+1)
		})
	}
	waitUntil(t, 30*time.Second, "agreement", func() bool { return agreed(d.Nodes...) })

	late := joinLate(t, d)
	waitUntil(t, 60*time.Second, "the late node to catch up", func() bool { return agreed(d.Nodes[0], late) })
	if !late.chain.Snapshot().SameState(d.Nodes[0].chain.Snapshot()) || late.API().Height() < 40 {
		t.Fatalf("late node at %d with a different state", late.API().Height())
	}
}

// joinLate starts one more node that joins node 1 with an empty home.
func joinLate(t testing.TB, d *Devnet) *Node {
	t.Helper()
	n, err := Open(Config{Home: t.TempDir(), Join: d.Nodes[0].APIURL(), Host: "127.0.0.1", Logger: testLogger("late")})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestChainGoesOnWhenTheForgerIsOffline(t *testing.T) {
	// Node 1 holds almost all stake: it is the rank-0 forger nearly always.
	d := startNet(t, []uint64{1000, 1, 1}, nil)
	waitPeers(t, d, 2)
	k, _ := keystore.Generate()
	sendFrom(t, d.Nodes[1], k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 5})
	waitUntil(t, 10*time.Second, "a first block", func() bool { return agreed(d.Nodes...) && d.Nodes[1].API().Height() >= 1 })

	d.Nodes[0].Close()
	before := d.Nodes[1].API().Height()
	for i := 0; i < 3; i++ {
		sendFrom(t, d.Nodes[1], k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 5})
		want := before + uint64(i) + 1
		waitUntil(t, 20*time.Second, fmt.Sprintf("height %d without the rank-0 forger", want), func() bool {
			return d.Nodes[1].API().Height() >= want && d.Nodes[2].API().Height() >= want
		})
	}
	var fallback int
	for h := before + 1; h <= d.Nodes[1].API().Height(); h++ {
		b, err := d.Nodes[1].API().BlockByHeight(h)
		if err != nil {
			t.Fatal(err)
		}
		if b.Rank > 0 {
			fallback++
		}
	}
	if fallback == 0 {
		t.Fatal("no block was forged by a fallback rank")
	}
}

// TestPartitionHealsByForkChoice builds two branches on two halves of a
// network that cannot see each other, joins them, and checks that every
// node ends on one chain whose state equals that of a node that never forked.
func TestPartitionHealsByForkChoice(t *testing.T) {
	// Nodes 1 and 2 start connected; node 3 starts alone.
	d := startNet(t, []uint64{1, 1, 1}, func(i int, c *Config) {
		if i == 3 {
			c.Join, c.NoJoin = "", true
		}
	})
	waitUntil(t, 10*time.Second, "nodes 1 and 2 to pair", func() bool { return len(d.Nodes[0].API().Peers()) >= 1 })
	if len(d.Nodes[2].API().Peers()) != 0 {
		t.Fatal("node 3 is not partitioned")
	}
	a, _ := keystore.Generate()
	b, _ := keystore.Generate()
	for i := 0; i < 2; i++ {
		sendFrom(t, d.Nodes[0], a, chain.Transaction{Type: chain.TxExchange, To: a.Address(), Amount: 7})
		waitUntil(t, 10*time.Second, "branch A", func() bool { return d.Nodes[0].API().Account(a.Address()).Nonce == uint64(i+1) })
	}
	for i := 0; i < 4; i++ {
		sendFrom(t, d.Nodes[2], b, chain.Transaction{Type: chain.TxExchange, To: b.Address(), Amount: 9})
		waitUntil(t, 10*time.Second, "branch B", func() bool { return d.Nodes[2].API().Account(b.Address()).Nonce == uint64(i+1) })
	}
	if d.Nodes[0].API().Head().Hash() == d.Nodes[2].API().Head().Hash() {
		t.Fatal("the halves did not fork")
	}
	// Heal the partition.
	if err := d.Nodes[2].net.Connect(context.Background(), d.Nodes[0].net.Addrs()); err != nil {
		t.Fatal(err)
	}
	// One chain holding both branches' transactions: the losing branch's
	// went back to its node's pool and were forged again. The pool takes
	// them back when the node's event loop handles the switch, after the
	// head has moved, so "same head, empty pools" alone can hold for a
	// moment before that; a node that lost them never gets there.
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last seen: %s", last)
		}
	}()
	waitUntil(t, 30*time.Second, "one chain after healing, with both branches' transactions", func() bool {
		if !agreed(d.Nodes...) {
			last = "the nodes on different heads or with transactions pending"
			return false
		}
		for _, n := range d.Nodes {
			if n.API().Account(a.Address()).Balance != 14 || n.API().Account(b.Address()).Balance != 36 {
				last = fmt.Sprintf("node %s: a %+v b %+v", n.APIURL(), n.API().Account(a.Address()), n.API().Account(b.Address()))
				return false
			}
		}
		return true
	})
	if d.Nodes[0].chain.Stats().Reorgs+d.Nodes[2].chain.Stats().Reorgs == 0 {
		t.Fatal("nobody reorganised")
	}
	fresh := joinLate(t, d)
	// The chain may still move (heartbeats): the states are compared when
	// every node and the fresh one are on one head, which must happen.
	all := append(slices.Clone(d.Nodes), fresh)
	waitUntil(t, 20*time.Second, "a fresh node on the same head and state as every node (a state that differs on one head never passes)", func() bool {
		if !agreed(all...) {
			return false
		}
		for _, n := range d.Nodes {
			if !n.chain.Snapshot().SameState(fresh.chain.Snapshot()) {
				return false
			}
		}
		return true
	})
}

// TestLingeringTransactionsAreGossipedAgain: a transaction sent to a node
// with no stake while it had no peers reaches the forger once it connects.
func TestLingeringTransactionsAreGossipedAgain(t *testing.T) {
	old := rebroadcastEvery
	rebroadcastEvery = 200 * time.Millisecond
	t.Cleanup(func() { rebroadcastEvery = old })
	d := startNet(t, []uint64{1, 0}, func(i int, c *Config) {
		if i == 2 {
			c.Join, c.NoJoin = "", true
		}
	})
	forger, lonely := d.Nodes[0], d.Nodes[1]
	k, _ := keystore.Generate()
	id := sendFrom(t, lonely, k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 3})
	time.Sleep(300 * time.Millisecond)
	if _, err := forger.API().TxInfo(id); err == nil {
		t.Fatal("the forger heard of the transaction before any connection")
	}
	if err := lonely.net.Connect(context.Background(), forger.net.Addrs()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the transaction to be committed", func() bool {
		info, err := lonely.API().TxInfo(id)
		return err == nil && info.Status == "committed"
	})
}

// TestDevnetSharesVerifiedSignatures: a devnet's nodes share one cache of
// verified signatures (a signature node 1 verified is cached at node 2)
// unless OwnSigCaches.
func TestDevnetSharesVerifiedSignatures(t *testing.T) {
	k, _ := keystore.Generate()
	for _, own := range []bool{false, true} {
		d, err := StartDevnet(context.Background(), DevnetConfig{
			Home: t.TempDir(), Nodes: 2, Genesis: DefaultGenesisParams(), Host: "127.0.0.1", OwnSigCaches: own,
			NodeConfig: func(_ int, c *Config) { c.APIPort, c.P2PPort = 0, 0 },
		})
		if err != nil {
			t.Fatal(err)
		}
		tx := chain.Transaction{Type: chain.TxExchange, ChainID: d.Nodes[0].g.ChainID, To: k.Address(), Amount: 1, Nonce: 1}
		k.SignTx(&tx)
		errs := make([]error, 1)
		d.Nodes[0].chain.Verifier().VerifyTxs([]chain.Transaction{tx}, errs)
		if errs[0] != nil {
			t.Fatal(errs[0])
		}
		if got := d.Nodes[1].chain.Verifier().Cached(&tx); got == own {
			t.Errorf("OwnSigCaches %v: node 2 has node 1's verified signature: %v", own, got)
		}
		d.Close()
	}
}

// A gossiped batch is rejected (and its peer penalised) only for a rule a
// transaction breaks by itself; state-dependent refusals are not its
// sender's fault.
func TestIsTxRuleBreak(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{chain.ErrUnknownType, true},
		{chain.ErrZeroAmount, true},
		{chain.ErrBadAddress, true},
		{chain.ErrBadPublicKey, true},
		{chain.ErrFromMismatch, true},
		{chain.ErrBadSignature, true},
		{chain.ErrWrongChain, true},
		{chain.ErrStakeNotSelf, true},
		{chain.ErrTxTooLarge, true},
		{fmt.Errorf("tx 3: %w", &chain.RuleError{Code: chain.ErrBadSignature.Code, Message: "bad"}), true},
		{chain.ErrBadNonce, false},
		{mempool.ErrNonceGap, false},
		{mempool.ErrAlreadyKnown, false},
		{fmt.Errorf("wrapped: %w", chain.ErrBadNonce), false},
		{errors.New("disk on fire"), false},
	} {
		if got := isTxRuleBreak(c.err); got != c.want {
			t.Errorf("isTxRuleBreak(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
