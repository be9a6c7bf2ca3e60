package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/keystore"
)

// privateNet is two honest nodes and an attacker key, one stake each (the
// attacker holds a third), on a clock the test moves in ticks. The nodes
// run without libp2p: at every tick the test relays every new block
// between them at once (a network without delay), so a run is the same on
// every machine: elections depend only on keys and seeds, and every
// timestamp is a tick of the test's clock.
type privateNet struct {
	t        *testing.T
	clock    *testClock
	g        *chain.Genesis
	nodes    []*Node
	attacker *keystore.Key
	tick     time.Duration
}

// privateGenesis is the private devnet's genesis for seed: the two honest
// keys and the attacker's, one stake each.
func privateGenesis(t *testing.T, seed string, heartbeat bool) (g *chain.Genesis, honest []*keystore.Key, attacker *keystore.Key) {
	t.Helper()
	p := DefaultGenesisParams()
	p.ChainID = "posd-private-" + seed
	p.SlotMs = 2000 // heartbeat_ms: slot_ms/4 = 500
	p.Heartbeat = heartbeat
	p.Timestamp = 1_700_000_000_000 // fixed: block 0's seed is the genesis hash
	honest = []*keystore.Key{seededKey(seed + "/honest1"), seededKey(seed + "/honest2")}
	attacker = seededKey(seed + "/attacker")
	var allocs []chain.Allocation
	for _, k := range append(slices.Clone(honest), attacker) {
		allocs = append(allocs, chain.Allocation{Address: k.Address(), Balance: 1000, Stake: 1})
	}
	g, err := p.Build(time.Time{}, allocs)
	if err != nil {
		t.Fatal(err)
	}
	return g, honest, attacker
}

func startPrivateNet(t *testing.T, seed string, heartbeat bool) *privateNet {
	t.Helper()
	g, honest, attacker := privateGenesis(t, seed, heartbeat)
	data, _ := json.Marshal(g)
	// The clock starts well after the wall clock, so a pooled transaction
	// (dated by the wall clock) is always due at once: only the test's
	// ticks decide when blocks come.
	pn := &privateNet{t: t, clock: newTestClock(time.Now().Add(time.Hour)), g: g, attacker: attacker, tick: 250 * time.Millisecond}
	for i, k := range honest {
		home := filepath.Join(t.TempDir(), fmt.Sprintf("node%d", i+1))
		if err := os.MkdirAll(home, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, GenesisFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		keyFile := filepath.Join(home, "key.pem")
		if err := keystore.Save(keyFile, k, nil); err != nil {
			t.Fatal(err)
		}
		// NoVote: these are v2's experiments (docs/ATTACKS.md), finality
		// off; the nodes have no network to gossip votes on anyway.
		n, err := Open(Config{Home: home, KeyFile: keyFile, NoNetwork: true, Now: pn.clock.Now, NoVote: true,
			BlockSize: 1, BlockInterval: 50 * time.Millisecond, Logger: testLogger(fmt.Sprintf("honest%d", i+1))})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		pn.nodes = append(pn.nodes, n)
	}
	return pn
}

// settle lets both forgers look at the current time, relays blocks until
// both nodes share one head, and repeats while anything moved.
func (pn *privateNet) settle() {
	for range 20 {
		for _, n := range pn.nodes {
			pn.forgerLooked(n)
		}
		a, b := pn.nodes[0], pn.nodes[1]
		if a.API().Head().Hash() == b.API().Head().Hash() {
			return
		}
		pn.relay(a, b)
		pn.relay(b, a)
	}
	pn.t.Fatal("the honest nodes do not agree on a head")
}

// forgerLooked is the package's forgerLooked with a short poll: a run
// waits for the forgers a few hundred times, and at the shared helper's
// 20 ms poll the waiting, not the work, made a run last half a minute.
func (pn *privateNet) forgerLooked(n *Node) {
	pn.t.Helper()
	start := n.forger.Rounds()
	deadline := time.Now().Add(30 * time.Second)
	for n.forger.Rounds() < start+2 {
		if time.Now().After(deadline) {
			pn.t.Fatal("the forger did not look again within 30 s")
		}
		n.forger.Poke()
		time.Sleep(time.Millisecond)
	}
}

// relay hands to's missing blocks of from's main chain to to.
func (pn *privateNet) relay(from, to *Node) {
	start := uint64(1)
	if h := min(from.API().Height(), to.API().Height()); h > chainmgr.MaxReorgDepth {
		start = h - chainmgr.MaxReorgDepth
	}
	blocks, err := from.API().Blocks(start, int(from.API().Height()-start+1))
	if err != nil {
		pn.t.Fatal(err)
	}
	_, _ = to.chain.ProcessBlocks(blocks) // known and losing blocks are not news
}

// step moves the clock one tick and settles the honest network.
func (pn *privateNet) step() {
	pn.clock.Add(pn.tick)
	pn.settle()
}

// pay submits tx (signed by k at its next nonce) to node 1 and steps until
// it is in a block; it returns that block.
func (pn *privateNet) pay(k *keystore.Key, tx chain.Transaction) (*chain.Block, chain.Transaction) {
	n := pn.nodes[0]
	tx.ChainID, tx.From = pn.g.ChainID, k.Address()
	tx.Nonce = *n.API().Account(k.Address()).PendingNonce + 1
	k.SignTx(&tx)
	if _, err := n.API().SubmitTx(tx); err != nil {
		pn.t.Fatal(err)
	}
	for range 1000 {
		pn.step()
		if info, err := n.API().TxInfo(tx.ID()); err == nil && info.Height != nil {
			b, err := n.API().BlockByHeight(*info.Height)
			if err != nil {
				pn.t.Fatal(err)
			}
			return b, tx
		}
	}
	pn.t.Fatal("the payment was never forged")
	return nil, tx
}

// privateAttack runs the attack and reports whether the payment's block
// was replaced, and the payment's depth on the honest chain at the end.
//
// The attacker pays a merchant, then forges in private, from the payment's
// parent, a chain whose first block spends the same coins (same nonce) to
// another of its addresses. It forges each block as soon as an election on
// its own chain lets it (rank r: r slots after the parent, so a rank-0
// block costs no time; timestamps are the earliest valid and never ahead
// of the clock) and publishes its chain to both nodes whenever it is
// higher than theirs. It never forges on the honest chain, so where it is
// rank 0 there the honest rank 1 waits its slot.
//
// With publishTies it also publishes a chain as high as theirs whose block
// at the payment's height has the lower rank, which the fork choice
// prefers too: the publish rule of lab/attack's model ("higher; at equal
// height, lower rank at height P").
func privateAttack(t *testing.T, seed string, heartbeat, publishTies bool) (replaced bool, depth uint64) {
	pn := startPrivateNet(t, seed, heartbeat)
	alg, err := pn.g.Algorithm()
	if err != nil {
		t.Fatal(err)
	}
	// An active network: a few transfers, each in its own block, and with
	// the heartbeat on, a few beats after the last one. The payment comes
	// while the chain beats (not out of a rest, where backdating wins:
	// docs/CONSENSUS.md).
	user := seededKey(seed + "/user")
	for range 3 {
		pn.pay(user, chain.Transaction{Type: chain.TxExchange, To: user.Address(), Amount: 10})
	}
	for end := pn.clock.Now().Add(2 * time.Second); pn.clock.Now().Before(end); {
		pn.step()
	}
	merchant, other := seededKey(seed+"/merchant"), seededKey(seed+"/attacker-other")
	paid, payment := pn.pay(pn.attacker, chain.Transaction{Type: chain.TxTransfer, To: merchant.Address(), Amount: 500})
	n := pn.nodes[0]

	// The attacker's view: the state after the payment's parent.
	st := pn.g.State()
	for h := uint64(1); h < paid.Height; h++ {
		b, err := n.API().BlockByHeight(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Apply(b, pn.g); err != nil {
			t.Fatal(err)
		}
	}
	tip, err := n.API().BlockByHeight(paid.Height - 1)
	if err != nil {
		t.Fatal(err)
	}
	double := payment
	double.To = other.Address()
	pn.attacker.SignTx(&double)
	var private []*chain.Block
	slot := pn.g.SlotMs
	for range 10000 {
		// Forge every block the clock allows.
		for {
			r := slices.Index(chain.ElectWith(alg, pn.g.MaxRank, chain.ElectionSeed(pn.g, &tip.Header), chain.ElectionTable(pn.g, st)), pn.attacker.Address())
			if r < 0 {
				t.Fatalf("three stakers, max_rank %d: the attacker is always a candidate", pn.g.MaxRank)
			}
			ts := tip.Timestamp + int64(r)*slot
			if ts > pn.clock.Now().UnixMilli() {
				break
			}
			var txs []chain.Transaction
			if len(private) == 0 {
				txs = []chain.Transaction{double}
			}
			b := chain.NewBlock(pn.g, &tip.Header, uint32(r), ts, txs)
			pn.attacker.SignHeader(&b.Header)
			if _, err := st.Apply(b, pn.g); err != nil {
				t.Fatal(err)
			}
			private, tip = append(private, b), b
		}
		if pn.preferred(private, paid.Height, publishTies) {
			for _, node := range pn.nodes {
				_, _ = node.chain.ProcessBlocks(private)
			}
			pn.settle()
			if h, err := n.API().BlockByHeight(paid.Height); err == nil && h.Hash() != paid.Hash() {
				if info, err := n.API().TxInfo(payment.ID()); err == nil && info.Status == rpc.TxCommitted {
					t.Fatal("the payment is still committed after the reorg")
				}
				return true, n.API().Height() - paid.Height
			}
		}
		if n.API().Height() >= paid.Height+chainmgr.MaxReorgDepth {
			return false, n.API().Height() - paid.Height
		}
		pn.step()
	}
	return false, n.API().Height() - paid.Height
}

// preferred reports whether the honest nodes' fork choice takes the
// private chain (forked below height p): it is higher, or, with ties, as
// high with a lower rank than their block at p.
func (pn *privateNet) preferred(private []*chain.Block, p uint64, ties bool) bool {
	if len(private) == 0 {
		return false
	}
	n, tip := pn.nodes[0], private[len(private)-1]
	if tip.Height != n.API().Height() || !ties {
		return tip.Height > n.API().Height()
	}
	theirs, err := n.API().BlockByHeight(p)
	if err != nil {
		pn.t.Fatal(err)
	}
	return private[0].Rank < theirs.Rank
}

// TestPrivateChainAgainstHeartbeat is the private attack of issue 5 of the
// v2 rules on real nodes: a staker with a third of the stake forks from
// the block before its payment and publishes whenever its chain is higher.
// With the heartbeat off the idle honest chain is out-grown and the
// payment reversed at once; with it on, the honest chain (beating every
// heartbeat_ms = slot_ms/4) keeps ahead until the payment is max_reorg
// deep, where no reorg can reach it.
//
// The network is active, not resting, when the payment comes: three
// transfers, then two seconds of heartbeats (a payment out of a rest is
// the backdating limit in docs/CONSENSUS.md, which the heartbeat does not
// close).
//
// The run is deterministic (seeded keys, a fixed genesis, the test's
// clock). It pins one instance, and says so: the heartbeat does not make
// the attack fail always. An attacker that publishes as soon as it leads
// reverses a payment one block deep 37.7% of the time with two honest
// stakers at this heartbeat (docs/ATTACKS.md). Seed "1" was the first
// tried; seeds "2", "3" and "4" of this same setup, heartbeat on, are
// reversed when the payment is 4, 2 and 3 blocks deep, and seed "1" with
// five seconds of beats before the payment instead of two is reversed 4
// deep. Merchants wait for confirmations for that reason (the figures per
// depth are in docs/CONSENSUS.md). What holds on every seed is what the
// heartbeat-off runs show: without it an idle chain falls at once.
func TestPrivateChainAgainstHeartbeat(t *testing.T) {
	t.Run("heartbeat on", func(t *testing.T) {
		replaced, depth := privateAttack(t, "1", true, false)
		if replaced || depth < chainmgr.MaxReorgDepth {
			t.Fatalf("replaced %v with the payment %d deep; want it kept until %d deep", replaced, depth, chainmgr.MaxReorgDepth)
		}
	})
	for _, seed := range []string{"1", "2"} {
		t.Run("heartbeat off, seed "+seed, func(t *testing.T) {
			if replaced, depth := privateAttack(t, seed, false, false); !replaced {
				t.Fatalf("not replaced (payment %d deep): an idle chain must fall to the private one", depth)
			}
		})
	}
}
