package daemon

import (
	"crypto/ed25519"
	"crypto/sha256"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/daemon/chainmgr"
	"github.com/poslab/posd/keystore"
)

// testClock is a clock the test moves: the node's Config.Now.
type testClock struct{ ms atomic.Int64 }

func newTestClock(t time.Time) *testClock { c := &testClock{}; c.ms.Store(t.UnixMilli()); return c }
func (c *testClock) Now() time.Time       { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) Set(ms int64)         { c.ms.Store(ms) }
func (c *testClock) Add(d time.Duration)  { c.ms.Add(d.Milliseconds()) }

// seededKey is a key made from a name: the same on every run.
func seededKey(name string) *keystore.Key {
	seed := sha256.Sum256([]byte("posd test key " + name))
	return keystore.FromPrivateKey(ed25519.NewKeyFromSeed(seed[:]))
}

// forgerLooked waits until the forger has looked at the chain twice more
// (once to finish a round that began before the caller's change, once
// after it), after poking it.
func forgerLooked(t testing.TB, n *Node) {
	t.Helper()
	start := n.forger.Rounds()
	waitUntil(t, 30*time.Second, "the forger to look again", func() bool {
		n.forger.Poke()
		return n.forger.Rounds() >= start+2
	})
}

// submitCode posts tx (signed by k at the next nonce) to /v1/txs and
// returns the HTTP status and error code.
func submitCode(t testing.TB, n *Node, k *keystore.Key, tx chain.Transaction) (int, string) {
	t.Helper()
	acc := account(t, n, k.Address())
	tx.ChainID = n.API().Genesis().ChainID
	tx.From = k.Address()
	tx.Nonce = *acc.PendingNonce + 1
	k.SignTx(&tx)
	var res rpc.SubmitResult
	code := apiCall(t, n, "POST", "/v1/txs", tx, &res)
	if res.Error != nil {
		return code, res.Error.Code
	}
	return code, ""
}

// TestRegressionStake2p62OnNode replays v1's freeze on a running node:
// EXCHANGE 2^62 then STAKE 2^62. The STAKE is refused (stake_limit), a
// later transfer commits, and the node shuts down within ShutdownTimeout.
func TestRegressionStake2p62OnNode(t *testing.T) {
	n := startTestNode(t)
	whale, _ := keystore.Generate()
	send(t, n, whale, chain.Transaction{Type: chain.TxExchange, To: whale.Address(), Amount: 1 << 62})
	code, errCode := submitCode(t, n, whale, chain.Transaction{Type: chain.TxStake, To: whale.Address(), Amount: 1 << 62})
	if code != http.StatusBadRequest && code != http.StatusUnprocessableEntity || errCode != string(chain.ErrStakeLimit.Code) {
		t.Fatalf("STAKE 2^62: status %d code %q, want a 4xx with %q", code, errCode, chain.ErrStakeLimit.Code)
	}
	other, _ := keystore.Generate()
	send(t, n, whale, chain.Transaction{Type: chain.TxTransfer, To: other.Address(), Amount: 5})
	if got := account(t, n, other.Address()).Balance; got != 5 {
		t.Fatalf("transfer after the refused stake: balance %d", got)
	}
	if s := account(t, n, whale.Address()).Stake; s != 0 {
		t.Fatalf("whale's stake %d", s)
	}
	start := time.Now()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > ShutdownTimeout {
		t.Fatalf("shutdown took %v", d)
	}
}

// TestRegressionUnstakeToZeroOnNode: UNSTAKE of the whole stake, through
// the API, is refused with stake_floor and changes nothing.
func TestRegressionUnstakeToZeroOnNode(t *testing.T) {
	n := startTestNode(t)
	before := account(t, n, n.Address())
	if before.Stake == 0 {
		t.Fatal("the genesis node holds no stake")
	}
	code, errCode := submitCode(t, n, n.key, chain.Transaction{Type: chain.TxUnstake, To: n.Address(), Amount: before.Stake})
	if code/100 != 4 || errCode != string(chain.ErrStakeFloor.Code) {
		t.Fatalf("UNSTAKE to zero: status %d code %q, want a 4xx with %q", code, errCode, chain.ErrStakeFloor.Code)
	}
	if after := account(t, n, n.Address()); after.Stake != before.Stake || after.Nonce != before.Nonce || len(n.API().PendingTxs()) != 0 {
		t.Fatalf("state changed: %+v -> %+v, %d pending", before, after, len(n.API().PendingTxs()))
	}
}

// TestHeartbeatForgesUntilMaxReorgThenRests: with finality off (the one
// staker's node started with --vote=false: v2's heartbeat rule), on an
// idle single-staker network with heartbeat on, a payment's block gets
// empty blocks on top, one
// each time the head is heartbeat_ms old (not slot_ms), all at rank 0, until
// MaxReorgDepth blocks cover it; then the chain rests however much time
// passes. The clock is the test's: each beat is checked at heartbeat_ms − 1
// (no block) and heartbeat_ms (a block).
func TestHeartbeatForgesUntilMaxReorgThenRests(t *testing.T) {
	clock := newTestClock(time.Now())
	n := startTestNode(t, func(c *Config) {
		c.Now = clock.Now
		c.Genesis.Heartbeat = true
		c.Genesis.SlotMs = 2000 // heartbeat_ms defaults to 500
		c.NoVote = true
	})
	hb := n.API().Genesis().HeartbeatMs
	if hb != 500 {
		t.Fatalf("heartbeat_ms %d, want slot_ms/4", hb)
	}
	// Idle: no transaction yet, nothing to protect: no block however long.
	clock.Add(10 * time.Duration(n.API().Genesis().SlotMs) * time.Millisecond)
	forgerLooked(t, n)
	if h := n.API().Height(); h != 0 {
		t.Fatalf("an idle new chain forged %d blocks", h)
	}

	// The payment: the pool dates it by the wall clock, so move the node's
	// clock past it for the block to be due.
	payer, _ := keystore.Generate()
	acc := account(t, n, payer.Address())
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: n.API().Genesis().ChainID, From: payer.Address(), To: payer.Address(), Amount: 7, Nonce: *acc.PendingNonce + 1}
	payer.SignTx(&tx)
	if _, err := n.API().SubmitTx(tx); err != nil {
		t.Fatal(err)
	}
	clock.Set(max(clock.Now().UnixMilli(), time.Now().UnixMilli()) + 1)
	waitUntil(t, 30*time.Second, "the payment's block", func() bool { n.forger.Poke(); return n.API().Height() == 1 })
	paid := n.API().Head()
	if len(paid.Transactions) != 1 {
		t.Fatalf("payment block holds %d txs", len(paid.Transactions))
	}

	for want := paid.Height + 1; want <= paid.Height+chainmgr.MaxReorgDepth; want++ {
		head := n.API().Head()
		clock.Set(head.Timestamp + hb - 1)
		forgerLooked(t, n)
		if n.API().Height() != want-1 {
			t.Fatalf("a block at height %d when the head was only %d ms old", want, hb-1)
		}
		clock.Set(head.Timestamp + hb)
		waitUntil(t, 30*time.Second, "a heartbeat", func() bool { n.forger.Poke(); return n.API().Height() == want })
		b := n.API().Head()
		if len(b.Transactions) != 0 || b.Rank != 0 || b.Timestamp != head.Timestamp+hb {
			t.Fatalf("heartbeat %d: %d txs, rank %d, %d ms after its parent", want, len(b.Transactions), b.Rank, b.Timestamp-head.Timestamp)
		}
	}
	// The payment is MaxReorgDepth deep: any branch reverting it forks
	// beyond the reorg limit. The chain rests.
	for range 3 {
		clock.Add(10 * time.Duration(n.API().Genesis().SlotMs) * time.Millisecond)
		forgerLooked(t, n)
	}
	if h := n.API().Height(); h != paid.Height+chainmgr.MaxReorgDepth {
		t.Fatalf("height %d after the rest began, want %d", h, paid.Height+chainmgr.MaxReorgDepth)
	}
	// A new transaction wakes it again.
	send(t, n, payer, chain.Transaction{Type: chain.TxTransfer, To: n.Address(), Amount: 1})
	rest := n.API().Head()
	clock.Set(rest.Timestamp + hb)
	waitUntil(t, 30*time.Second, "a heartbeat after the next payment", func() bool { n.forger.Poke(); return n.API().Height() == rest.Height+1 })
}

// TestHeartbeatOnDevnet: three nodes on libp2p, heartbeat on (slot_ms
// 1000, heartbeat_ms 250), finality off (every node --vote=false: v2's
// heartbeat rule). After one payment every node reaches the same
// head exactly MaxReorgDepth blocks above the payment's block, every block
// above it empty (and, being imported, forged by the candidate at its
// rank); then the network
// rests: with the head three slots old (past every fallback rank that
// matters) and each forger having looked again, no node forged more.
func TestHeartbeatOnDevnet(t *testing.T) {
	d := startNet(t, []uint64{1, 1, 1}, func(_ int, c *Config) { c.NoVote = true })
	waitPeers(t, d, 2)
	if !d.Nodes[0].API().Genesis().Heartbeat || d.Nodes[0].API().Genesis().HeartbeatMs != 250 {
		t.Fatalf("genesis heartbeat %v every %d ms", d.Nodes[0].API().Genesis().Heartbeat, d.Nodes[0].API().Genesis().HeartbeatMs)
	}
	k, _ := keystore.Generate()
	id := sendFrom(t, d.Nodes[1], k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 5})
	var paid uint64
	waitUntil(t, 30*time.Second, "the payment committed", func() bool {
		info, err := d.Nodes[0].API().TxInfo(id)
		if err == nil && info.Height != nil {
			paid = *info.Height
		}
		return paid > 0
	})
	want := paid + chainmgr.MaxReorgDepth
	waitUntil(t, 120*time.Second, "64 heartbeats on every node", func() bool {
		return agreed(d.Nodes...) && d.Nodes[0].API().Height() >= want
	})
	slot := time.Duration(d.Nodes[0].API().Genesis().SlotMs) * time.Millisecond
	for _, n := range d.Nodes {
		head := n.API().Head()
		waitUntil(t, 30*time.Second, "the head three slots old", func() bool {
			return time.Since(time.UnixMilli(head.Timestamp)) > 3*slot
		})
		forgerLooked(t, n)
	}
	for i, n := range d.Nodes {
		if h := n.API().Height(); h != want {
			t.Fatalf("node %d at height %d, want %d (the payment at %d, then %d beats)", i+1, h, want, paid, chainmgr.MaxReorgDepth)
		}
	}
	n := d.Nodes[0]
	for h := paid + 1; h <= want; h++ {
		b, err := n.API().BlockByHeight(h)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Transactions) != 0 {
			t.Fatalf("block %d holds %d transactions", h, len(b.Transactions))
		}
	}
}
