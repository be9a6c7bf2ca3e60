package p2p

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
)

// TestTxTurns: turns come in the order they were given, whatever order
// their calls begin in; each turn's done runs once, when it ends, when
// its wait is given up, or when it is passed over because its call never
// began; no more than maxTxPending are out.
func TestTxTurns(t *testing.T) {
	var q txTurns
	now := time.Now()
	var dones [4]atomic.Int32
	turns := make([]*txTurn, len(dones))
	for i := range turns {
		turns[i] = q.give(now, func() { dones[i].Add(1) })
	}
	// The calls of turns 2, 1 and 0 begin in that order; they run 0, 1, 2.
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for _, i := range []int{2, 1, 0} {
		started := make(chan struct{})
		wg.Go(func() {
			close(started)
			if !q.wait(context.Background(), turns[i]) {
				t.Errorf("turn %d not given", i)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			q.end(turns[i])
		})
		<-started
		time.Sleep(time.Millisecond) // let the call reach its wait
	}
	wg.Wait()
	if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
		t.Fatalf("ran in the order %v, want [0 1 2]", order)
	}
	// Turn 3 is the head now; q.end again is harmless.
	q.end(turns[0])
	for i := range 3 {
		if n := dones[i].Load(); n != 1 {
			t.Errorf("turn %d: done ran %d times", i, n)
		}
	}

	// A wait given up (its context ends) ends the turn and gives the next.
	next := q.give(now, func() {})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.mu.Lock()
	turns[3].arrived = true // its call began, then its context ended
	q.mu.Unlock()
	if q.wait(ctx, turns[3]) {
		select {
		case <-turns[3].ready: // it was the head: either may win the select
			q.end(turns[3])
		default:
			t.Fatal("wait said the turn came")
		}
	}
	if dones[3].Load() != 1 {
		t.Fatal("a given-up turn's done did not run")
	}
	select {
	case <-next.ready:
	default:
		t.Fatal("the turn after a given-up one did not come")
	}

	// A turn whose call never begins is passed over once it is old.
	var lateDone atomic.Int32
	late := q.give(now, func() { lateDone.Add(1) })
	q.end(next) // late is the head, its call not begun
	after := q.give(now.Add(abandonedTurnAfter/2), func() {})
	q.passOver(now.Add(abandonedTurnAfter * 3 / 4))
	if q.pending() != 2 {
		t.Fatalf("%d turns out before the wait is over, want 2", q.pending())
	}
	q.passOver(now.Add(abandonedTurnAfter * 5 / 4))
	if q.pending() != 1 || lateDone.Load() != 1 {
		t.Fatalf("%d turns out, passed-over done ran %d times", q.pending(), lateDone.Load())
	}
	select {
	case <-after.ready:
	default:
		t.Fatal("the turn after a passed-over one did not come")
	}
	// A passed-over turn's call that begins late runs at once, and its
	// end changes nothing.
	if !q.wait(context.Background(), late) {
		t.Fatal("a late call was refused")
	}
	q.end(late)
	if q.pending() != 1 || lateDone.Load() != 1 {
		t.Fatalf("a late call's end: %d turns out, done ran %d times", q.pending(), lateDone.Load())
	}
	q.end(after)

	// At most maxTxPending turns are out.
	for range maxTxPending {
		if q.give(now, func() {}) == nil {
			t.Fatal("a turn refused below maxTxPending")
		}
	}
	if q.give(now, func() {}) != nil {
		t.Fatal("more than maxTxPending turns given")
	}
}

// pending is how many turns are out.
func (q *txTurns) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// gatedChain is a fakeChain whose HandleTxs waits for its gate, and
// records the amounts of the first transaction of each message handled.
type gatedChain struct {
	*fakeChain
	gate  chan struct{}
	mu    sync.Mutex
	first []uint64
}

func (g *gatedChain) HandleTxs(txs []chain.Transaction) ([]chain.Transaction, error) {
	<-g.gate
	g.mu.Lock()
	g.first = append(g.first, txs[0].Amount)
	g.mu.Unlock()
	return g.fakeChain.HandleTxs(txs)
}

func (g *gatedChain) handled() []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]uint64(nil), g.first...)
}

// TestTxMessagesInOrderAndShared: a peer's burst of tx messages is
// handled in the order it sent them, and one peer flooding while the
// node is busy takes at most maxTxInflight turns: another peer's messages
// still get theirs. (With the tx validator run whole on the router's
// worker, the flood filled the router's queue and the other peer's
// messages were dropped; with the validators asynchronous and no turns,
// a burst ran in any order, often newest first.)
func TestTxMessagesInOrderAndShared(t *testing.T) {
	victimChain := &gatedChain{fakeChain: newFakeChain("g"), gate: make(chan struct{})}
	var open sync.Once
	release := func() { open.Do(func() { close(victimChain.gate) }) }
	honest := startNode(t, newFakeChain("g"), nil)
	flooder := startNode(t, newFakeChain("g"), nil)
	victim := startNode(t, victimChain, nil, honest, flooder)
	t.Cleanup(release) // runs before the nodes close: a call held at the gate would hold Close
	waitFor(t, 20*time.Second, "meshes", func() bool { return inMesh(victim, honest) && inMesh(victim, flooder) })

	publish := func(n *Node, amount uint64) {
		data, _ := encodeTxBatch([]chain.Transaction{tx(amount)})
		if err := n.txTopic.Publish(context.Background(), data); err != nil {
			t.Fatal(err)
		}
	}
	// The flooder's 60 messages first (within its outbound queue, txQueue;
	// the first one holds the gate, the node gives turns to the next
	// maxTxInflight-1 and drops the rest), then the honest peer's 10.
	const floods, honests = 60, 10
	for i := range floods {
		publish(flooder, uint64(i)+1)
	}
	waitFor(t, 10*time.Second, "the flood taken in", func() bool {
		return victim.TxMessagesOverBudget() >= floods-maxTxInflight
	})
	for i := range honests {
		publish(honest, 1_000_000+uint64(i))
	}
	waitFor(t, 10*time.Second, "the honest messages given turns", func() bool {
		return victim.txTurns.pending() == maxTxInflight+honests
	})
	release()
	waitFor(t, 10*time.Second, "every turn over", func() bool { return victim.txTurns.pending() == 0 })

	got := victimChain.handled()
	if len(got) != maxTxInflight+honests {
		t.Fatalf("%d messages handled, want %d: %v", len(got), maxTxInflight+honests, got)
	}
	for i, a := range got {
		want := uint64(i) + 1
		if i >= maxTxInflight {
			want = 1_000_000 + uint64(i-maxTxInflight)
		}
		if a != want {
			t.Fatalf("handled in the order %v: message %d is %d, want %d", got, i, a, want)
		}
	}
}

// Turns whose calls never began are passed over by give itself: with
// every turn out abandoned, no waiter is left to pass them over. A head
// whose call began is never passed over, however long it takes.
func TestTxTurnsPassedOverByGive(t *testing.T) {
	var q txTurns
	now := time.Now()
	first := q.give(now, func() {})
	for range maxTxPending - 1 {
		if q.give(now, func() {}) == nil {
			t.Fatal("a turn refused below maxTxPending")
		}
	}
	q.mu.Lock()
	first.arrived = true // its call began: a long validation
	q.mu.Unlock()
	if q.give(now.Add(time.Hour), func() {}) != nil {
		t.Fatal("a turn given while the head's call runs and every turn is out")
	}
	q.end(first)
	if q.give(now.Add(time.Hour), func() {}) == nil || q.pending() != 1 {
		t.Fatalf("abandoned turns not passed over by give: %d out", q.pending())
	}
}

// randomPeer is a fresh peer id.
func randomPeer(t *testing.T) peer.ID {
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// inflightOf is p's tx messages in flight.
func (b *peerBook) inflightOf(p peer.ID) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a := b.peers[p]; a != nil {
		return a.inflight
	}
	return 0
}

func txMessage(amount uint64) *pubsub.Message {
	data, _ := encodeTxBatch([]chain.Transaction{tx(amount)})
	return &pubsub.Message{Message: &pb.Message{Data: data}}
}

// TestTxTurnsSharedAndReleased: five peers sending maxTxInflight messages
// each: the first four take every turn, the fifth's are dropped as over
// the turns (counted apart from budgets, its budget unspent); once
// validated, every peer's in-flight count is back to zero.
func TestTxTurnsSharedAndReleased(t *testing.T) {
	n := startNode(t, newFakeChain("g"), nil)
	ctx := context.Background()
	type held struct {
		from peer.ID
		msg  *pubsub.Message
	}
	var turns []held
	var peers []peer.ID
	amount := uint64(1)
	for range maxTxPending/maxTxInflight + 1 {
		p := randomPeer(t)
		peers = append(peers, p)
		for range maxTxInflight {
			m := txMessage(amount)
			amount++
			if n.admitTxMessage(ctx, p, m) == pubsub.ValidationAccept {
				turns = append(turns, held{p, m})
			}
		}
	}
	last := peers[len(peers)-1]
	if len(turns) != maxTxPending || n.TxMessagesOverTurns() != maxTxInflight || n.TxMessagesOverBudget() != 0 || n.book.inflightOf(last) != 0 {
		t.Fatalf("%d turns, %d over the turns, %d over budget, last peer in flight %d", len(turns), n.TxMessagesOverTurns(), n.TxMessagesOverBudget(), n.book.inflightOf(last))
	}
	for _, h := range turns {
		if r := n.validateTxs(ctx, h.from, h.msg); r != pubsub.ValidationAccept {
			t.Fatalf("a message with its turn: %v", r)
		}
	}
	for i, p := range peers {
		if got := n.book.inflightOf(p); got != 0 {
			t.Errorf("peer %d: %d in flight after every turn ended", i, got)
		}
	}
}

// TestTxTurnPassedOver: a turn whose validator call never begins (pubsub
// throttled it) holds the next message about abandonedTurnAfter, then is
// passed over and its peer's slot given back; were its call to begin
// late, it runs at once and gives back nothing twice.
func TestTxTurnPassedOver(t *testing.T) {
	n := startNode(t, newFakeChain("g"), nil)
	ctx := context.Background()
	p := randomPeer(t)
	lost, next := txMessage(1), txMessage(2)
	n.admitTxMessage(ctx, p, lost)
	n.admitTxMessage(ctx, p, next)
	start := time.Now()
	if r := n.validateTxs(ctx, p, next); r != pubsub.ValidationAccept {
		t.Fatalf("the message after the lost one: %v", r)
	}
	if waited := time.Since(start); waited < abandonedTurnAfter {
		t.Fatalf("waited %v for a turn whose call never began, want at least %v", waited, abandonedTurnAfter)
	}
	if n.book.inflightOf(p) != 0 || n.txTurns.pending() != 0 {
		t.Fatalf("after the pass-over: %d in flight, %d turns out", n.book.inflightOf(p), n.txTurns.pending())
	}
	third := txMessage(3)
	n.admitTxMessage(ctx, p, third)
	if r := n.validateTxs(ctx, p, lost); r != pubsub.ValidationAccept {
		t.Fatalf("the late call: %v", r)
	}
	if n.book.inflightOf(p) != 1 || n.txTurns.pending() != 1 {
		t.Fatalf("the late call gave back another's slot or turn: %d in flight, %d turns out", n.book.inflightOf(p), n.txTurns.pending())
	}
	if r := n.validateTxs(ctx, p, third); r != pubsub.ValidationAccept || n.book.inflightOf(p) != 0 {
		t.Fatalf("the third: %v, %d in flight", r, n.book.inflightOf(p))
	}
}
