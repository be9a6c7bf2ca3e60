package daemon

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
	"github.com/poslab/posd/keystore"
)

// Finality on running devnets (DESIGN "v3 rules"): real nodes, real
// gossip, the real voter; the tests wait on chain and finality events.

// finNetSlotMs is the slot of these devnets: the default 2 s, so the
// bounds asserted are the (a transfer final within 3 s).
const finNetSlotMs = 2000

func startFinNet(t *testing.T, stakes []uint64, mutate func(i int, c *Config)) *Devnet {
	t.Helper()
	return startNet(t, stakes, mutate, func(p *GenesisParams) {
		p.ChainID = "posd-fintest"
		p.SlotMs = finNetSlotMs
	})
}

// loadGen keeps sending transfers between its users through every node
// of d, one at a time per user, until stop is called.
type loadGen struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sent   atomic.Int64
}

func startLoad(t *testing.T, d *Devnet, users int, every time.Duration) *loadGen {
	t.Helper()
	keys := make([]*keystore.Key, users)
	for i := range keys {
		keys[i], _ = keystore.Generate()
		sendFrom(t, d.Nodes[i%len(d.Nodes)], keys[i], chain.Transaction{Type: chain.TxExchange, To: keys[i].Address(), Amount: 1_000_000})
	}
	waitUntil(t, 30*time.Second, "the load's users funded", func() bool {
		for _, k := range keys {
			if d.Nodes[0].API().Account(k.Address()).Balance == 0 {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithCancel(context.Background())
	g := &loadGen{cancel: cancel}
	for i, k := range keys {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			n := d.Nodes[i%len(d.Nodes)]
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				acc := n.API().Account(k.Address())
				tx := chain.Transaction{Type: chain.TxTransfer, ChainID: n.API().Genesis().ChainID, To: keys[(i+1)%len(keys)].Address(), Amount: 1, Nonce: *acc.PendingNonce + 1}
				k.SignTx(&tx)
				if _, err := n.API().SubmitTx(tx); err == nil {
					g.sent.Add(1)
				}
			}
		}()
	}
	t.Cleanup(g.stop)
	return g
}

func (g *loadGen) stop() { g.cancel(); g.wg.Wait() }

func finOf(n *Node) (head, justified, final uint64) {
	s := n.chain.Snapshot()
	f := s.Finality()
	return s.Height(), f.Justified.Height, f.Finalized.Height
}

// TestFinalityUnderLoad: on an honest 3-node devnet under load, the
// finalized height trails the head by at most 3 blocks at every head
// change in steady state, on every node; and a transfer is final within
// 3 s (1.5 slots) of being sent.
func TestFinalityUnderLoad(t *testing.T) {
	d := startFinNet(t, []uint64{1, 1, 1}, nil)
	waitPeers(t, d, 2)
	load := startLoad(t, d, 6, 100*time.Millisecond)

	// Steady state: once the blocks of the load's first second are
	// final everywhere.
	time.Sleep(time.Second) // the load runs meanwhile
	start := d.Nodes[0].API().Height()
	waitUntil(t, 30*time.Second, "finality past the load's first second on every node", func() bool {
		for _, n := range d.Nodes {
			if _, _, f := finOf(n); f <= start {
				return false
			}
		}
		return true
	})
	type sample struct{ head, final uint64 }
	var worst [3]sample
	var events [3]int
	var wg sync.WaitGroup
	for i, n := range d.Nodes {
		ch, cancel := n.chain.Subscribe(1 << 20)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			deadline := time.After(15 * time.Second)
			for {
				select {
				case <-deadline:
					return
				case ev, ok := <-ch:
					if !ok {
						return
					}
					f := ev.Snapshot.Finality().Finalized.Height
					h := ev.Snapshot.Height()
					events[i]++
					if h-f > worst[i].head-worst[i].final {
						worst[i] = sample{h, f}
					}
					if h-f > 3 && i == 0 && os.Getenv("POSD_TEST_FINDEBUG") != "" {
						for hh := h - 5; hh <= h; hh++ {
							b, _ := n.chain.BlockByHeight(hh)
							var vs []string
							for _, v := range b.Votes {
								vs = append(vs, fmt.Sprintf("%d→%d/%s", v.Source.Height, v.Target.Height, string(v.Voter())[:4]))
							}
							t.Logf("block %d rank %d forger %s txs %d ts %d votes %v", hh, b.Rank, string(b.Forger)[:4], len(b.Transactions), b.Timestamp, vs)
						}
						t.Logf("head %d justified %d final %d reverted %d", h, ev.Snapshot.Finality().Justified.Height, f, len(ev.Reverted))
					}
				}
			}
		}()
	}

	// Meanwhile, transfers timed from sending to final.
	payer, _ := keystore.Generate()
	sendFrom(t, d.Nodes[1], payer, chain.Transaction{Type: chain.TxExchange, To: payer.Address(), Amount: 100})
	waitUntil(t, 20*time.Second, "the payer funded on every node", func() bool {
		for _, n := range d.Nodes {
			if n.API().Account(payer.Address()).Balance == 0 {
				return false
			}
		}
		return true
	})
	var slowest time.Duration
	for i := range 5 {
		n := d.Nodes[(i+1)%3]
		fin, cancel := n.chain.SubscribeFinality()
		sent := time.Now()
		id := sendFrom(t, n, payer, chain.Transaction{Type: chain.TxTransfer, To: chain.AddressOf(make([]byte, 32)), Amount: 1})
		took := waitFinal(t, n, id, fin, sent)
		cancel()
		slowest = max(slowest, took)
		t.Logf("transfer %d final after %v", i, took)
	}
	wg.Wait()
	load.stop()
	for i := range d.Nodes {
		w := worst[i]
		t.Logf("node %d: %d head changes, finalized trailed by at most %d (head %d, finalized %d); %d load transfers sent", i+1, events[i], w.head-w.final, w.head, w.final, load.sent.Load())
		if events[i] < 10 {
			t.Errorf("node %d: only %d head changes in 15 s under load", i+1, events[i])
		}
		if w.head-w.final > 3 {
			t.Errorf("node %d: finalized %d trailed head %d by more than 3", i+1, w.final, w.head)
		}
	}
	if bound := 3 * time.Second; slowest > bound {
		t.Errorf("slowest transfer final after %v, want within %v (slot %d ms)", slowest, bound, finNetSlotMs)
	}
}

// waitFinal waits, on finality events, until the transaction id is final
// on n, and returns the time since sent.
func waitFinal(t *testing.T, n *Node, id chain.Hash, fin <-chan rpc.FinalityEvent, sent time.Time) time.Duration {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		if info, err := n.API().TxInfo(id); err == nil && info.Final {
			return time.Since(sent)
		}
		select {
		case <-fin:
		case <-timeout:
			info, _ := n.API().TxInfo(id)
			h, j, f := finOf(n)
			t.Fatalf("tx %s not final within 20 s: %+v; head %d justified %d final %d", id, info, h, j, f)
		}
	}
}

// TestFinalityStallsWithoutAThird: with one of three equal stakers not
// voting, blocks go on but nothing new becomes final, and the status says
// finality stalls and who is missing; once that node votes again (it is
// restarted with voting on), finality resumes and nothing final was
// reverted.
func TestFinalityStallsWithoutAThird(t *testing.T) { finalityStall(t, "") }

// TestNoVoteNodeStallsFinality: the same on a lab network, the silent
// third being the byzantine no-vote behaviour (docs/ATTACKS.md, section
// 6); it comes back as an honest voter.
func TestNoVoteNodeStallsFinality(t *testing.T) { finalityStall(t, "no-vote") }

// finalityStall runs the stall with node 3 silenced by --vote=false or,
// on a lab network, by the byzantine behaviour byz.
func finalityStall(t *testing.T, byz string) {
	cfgs := make([]Config, 3)
	d := startNet(t, []uint64{1, 1, 1}, func(i int, c *Config) {
		if i == 3 {
			c.NoVote = byz == ""
			c.Byzantine = byz
		}
		cfgs[i-1] = *c
	}, func(p *GenesisParams) {
		p.ChainID = "posd-fintest"
		p.SlotMs = finNetSlotMs
		p.Lab = byz != ""
	})
	if got := d.Nodes[2].API().Status().Byzantine; got != byz {
		t.Fatalf("node 3's status says byzantine %q, want %q", got, byz)
	}
	waitPeers(t, d, 2)
	silent := d.Nodes[2].Address()
	u, _ := keystore.Generate()
	sendFrom(t, d.Nodes[0], u, chain.Transaction{Type: chain.TxExchange, To: u.Address(), Amount: 100})

	// Blocks go on (the heartbeat beats: the payment is not final), and
	// finality stays at genesis.
	waitUntil(t, 60*time.Second, "finality reported stalled", func() bool {
		st := d.Nodes[0].API().Status()
		return st.FinalityStalled != nil
	})
	for i, n := range d.Nodes {
		if _, j, f := finOf(n); f != 0 || j != 0 {
			t.Fatalf("node %d: justified %d, finalized %d with a third of the stake silent", i+1, j, f)
		}
	}
	st := d.Nodes[0].API().Status()
	if st.FinalizedHeight == nil || *st.FinalizedHeight != 0 || st.Height <= rpc.FinalityStallBlocks {
		t.Fatalf("status %+v: want finalized 0 and head above %d", st, rpc.FinalityStallBlocks)
	}
	stall := st.FinalityStalled
	if len(stall.Missing) != 1 || stall.Missing[0].Address != silent || stall.MissingLots != 1 || stall.TotalLots != 3 {
		t.Fatalf("stall %+v: want the silent node %s missing, 1 of 3 lots", stall, silent)
	}
	f, err := d.Nodes[0].API().Finality() // the node whose status said so: its head only grows
	if err != nil || f.Stalled == nil || len(f.Checkpoints) < 2 {
		t.Fatalf("finality %+v, %v: want stalled, with tallies", f, err)
	}
	// The head's own votes may still be on their way; below it, two of
	// three lots voted for every checkpoint.
	for _, c := range f.Checkpoints[1:] {
		if c.VotedLots != 2 || c.TotalLots != 3 || c.Justified || len(c.Missing) != 1 || c.Missing[0].Address != silent {
			t.Fatalf("checkpoint %d: %+v, want 2 of 3 lots, the silent node missing", c.Height, c)
		}
	}
	stalledAt := d.Nodes[0].API().Height()

	// The silent node comes back voting.
	d.Nodes[2].Close()
	c := cfgs[2]
	c.NoVote, c.Byzantine = false, ""
	c.Join, c.NoJoin = d.Nodes[0].APIURL(), false
	back, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	d.Nodes[2] = back

	fin, cancel := d.Nodes[0].chain.SubscribeFinality()
	defer cancel()
	timeout := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case ev := <-fin:
			done = ev.Type == rpc.EventFinalized && ev.Checkpoint.Height >= stalledAt
		case <-timeout:
			h, j, f := finOf(d.Nodes[0])
			t.Fatalf("finality did not resume: head %d justified %d finalized %d", h, j, f)
		}
	}
	// Every node agrees on what is final, and it is on every main chain.
	waitUntil(t, 30*time.Second, "every node past the stall's height in finality", func() bool {
		for _, n := range d.Nodes {
			if _, _, f := finOf(n); f < stalledAt {
				return false
			}
		}
		return true
	})
	for i, n := range d.Nodes {
		_, _, f := finOf(n)
		for _, m := range d.Nodes {
			h, err := m.chain.HashAt(f)
			if err != nil {
				continue // m has not reached it yet
			}
			if mine, _ := n.chain.HashAt(f); mine != h {
				t.Fatalf("node %d's final block %d is not on another node's main chain", i+1, f)
			}
		}
		if st := n.API().Status(); st.FinalityStalled != nil && st.Height-*st.FinalizedHeight > rpc.FinalityStallBlocks+4 {
			t.Errorf("node %d still reports a stall after finality resumed: %+v", i+1, st.FinalityStalled)
		}
	}
	if n := d.Nodes[0].chain.Stats().Reorgs; n > 0 {
		t.Logf("node 1 reorganised %d times", n)
	}
}

// TestSyncComputesTheSameFinality: a fresh node syncing a chain whose
// blocks carry votes computes the same justified and finalized
// checkpoints (the same record) as the node it synced from. The length
// is POSD_TEST_SYNC_BLOCKS (default 200; the 5,000 by hand).
func TestSyncComputesTheSameFinality(t *testing.T) {
	want := uint64(200)
	if s := os.Getenv("POSD_TEST_SYNC_BLOCKS"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		want = v
	}
	d := startNet(t, []uint64{1, 1, 1}, nil, func(p *GenesisParams) {
		p.ChainID = "posd-finsync"
		p.HeartbeatMs = 50 // blocks come fast: the test is about length
	})
	waitPeers(t, d, 2)
	load := startLoad(t, d, 3, 50*time.Millisecond)
	waitUntil(t, time.Duration(want/2+60)*time.Second, fmt.Sprintf("height %d", want), func() bool {
		return d.Nodes[0].API().Height() >= want
	})
	load.stop()
	waitUntil(t, 60*time.Second, "the chain at rest with every load block final", func() bool {
		if !agreed(d.Nodes...) {
			return false
		}
		n := d.Nodes[0]
		_, _, f := finOf(n)
		for h := n.API().Height(); h > f; h-- {
			if b, err := n.API().BlockByHeight(h); err != nil || len(b.Transactions) > 0 {
				return false // a block with transactions above the final one
			}
		}
		return true
	})
	src := d.Nodes[0]
	late := joinLate(t, d)
	waitUntil(t, 120*time.Second, "the fresh node synced", func() bool { return agreed(src, late) })
	a, b := src.chain.Snapshot(), late.chain.Snapshot()
	if a.HeadHash() != b.HeadHash() {
		t.Fatal("the chain moved while resting")
	}
	fa, fb := a.Finality(), b.Finality()
	t.Logf("height %d: justified %s, finalized %s", a.Height(), fa.Justified, fa.Finalized)
	if fa.Finalized.Height+4 < a.Height() || fa.Finalized.Height == 0 {
		t.Fatalf("source's finalized %d far below head %d", fa.Finalized.Height, a.Height())
	}
	if fa.Justified != fb.Justified || fa.Finalized != fb.Finalized || !fa.Equal(fb) {
		t.Fatalf("synced node: justified %s finalized %s; source: %s %s (records equal: %v)", fb.Justified, fb.Finalized, fa.Justified, fa.Finalized, fa.Equal(fb))
	}
	var votes int
	for h := uint64(1); h <= a.Height(); h++ {
		blk, err := late.chain.BlockByHeight(h)
		if err != nil {
			t.Fatal(err)
		}
		votes += len(blk.Votes)
	}
	if votes < int(a.Height()) {
		t.Fatalf("%d votes in %d blocks: the chain barely carries votes", votes, a.Height())
	}
}

// TestHeartbeatV3RestsWhenFinal: on an idle single-staker network with
// heartbeat on and the node voting, a payment's block gets empty blocks on
// top, one each time the head is heartbeat_ms old, until it is final: two
// beats (the first carries the vote that justifies it, the second the one
// that finalizes it); then the chain rests however much time passes. The
// clock is the test's.
func TestHeartbeatV3RestsWhenFinal(t *testing.T) {
	clock := newTestClock(time.Now())
	n := startTestNode(t, func(c *Config) {
		c.Now = clock.Now
		c.Genesis.Heartbeat = true
		c.Genesis.SlotMs = 2000
	})
	hb := n.API().Genesis().HeartbeatMs
	payer, _ := keystore.Generate()
	acc := account(t, n, payer.Address())
	tx := chain.Transaction{Type: chain.TxExchange, ChainID: n.API().Genesis().ChainID, From: payer.Address(), To: payer.Address(), Amount: 7, Nonce: *acc.PendingNonce + 1}
	payer.SignTx(&tx)
	if _, err := n.API().SubmitTx(tx); err != nil {
		t.Fatal(err)
	}
	clock.Set(max(clock.Now().UnixMilli(), time.Now().UnixMilli()) + 1)
	waitUntil(t, 30*time.Second, "the payment's block", func() bool { n.forger.Poke(); return n.API().Height() == 1 })
	for want := uint64(2); want <= 3; want++ {
		head := n.API().Head()
		// The node's vote on the head is pooled before the beat is due.
		waitUntil(t, 10*time.Second, "the vote on the head", func() bool {
			return len(n.fin.Select(n.chain.Snapshot(), 10)) > 0
		})
		clock.Set(head.Timestamp + hb - 1)
		forgerLooked(t, n)
		if n.API().Height() != want-1 {
			t.Fatalf("a block at height %d when the head was only %d ms old", want, hb-1)
		}
		clock.Set(head.Timestamp + hb)
		waitUntil(t, 30*time.Second, "a heartbeat", func() bool { n.forger.Poke(); return n.API().Height() == want })
		if b := n.API().Head(); len(b.Transactions) != 0 || len(b.Votes) != 1 {
			t.Fatalf("heartbeat %d: %d txs, %d votes, want an empty block with the node's vote", want, len(b.Transactions), len(b.Votes))
		}
	}
	_, j, f := finOf(n)
	if j != 2 || f != 1 {
		t.Fatalf("after two beats: justified %d, finalized %d, want 2 and 1 (the payment final)", j, f)
	}
	info, err := n.API().TxInfo(tx.ID())
	if err != nil || !info.Final {
		t.Fatalf("payment %+v, %v: want final", info, err)
	}
	for range 3 {
		clock.Add(10 * time.Duration(n.API().Genesis().SlotMs) * time.Millisecond)
		forgerLooked(t, n)
	}
	if h := n.API().Height(); h != 3 {
		t.Fatalf("height %d after the payment was final, want the chain resting at 3", h)
	}
}

// TestHeartbeatV3OnDevnet: three voting nodes; after one payment the
// network beats until the payment is final on every node and then rests,
// a few blocks above it rather than max_reorg.
func TestHeartbeatV3OnDevnet(t *testing.T) {
	d := startNet(t, []uint64{1, 1, 1}, nil)
	waitPeers(t, d, 2)
	k, _ := keystore.Generate()
	id := sendFrom(t, d.Nodes[1], k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 5})
	fin, cancel := d.Nodes[1].chain.SubscribeFinality()
	defer cancel()
	waitFinal(t, d.Nodes[1], id, fin, time.Now())
	info, _ := d.Nodes[1].API().TxInfo(id)
	paid := *info.Height
	slot := time.Duration(d.Nodes[0].API().Genesis().SlotMs) * time.Millisecond
	waitUntil(t, 30*time.Second, "every node on one head", func() bool { return agreed(d.Nodes...) })
	for _, n := range d.Nodes {
		head := n.API().Head()
		waitUntil(t, 30*time.Second, "the head three slots old", func() bool {
			return time.Since(time.UnixMilli(head.Timestamp)) > 3*slot
		})
		forgerLooked(t, n)
	}
	if !agreed(d.Nodes...) {
		t.Fatal("the nodes parted while resting")
	}
	h := d.Nodes[0].API().Height()
	if h < paid+2 || h > paid+4 {
		t.Fatalf("resting at %d with the payment at %d: want 2 to 4 beats (until final), not max_reorg", h, paid)
	}
	for i, n := range d.Nodes {
		if _, _, f := finOf(n); f < paid {
			t.Fatalf("node %d resting with finalized %d below the payment at %d", i+1, f, paid)
		}
	}
}
