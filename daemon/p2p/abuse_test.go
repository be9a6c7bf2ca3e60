package p2p

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/mempool"
)

// silentChain shares the genesis, claims height 2^40 and never answers a
// sync request (until release closes).
type silentChain struct {
	*fakeChain
	release chan struct{}
}

func (s *silentChain) Head() (uint64, chain.Hash) { return 1 << 40, chain.Hash{0x51} }

func (s *silentChain) Blocks(uint64, int) ([]*chain.Block, error) {
	<-s.release
	return nil, errors.New("silent")
}

// TestSilentPeersDoNotDelayCatchUp (A6): four peers claim height 2^40 and
// never answer sync; a node that restarts next to them and one honest peer
// catches up in seconds, and leaves the silent ones alone afterwards.
func TestSilentPeersDoNotDelayCatchUp(t *testing.T) {
	honest := newFakeChain("g")
	honest.extend(300, 0)
	h := startNode(t, honest, nil)
	release := make(chan struct{})
	var silent []*Node
	for range 4 {
		silent = append(silent, startNode(t, &silentChain{newFakeChain("g"), release}, nil))
	}
	t.Cleanup(func() { close(release) }) // runs before the nodes close

	// The victim restarts next to the silent peers: they are its sync
	// candidates when the honest peer joins.
	victim := newFakeChain("g")
	v := startNode(t, victim, nil, silent...)
	waitFor(t, 20*time.Second, "the victim to know the silent peers", func() bool { return len(v.Peers()) == 4 })
	start := time.Now()
	if err := v.Connect(context.Background(), h.Addrs()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the victim at the honest height", func() bool { return victim.height() == 300 })
	took := time.Since(start)
	t.Logf("caught up 300 blocks next to 4 silent peers in %s", took.Round(time.Millisecond))
	if !slices.Equal(victim.hashes(), honest.hashes()) {
		t.Fatal("the victim's chain differs")
	}
	// Before: each silent peer held the one sync loop 30 s (150 s in all).
	// Hedged requests with per-peer timeouts: about hedgeDelay per silent
	// peer, once. 15 s leaves room for a loaded 2-core machine.
	if took > 15*time.Second {
		t.Fatalf("catch-up took %s, want seconds", took)
	}
	// The silent peers that were asked are left alone for a while, but
	// silence breaks no rule: they stay connected and unpunished.
	for _, s := range silent {
		if v.book.penaltyOf(s.host.ID(), time.Now()) != 0 || v.gater.isBanned(s.host.ID()) {
			t.Fatalf("silent peer %s penalised", s.ID())
		}
	}

	// More blocks later: the victim follows at once, whatever the silent
	// peers claim.
	for _, b := range honest.extend(20, 0) {
		h.PublishBlock(b)
	}
	waitFor(t, 30*time.Second, "the victim at 320", func() bool { return victim.height() == 320 })
}

// TestSyncPeerBreakingRulesIsPenalised: a peer that answers sync with
// garbage is left alone and held to account; the honest peer serves.
func TestSyncPeerBreakingRulesIsPenalised(t *testing.T) {
	honest := newFakeChain("g")
	honest.extend(50, 0)
	liar := newFakeChain("g")
	liar.extend(60, 7)
	// The liar serves blocks whose heights do not follow.
	bad := &lyingChain{liar}
	h := startNode(t, honest, nil)
	l := startNode(t, bad, nil)
	victim := newFakeChain("g")
	v := startNode(t, victim, nil, l, h)
	waitFor(t, 30*time.Second, "the victim at 50", func() bool { return victim.height() >= 50 })
	waitFor(t, 30*time.Second, "the liar penalised", func() bool { return v.book.penaltyOf(l.host.ID(), time.Now()) > 0 })
	if v.book.penaltyOf(h.host.ID(), time.Now()) != 0 {
		t.Fatal("the honest peer was penalised")
	}
}

// lyingChain serves every range with the heights off by one.
type lyingChain struct{ *fakeChain }

func (l *lyingChain) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	return l.fakeChain.Blocks(from+1, limit)
}

// poolChain is a Handler with a real pool for transactions (real
// signatures, a real state) and fakeChain's blocks.
type poolChain struct {
	*fakeChain
	mu      sync.RWMutex
	st      *chain.State
	pool    *mempool.Pool
	batches atomic.Int64
	txsSeen atomic.Int64
}

func (c *poolChain) HandleTxs(txs []chain.Transaction) ([]chain.Transaction, error) {
	c.batches.Add(1)
	c.txsSeen.Add(int64(len(txs)))
	errs, ready := c.pool.AdmitUnder(txs, func(fn func(mempool.StateView)) {
		c.mu.RLock()
		defer c.mu.RUnlock()
		fn(c.st)
	})
	for _, err := range errs {
		if errors.Is(err, chain.ErrBadSignature) || errors.Is(err, chain.ErrWrongChain) {
			return nil, Reject(err)
		}
	}
	return ready, nil
}

// TestTxFloodDoesNotStarveBlocks (A7): a peer gossips 4,096-transaction
// batches signed by unfunded keys, several messages a second, while
// another peer gossips blocks; the victim keeps up with the blocks.
func TestTxFloodDoesNotStarveBlocks(t *testing.T) {
	// Blocks must come by gossip: sync (on status polls) would hide a
	// starved block validator.
	old := pollInterval
	pollInterval = time.Hour
	t.Cleanup(func() { pollInterval = old }) // after the nodes' Close
	g := chain.DefaultGenesis()
	g.ChainID = "test"
	victimChain := &poolChain{fakeChain: newFakeChain("g"), st: g.State()}
	victimChain.pool = mempool.New(g, mempool.Config{})

	// 8,192 transfers from 64 unfunded keys; messages are 4,096-long
	// windows at different offsets, so every message is new to gossip.
	var flood []chain.Transaction
	for k := range 64 {
		seed := make([]byte, ed25519.SeedSize)
		binary.BigEndian.PutUint64(seed, uint64(k)+1)
		priv := ed25519.NewKeyFromSeed(seed)
		for n := range 128 {
			tx := chain.Transaction{Type: chain.TxTransfer, ChainID: "test", To: "00000000000000000000000000000000000000aa", Amount: 1, Fee: 1, Nonce: uint64(n) + 1}
			tx.Sign(priv)
			flood = append(flood, tx)
		}
	}

	producerChain := newFakeChain("g")
	producer := startNode(t, producerChain, nil)
	attacker := startNode(t, newFakeChain("g"), nil)
	victim := startNode(t, victimChain, nil, producer, attacker)
	waitFor(t, 20*time.Second, "meshes", func() bool { return inMesh(victim, producer) && inMesh(victim, attacker) })

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var floodDone sync.WaitGroup
	floodDone.Go(func() {
		tick := time.NewTicker(125 * time.Millisecond) // 8 messages a second
		defer tick.Stop()
		for i := 0; ; i++ {
			off := (i * 131) % 4096
			window := slices.Concat(flood[off:], flood[:off])[:4096]
			attacker.PublishTxs(window)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	defer floodDone.Wait()
	defer stop()

	// The producer gossips a block every 100 ms for 8 s.
	const blocks = 80
	for range blocks {
		for _, b := range producerChain.extend(1, 0) {
			producer.PublishBlock(b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// With the flood still on, the victim has every block soon after: a
	// block waits for no transaction (before, it queued behind seconds of
	// signature checks and the victim fell behind). 5 s is generous: the
	// block itself costs microseconds.
	waitFor(t, 5*time.Second, "the victim at the producer's head", func() bool {
		return victimChain.height() == blocks
	})
	if !slices.Equal(victimChain.hashes(), producerChain.hashes()) {
		t.Fatal("heads differ")
	}
	// The flood did reach the victim (else this test proves nothing), and
	// not one of its transactions was pooled.
	if victimChain.txsSeen.Load() < 4096 {
		t.Fatalf("only %d flood transactions reached the victim", victimChain.txsSeen.Load())
	}
	if victimChain.pool.Len() != 0 {
		t.Fatalf("%d unfunded transactions pooled", victimChain.pool.Len())
	}
	t.Logf("flood: %d messages (%d txs) validated by the victim while it followed %d blocks",
		victimChain.batches.Load(), victimChain.txsSeen.Load(), blocks)
}

func TestPeerBudgets(t *testing.T) {
	b := newPeerBook(Config{TxMsgRate: 2, TxRate: 100, BlockMsgRate: 1})
	p := peer.ID("p")
	now := time.Now()
	// The tx budget allows a burst of one full batch, then refuses.
	if !b.admitTxs(p, maxBatchTxs, now) {
		t.Fatal("first batch refused")
	}
	b.doneTxs(p)
	if b.admitTxs(p, maxBatchTxs, now) {
		t.Fatal("second full batch at once admitted")
	}
	// Messages: burst 4 at 2/s.
	q := peer.ID("q")
	for i := range 4 {
		if !b.admitTxs(q, 1, now) {
			t.Fatalf("message %d refused", i)
		}
		b.doneTxs(q)
	}
	if b.admitTxs(q, 1, now) {
		t.Fatal("message budget (burst 4) exceeded")
	}
	if !b.admitTxs(q, 1, now.Add(time.Second)) {
		t.Fatal("budget not refilled after a second")
	}
	b.doneTxs(q)
	// In flight: at most maxTxInflight of one peer.
	wide := newPeerBook(Config{TxMsgRate: 1000, TxRate: 1e6})
	for i := range maxTxInflight {
		if !wide.admitTxs(q, 1, now) {
			t.Fatalf("message %d refused", i)
		}
	}
	if wide.admitTxs(q, 1, now) {
		t.Fatal("more than maxTxInflight in flight")
	}
	wide.doneTxs(q)
	if !wide.admitTxs(q, 1, now) {
		t.Fatal("a freed slot not reused")
	}
	// Blocks: burst 2 at 1/s.
	var got []bool
	for range 3 {
		got = append(got, b.admitBlock(p, now))
	}
	if !slices.Equal(got, []bool{true, true, false}) {
		t.Fatalf("block budget: %v", got)
	}
	// Offences decay by half each penaltyHalfLife and survive forget.
	b.penalize(p, 8, now)
	b.forget(p, now)
	if got := b.penaltyOf(p, now.Add(penaltyHalfLife)); got < 3.99 || got > 4.01 {
		t.Fatalf("penalty after a half-life = %v, want 4", got)
	}
	b.forget(q, now)
	if _, ok := b.peers[q]; ok {
		t.Fatal("a blameless peer's account kept after it left")
	}
}

// TestRepeatedOffencesDisconnect: a peer that keeps sending garbage is
// disconnected and refused for a while; an honest one is not.
func TestRepeatedOffencesDisconnect(t *testing.T) {
	a := startNode(t, newFakeChain("g"), nil)
	b := startNode(t, newFakeChain("g"), nil, a)
	waitFor(t, 10*time.Second, "peers", func() bool { return hasPeer(a, b.ID()) })
	msg := &pubsub.Message{Message: &pb.Message{Data: []byte{1, 2, 3}}}
	for range banPenalty + 1 { // offences decay a little between calls
		if r := a.validateTxMessage(context.Background(), b.host.ID(), msg); r != pubsub.ValidationReject {
			t.Fatalf("garbage: %v", r)
		}
	}
	waitFor(t, 10*time.Second, "the offender dropped", func() bool { return !hasPeer(a, b.ID()) })
	if !a.gater.isBanned(b.host.ID()) {
		t.Fatal("offender not banned")
	}
	if err := b.Connect(context.Background(), a.Addrs()); err == nil && hasPeer(a, b.ID()) {
		t.Fatal("offender reconnected")
	}
}

// countingChain counts the sync requests it serves.
type countingChain struct {
	*fakeChain
	served atomic.Int64
}

func (c *countingChain) Blocks(from uint64, limit int) ([]*chain.Block, error) {
	c.served.Add(1)
	return c.fakeChain.Blocks(from, limit)
}

// stuckFork claims another head at height 0 and takes every block without
// ever moving it (as a node does with side blocks fork choice passes over).
type stuckFork struct{ *fakeChain }

func (stuckFork) Head() (uint64, chain.Hash)     { return 0, chain.Hash{0xf0} }
func (stuckFork) HandleBlock(*chain.Block) error { return nil }

// TestNoSyncSpin: a sync that never moves our head is not repeated before
// the next poll, however willingly the blocks are taken.
func TestNoSyncSpin(t *testing.T) {
	server := &countingChain{fakeChain: newFakeChain("g")}
	s := startNode(t, server, nil)
	startNode(t, stuckFork{newFakeChain("g")}, nil, s)
	waitFor(t, 10*time.Second, "a first sync request", func() bool { return server.served.Load() > 0 })
	time.Sleep(pollInterval / 2) // a negative check: nothing more may happen
	if n := server.served.Load(); n > 2 {
		t.Fatalf("%d sync requests within half a poll interval: the sync loop spins", n)
	}
}

// TestOrphanFloodDisconnects: a peer that gossips blocks on random parents
// it cannot serve by sync is penalised for each and disconnected past the
// threshold; an honest peer whose block the victim could not connect
// serves the parent by sync and is not blamed.
func TestOrphanFloodDisconnects(t *testing.T) {
	old := pollInterval
	pollInterval = time.Hour                 // only gossip starts a sync
	t.Cleanup(func() { pollInterval = old }) // after the nodes' Close
	victimChain, honestChain := &orphanCounter{fakeChain: newFakeChain("g")}, newFakeChain("g")
	victim := startNode(t, victimChain, nil)
	honest := startNode(t, honestChain, nil, victim)
	attacker := startNode(t, newFakeChain("g"), nil, victim)
	waitFor(t, 20*time.Second, "the victim's peers on the block topic", func() bool {
		return len(victim.blkTopic.ListPeers()) == 2 && len(attacker.blkTopic.ListPeers()) == 1 && len(honest.blkTopic.ListPeers()) == 1
	})

	// The honest peer is ahead; its newest block has a parent the victim
	// lacks, and sync brings it.
	honestChain.extend(30, 0)
	honest.PublishBlock(honestChain.extend(1, 0)[0])
	waitFor(t, 20*time.Second, "the victim synced from the honest peer", func() bool { return victimChain.height() == 31 })

	// The attacker sends blocks on random parents, each once the victim
	// took the one before (within its block budget): each starts a sync
	// with the attacker, which serves nothing and settles the claims
	// before it.
	sent := 0
	for hasPeer(victim, attacker.ID()) {
		if sent >= 3*banPenalty {
			t.Fatalf("attacker still connected after %d orphan blocks, penalty %.1f", sent, victim.book.penaltyOf(attacker.host.ID(), time.Now()))
		}
		var parent chain.Hash
		binary.BigEndian.PutUint64(parent[:], uint64(sent)+1)
		attacker.PublishBlock(&chain.Block{Header: chain.Header{Height: 1000 + uint64(sent), PrevHash: parent, Forger: "junk"}})
		sent++
		waitFor(t, 20*time.Second, "the victim took the orphan block", func() bool {
			return victimChain.orphans.Load() >= int64(sent) || !hasPeer(victim, attacker.ID())
		})
	}
	t.Logf("attacker disconnected after %d orphan blocks", sent)
	if !victim.gater.isBanned(attacker.host.ID()) {
		t.Fatal("the attacker is not banned")
	}
	if sent < banPenalty {
		t.Fatalf("disconnected after %d orphan blocks, fewer than the threshold %d", sent, banPenalty)
	}
	if p := victim.book.penaltyOf(honest.host.ID(), time.Now()); p != 0 || !hasPeer(victim, honest.ID()) {
		t.Fatalf("honest peer: penalty %.1f, connected %v", p, hasPeer(victim, honest.ID()))
	}
}

// orphanCounter is a fakeChain that counts the blocks it found no parent for.
type orphanCounter struct {
	*fakeChain
	orphans atomic.Int64
}

func (c *orphanCounter) HandleBlock(b *chain.Block) error {
	err := c.fakeChain.HandleBlock(b)
	if errors.Is(err, ErrUnknownParent) {
		c.orphans.Add(1)
	}
	return err
}

// syncRecOf is a copy of n's sync record of p (zero if none).
func syncRecOf(n *Node, p peer.ID) syncRecord {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r := n.syncRecs[p]; r != nil {
		return *r
	}
	return syncRecord{}
}

// hintOf is the lowest height of p's blocks on unknown parents that n
// will sync from (0: none).
func hintOf(n *Node, p peer.ID) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hints[p].height
}

// orphanClaimsOf is how many of p's orphan claims n holds unjudged.
func orphanClaimsOf(n *Node, p peer.ID) int {
	n.book.mu.Lock()
	defer n.book.mu.Unlock()
	if a := n.book.peers[p]; a != nil {
		return len(a.orphans)
	}
	return 0
}

// TestOrphanClaimsNeedACompleteSync: a peer's blocks on parents we lack
// are judged only by a sync session with it that ran to its head. A busy
// peer (every serving slot taken: it resets the range request) is not
// blamed, and its claim waits; a claim on a block at or below our height
// (sync, asking from our height on, cannot bring its parent) is dropped
// by a session that brings nothing; one above it is still judged.
func TestOrphanClaimsNeedACompleteSync(t *testing.T) {
	old := pollInterval
	pollInterval = time.Hour                 // only gossip starts a sync
	t.Cleanup(func() { pollInterval = old }) // after the nodes' Close
	t.Run("busy peer", func(t *testing.T) {
		victimChain, honestChain := newFakeChain("g"), newFakeChain("g")
		victim := startNode(t, victimChain, nil)
		honest := startNode(t, honestChain, nil, victim)
		waitFor(t, 20*time.Second, "both on the block topic", func() bool {
			return len(victim.blkTopic.ListPeers()) == 1 && len(honest.blkTopic.ListPeers()) == 1
		})
		for range cap(honest.serveSem) {
			honest.serveSem <- struct{}{}
		}
		honestChain.extend(5, 0)
		honest.PublishBlock(honestChain.extend(1, 0)[0])
		id := honest.host.ID()
		waitFor(t, 20*time.Second, "the sync with the busy peer failed", func() bool { return syncRecOf(victim, id).fails > 0 })
		if p := victim.book.penaltyOf(id, time.Now()); p != 0 {
			t.Fatalf("a busy peer penalised %.1f for its block", p)
		}
		if n := orphanClaimsOf(victim, id); n != 1 {
			t.Fatalf("%d claims held after a failed sync, want the one, unjudged", n)
		}
	})
	t.Run("at or below our height", func(t *testing.T) {
		victimChain, honestChain := newFakeChain("g"), newFakeChain("g")
		victim := startNode(t, victimChain, nil)
		honest := startNode(t, honestChain, nil, victim)
		waitFor(t, 20*time.Second, "both on the block topic", func() bool {
			return len(victim.blkTopic.ListPeers()) == 1 && len(honest.blkTopic.ListPeers()) == 1
		})
		honestChain.extend(5, 0)
		honest.PublishBlock(honestChain.extend(1, 0)[0])
		waitFor(t, 20*time.Second, "the victim synced", func() bool { return victimChain.height() == 6 })
		id := honest.host.ID()
		// A side block at height 3 on a parent the victim lacks.
		honest.PublishBlock(&chain.Block{Header: chain.Header{Height: 3, PrevHash: chain.Hash{3}, Forger: "f0rger"}})
		waitFor(t, 20*time.Second, "a sync that brought nothing", func() bool {
			return syncRecOf(victim, id).soft && orphanClaimsOf(victim, id) == 0
		})
		if p := victim.book.penaltyOf(id, time.Now()); p != 0 {
			t.Fatalf("penalised %.1f for a block below our height", p)
		}
		// Another block below our height does not lift the backoff: a
		// peer announcing such blocks on made-up parents gets one
		// session per backoff, not one per message.
		// (Published again, on another made-up parent, until one is seen:
		// a gossip message can be lost on a loaded machine.)
		var sent byte
		var last time.Time
		waitFor(t, 20*time.Second, "a second block below our height seen", func() bool {
			if orphanClaimsOf(victim, id) > 0 && hintOf(victim, id) == 4 {
				return true
			}
			if time.Since(last) > 250*time.Millisecond {
				sent++
				last = time.Now()
				honest.PublishBlock(&chain.Block{Header: chain.Header{Height: 4, PrevHash: chain.Hash{4, sent}, Forger: "f0rger"}})
			}
			return false
		})
		if r := syncRecOf(victim, id); !r.soft || !time.Now().Before(r.until) {
			t.Fatalf("a block below our height lifted the backoff: %+v", r)
		}
		// Above our height, a parent it cannot serve is an offence.
		honest.PublishBlock(&chain.Block{Header: chain.Header{Height: 9, PrevHash: chain.Hash{9}, Forger: "f0rger"}})
		waitFor(t, 20*time.Second, "the claim above our height judged", func() bool {
			return victim.book.penaltyOf(id, time.Now()) > 0.5
		})
	})
}

// TestSyncParentNotKeptIsOurs: a synced block whose parent the peer sent
// just before it, but this node did not keep, fails the sync on our side:
// the peer is not penalised, nor backed off as for a rule break.
func TestSyncParentNotKeptIsOurs(t *testing.T) {
	old := pollInterval
	pollInterval = time.Hour
	t.Cleanup(func() { pollInterval = old })
	victimChain, honestChain := newFakeChain("g"), newFakeChain("g")
	victimChain.blockErr = func(b *chain.Block) error {
		if b.Height == 3 {
			return ErrIgnore // not kept, nobody's fault
		}
		return nil
	}
	victim := startNode(t, victimChain, nil)
	honest := startNode(t, honestChain, nil, victim)
	waitFor(t, 20*time.Second, "both on the block topic", func() bool {
		return len(victim.blkTopic.ListPeers()) == 1 && len(honest.blkTopic.ListPeers()) == 1
	})
	honestChain.extend(5, 0)
	honest.PublishBlock(honestChain.extend(1, 0)[0])
	id := honest.host.ID()
	waitFor(t, 20*time.Second, "the sync ended", func() bool { return !syncRecOf(victim, id).until.IsZero() })
	if r := syncRecOf(victim, id); r.fails != 0 || victim.book.penaltyOf(id, time.Now()) != 0 {
		t.Fatalf("the peer blamed: %d failures, penalty %.1f", r.fails, victim.book.penaltyOf(id, time.Now()))
	}
	if h := victimChain.height(); h != 2 {
		t.Fatalf("victim at height %d, want 2", h)
	}
}
