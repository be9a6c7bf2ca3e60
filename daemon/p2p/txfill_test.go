package p2p

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/poslab/posd/chain"
)

// fillChain is a fakeChain with a per-sender nonce pool, as the node's:
// a transaction joins the pending run when its nonce follows it, else
// waits queued (a gap, reported); PooledRun serves the pending run.
type fillChain struct {
	*fakeChain
	fmu     sync.Mutex
	pending map[uint64]chain.Transaction // sender "a" only, as tx() makes
	queued  map[uint64]chain.Transaction
	top     uint64
	served  int
}

func newFillChain() *fillChain {
	return &fillChain{fakeChain: newFakeChain("g"), pending: map[uint64]chain.Transaction{}, queued: map[uint64]chain.Transaction{}}
}

func (c *fillChain) HandleTxsGaps(txs []chain.Transaction, _ bool) ([]chain.Transaction, []TxGap, error) {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	var ready []chain.Transaction
	for _, tx := range txs {
		if _, ok := c.pending[tx.Nonce]; ok || tx.Nonce <= c.top {
			continue
		}
		c.queued[tx.Nonce] = tx
	}
	for {
		tx, ok := c.queued[c.top+1]
		if !ok {
			break
		}
		delete(c.queued, c.top+1)
		c.top++
		c.pending[tx.Nonce] = tx
		ready = append(ready, tx)
	}
	if _, err := c.fakeChain.HandleTxs(ready); err != nil {
		return nil, nil, err
	}
	var gaps []TxGap
	if len(c.queued) > 0 {
		gaps = []TxGap{{From: "a", Next: c.top + 1}}
	}
	return ready, gaps, nil
}

func (c *fillChain) HandleTxs(txs []chain.Transaction) ([]chain.Transaction, error) {
	ready, _, err := c.HandleTxsGaps(txs, true)
	return ready, err
}

func (c *fillChain) PooledRun(from chain.Address, nonce uint64, limit, maxBytes int) []chain.Transaction {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	c.served++
	var out []chain.Transaction
	for n := nonce; len(out) < limit; n++ {
		tx, ok := c.pending[n]
		if !ok || from != tx.From {
			break
		}
		out = append(out, tx)
	}
	return out
}

func (c *fillChain) pendingTop() uint64 {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	return c.top
}

// TestGapFill: B missed A's gossip of nonces 1 to 1500 (its pool holds
// them, as after a dropped message); A's next gossip, nonce 1501, reaches
// B with a gap, and B asks A for the run it lacks: one answer of at most
// fillMaxTxs, then the next, until B's run joins 1501. The answers are
// charged to A's budget of transactions at B.
func TestGapFill(t *testing.T) {
	ca, cb := newFillChain(), newFillChain()
	var held []chain.Transaction
	for i := uint64(1); i <= 1500; i++ {
		held = append(held, tx(i))
	}
	if ready, _, _ := ca.HandleTxsGaps(held, true); len(ready) != 1500 {
		t.Fatalf("A pooled %d", len(ready))
	}
	a := startNode(t, ca, nil)
	b := startNode(t, cb, nil, a)
	b.book.mu.Lock()
	b.book.txRate = 1 // A's budget at B refills slowly: what the answers spent shows
	b.book.mu.Unlock()
	aID, _ := peer.Decode(a.ID())
	bID, _ := peer.Decode(b.ID())
	waitFor(t, 10*time.Second, "B on A's tx topic", func() bool {
		for _, p := range a.txTopic.ListPeers() {
			if p == bID {
				return true
			}
		}
		return false
	})
	next := tx(1501)
	if ready, _, _ := ca.HandleTxsGaps([]chain.Transaction{next}, true); len(ready) != 1 {
		t.Fatal("A did not pool 1501")
	}
	a.PublishTxs([]chain.Transaction{next})
	waitFor(t, 20*time.Second, "B's run to reach 1501", func() bool { return cb.pendingTop() == 1501 })
	ca.fmu.Lock()
	served := ca.served
	ca.fmu.Unlock()
	if served < 2 || served > 4 {
		t.Errorf("A served %d requests for 1500 transactions in answers of %d", served, fillMaxTxs)
	}
	// The answers were A's to send: they spent its budget of transactions
	// at B as a message would.
	b.book.mu.Lock()
	left := b.book.account(aID).txs.Tokens()
	b.book.mu.Unlock()
	if burst := float64(maxBatchTxs); left > burst-1400 {
		t.Errorf("A's budget at B: %.0f of %.0f left after 1501 transactions", left, burst)
	}
}

// TestGapFillTwoHops: in a line A–B–C, B fills its gap from A and
// gossips what the answers made ready, so C, which only B reaches and
// which never saw the message that showed B the gap (B did not forward
// it), gets the whole run.
func TestGapFillTwoHops(t *testing.T) {
	ca, cb, cc := newFillChain(), newFillChain(), newFillChain()
	var held []chain.Transaction
	for i := uint64(1); i <= 300; i++ {
		held = append(held, tx(i))
	}
	ca.HandleTxsGaps(held, true)
	a := startNode(t, ca, nil)
	b := startNode(t, cb, nil, a)
	c := startNode(t, cc, nil, b)
	for _, pair := range [][2]*Node{{a, b}, {b, c}} {
		waitFor(t, 10*time.Second, "meshes", func() bool {
			return inMesh(pair[0], pair[1]) && inMesh(pair[1], pair[0])
		})
	}
	if hasPeer(a, c.ID()) {
		t.Fatal("A and C are connected: not a line")
	}
	next := tx(301)
	ca.HandleTxsGaps([]chain.Transaction{next}, true)
	a.PublishTxs([]chain.Transaction{next})
	waitFor(t, 20*time.Second, "B's run to reach 301", func() bool { return cb.pendingTop() == 301 })
	waitFor(t, 20*time.Second, "C's run to reach 301", func() bool { return cc.pendingTop() == 301 })
}

func TestFillRequestCodec(t *testing.T) {
	good := []byte{3, 'a', 'b', 'c', 0x96, 0x01}
	from, nonce, err := decodeFillRequest(good)
	if err != nil || from != "abc" || nonce != 150 {
		t.Fatalf("decoded %q %d %v", from, nonce, err)
	}
	long := make([]byte, fillRequest+1)
	for name, bad := range map[string][]byte{
		"empty":           nil,
		"no address":      {0, 1},
		"address too big": append([]byte{65}, make([]byte, 66)...),
		"short address":   {5, 'a', 'b'},
		"no nonce":        {1, 'a'},
		"trailing bytes":  {1, 'a', 1, 0},
		"padded nonce":    {1, 'a', 0x81, 0x00},
		"too long":        long,
	} {
		if _, _, err := decodeFillRequest(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestFillServeBounds: a malformed request is an offence and gets no
// answer; an answer never holds more than fillMaxTxs; a peer that opens
// streams and sends nothing holds no serving slot: another peer is
// served meanwhile.
func TestFillServeBounds(t *testing.T) {
	// X's slow streams are to be held while Y asks: a read timeout of a
	// second let them go before a loaded machine saw both held at once.
	old := fillReadTimeout
	fillReadTimeout = time.Minute
	t.Cleanup(func() { fillReadTimeout = old }) // after the nodes' Close
	ca := newFillChain()
	var held []chain.Transaction
	for i := uint64(1); i <= fillMaxTxs+500; i++ {
		held = append(held, tx(i))
	}
	ca.HandleTxsGaps(held, true)
	a := startNode(t, ca, nil)
	x := startNode(t, newFillChain(), nil, a)
	y := startNode(t, newFillChain(), nil, a)
	aID, _ := peer.Decode(a.ID())
	xID, _ := peer.Decode(x.ID())
	waitFor(t, 10*time.Second, "X and Y connected", func() bool { return hasPeer(a, x.ID()) && hasPeer(a, y.ID()) })

	open := func(from *Node) network.Stream {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := from.host.NewStream(ctx, aID, TxFillProtocol)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ask := func(from *Node, req []byte) ([]byte, error) {
		s := open(from)
		defer s.Close()
		if _, err := s.Write(req); err != nil {
			return nil, err
		}
		if err := s.CloseWrite(); err != nil {
			return nil, err
		}
		return io.ReadAll(s)
	}

	// A good request: the run from nonce 1, cut at fillMaxTxs.
	data, err := ask(x, []byte{1, 'a', 1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeTxBatch(data)
	if err != nil || len(got) != fillMaxTxs || got[0].Nonce != 1 {
		t.Fatalf("answer: %d transactions, %v", len(got), err)
	}
	// Nothing pooled from there: an empty answer, no offence.
	if data, err := ask(x, []byte{1, 'b', 1}); err != nil || len(data) != 0 {
		t.Fatalf("unknown sender: %d bytes, %v", len(data), err)
	}
	if p := a.book.penaltyOf(xID, time.Now()); p != 0 {
		t.Fatalf("penalty %v for good requests", p)
	}
	// Malformed: an offence, no answer.
	if data, _ := ask(x, []byte{0, 1}); len(data) != 0 {
		t.Fatalf("a malformed request was answered: %d bytes", len(data))
	}
	if p := a.book.penaltyOf(xID, time.Now()); p < 0.9 {
		t.Fatalf("penalty %v after a malformed request", p)
	}
	// X opens as many streams as there are slots and writes a byte of a
	// request on each, no more: Y is still answered.
	for range fillServers {
		s := open(x)
		defer s.Reset()
		if _, err := s.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "X's streams being read", func() bool {
		a.book.mu.Lock()
		defer a.book.mu.Unlock()
		return a.book.account(xID).fillServing == fillServePerPeer
	})
	if data, err := ask(y, []byte{1, 'a', 1}); err != nil || len(data) == 0 {
		t.Fatalf("Y not served while X held streams open: %d bytes, %v", len(data), err)
	}
}

// TestFillServeAdmit: a peer is served at most 2*fillRate requests at
// once and fillRate a second after, at most fillServePerPeer at a time.
func TestFillServeAdmit(t *testing.T) {
	b := newPeerBook(Config{})
	x, y := peer.ID("x"), peer.ID("y")
	now := time.Unix(1000, 0)
	for i := range 2 * fillRate {
		if !b.admitFillServe(x, now) {
			t.Fatalf("request %d of a burst of %d refused", i, 2*fillRate)
		}
		b.doneFillServe(x)
	}
	if b.admitFillServe(x, now) {
		t.Fatal("a request over the burst admitted")
	}
	if !b.admitFillServe(y, now) {
		t.Fatal("another peer's request refused")
	}
	b.doneFillServe(y)
	later := now.Add(time.Second / fillRate)
	if !b.admitFillServe(x, later) {
		t.Fatalf("no request admitted %v later", time.Second/fillRate)
	}
	b.doneFillServe(x)
	// Turns: fillServePerPeer at a time.
	for range fillServePerPeer {
		if !b.admitFillServe(y, now) {
			t.Fatal("a turn refused")
		}
	}
	if b.admitFillServe(y, now) {
		t.Fatalf("%d requests of one peer served at once", fillServePerPeer+1)
	}
	b.doneFillServe(y)
	if !b.admitFillServe(y, now) {
		t.Fatal("a turn given back was not given again")
	}
}

// TestFillAskBounds: one peer's gap signals take at most fillPerPeer of
// the queue's places; a sender queued to one peer may still be asked of
// another; a peer whose request failed is not asked for fillBackoff.
func TestFillAskBounds(t *testing.T) {
	f := newTxFill()
	now := time.Unix(1000, 0)
	x, y := peer.ID("x"), peer.ID("y")
	asked := 0
	for i := range fillQueue {
		if f.ask(x, TxGap{From: chain.Address(fmt.Sprint("s", i)), Next: 1}, now) {
			asked++
		}
	}
	if asked != fillPerPeer || len(f.queue) != fillPerPeer {
		t.Fatalf("one peer queued %d requests (queue %d), want %d", asked, len(f.queue), fillPerPeer)
	}
	if !f.ask(y, TxGap{From: "s0", Next: 1}, now) {
		t.Fatal("a sender queued to one peer was not asked of another")
	}
	if f.ask(y, TxGap{From: "s0", Next: 1}, now) {
		t.Fatal("the same sender asked twice of one peer")
	}
	// x's first request times out: x is quiet for fillBackoff.
	r := <-f.queue
	f.settle(r, true, false, now)
	if f.ask(x, TxGap{From: "other", Next: 1}, now.Add(fillBackoff/2)) {
		t.Fatal("a peer whose request failed was asked again at once")
	}
	for len(f.queue) > 0 {
		f.settle(<-f.queue, false, false, now)
	}
	if !f.ask(x, TxGap{From: "other", Next: 1}, now.Add(fillBackoff)) {
		t.Fatal("a peer was not asked again after its back-off")
	}
}

// TestFillAnswerFitsOneBatch: a run of fillMaxTxs transactions and
// fillAnswerBytes encoded, what PooledRun may give, is framed whole in
// one batch (a run of maxBatchBytes lost its last transactions to the
// framing).
func TestFillAnswerFitsOneBatch(t *testing.T) {
	encs := make([][]byte, fillMaxTxs)
	for i := range encs {
		encs[i] = make([]byte, fillAnswerBytes/fillMaxTxs)
	}
	if data, used := frameTxBatch(encs); used != fillMaxTxs || len(data) > maxBatchBytes+binary.MaxVarintLen32 {
		t.Fatalf("framed %d of %d transactions in %d bytes", used, fillMaxTxs, len(data))
	}
	for i := range encs {
		encs[i] = make([]byte, maxBatchBytes/fillMaxTxs)
	}
	if _, used := frameTxBatch(encs); used == fillMaxTxs {
		t.Fatal("a run of maxBatchBytes fits too: the test no longer shows the framing's cost")
	}
}
