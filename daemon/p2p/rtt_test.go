package p2p

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestPeerRTTLoopback: two loopback nodes measure each other's round-trip
// time right after the handshake, keep measuring every rttInterval, and
// forget it when the peer leaves.
func TestPeerRTTLoopback(t *testing.T) {
	old := rttInterval
	rttInterval = 50 * time.Millisecond
	t.Cleanup(func() { rttInterval = old }) // after the nodes' Close

	a := startNode(t, newFakeChain("g"), nil)
	b := startNode(t, newFakeChain("g"), nil, a)
	waitFor(t, 10*time.Second, "both to measure the other", func() bool {
		pa, pb := a.Peers(), b.Peers()
		return len(pa) == 1 && pa[0].RTTMs > 0 && len(pb) == 1 && pb[0].RTTMs > 0
	})
	for _, n := range []*Node{a, b} {
		p := n.Peers()[0]
		if p.RTTLastMs <= 0 || p.RTTMs > 1000 || p.RTTLastMs > 1000 {
			t.Errorf("peer %s: rtt %v ms, last %v ms: want in (0, 1000] on a loopback", p.ID, p.RTTMs, p.RTTLastMs)
		}
		ewma, last := n.PeerRTT(p.ID)
		if ewma <= 0 || last <= 0 {
			t.Errorf("PeerRTT(%s) = %v, %v", p.ID, ewma, last)
		}
	}
	bID, err := peer.Decode(b.ID())
	if err != nil {
		t.Fatal(err)
	}
	samples := func() int {
		a.rtt.mu.Lock()
		defer a.rtt.mu.Unlock()
		if r := a.rtt.m[bID]; r != nil {
			return r.samples
		}
		return 0
	}
	waitFor(t, 10*time.Second, "A to ping B again and again", func() bool { return samples() >= 3 })

	b.Close()
	waitFor(t, 10*time.Second, "A to forget B", func() bool {
		ewma, last := a.PeerRTT(b.ID())
		return len(a.Peers()) == 0 && ewma == 0 && last == 0
	})
	if e, l := a.PeerRTT("not a peer id"); e != 0 || l != 0 {
		t.Errorf("PeerRTT of a bad id = %v, %v", e, l)
	}
}

// TestRTTBook: one ping in flight per peer, the moving average, failures
// keep the last figure, and a forgotten peer stays forgotten.
func TestRTTBook(t *testing.T) {
	const p = peer.ID("p")
	milli := time.Millisecond
	steps := []struct {
		name       string
		do         func(b *rttBook) bool
		want       bool // do's result
		ewma, last time.Duration
	}{
		{"first ping starts", func(b *rttBook) bool { return b.start(p) }, true, 0, 0},
		{"a second one waits", func(b *rttBook) bool { return b.start(p) }, false, 0, 0},
		{"first answer sets both", func(b *rttBook) bool { b.done(p, 100*milli, nil); return true }, true, 100 * milli, 100 * milli},
		{"next ping starts", func(b *rttBook) bool { return b.start(p) }, true, 100 * milli, 100 * milli},
		{"answer moves the average by alpha", func(b *rttBook) bool { b.done(p, 200*milli, nil); return true }, true, 120 * milli, 200 * milli},
		{"failed ping", func(b *rttBook) bool { b.start(p); b.done(p, 0, errors.New("timeout")); return true }, true, 120 * milli, 200 * milli},
		{"zero sample ignored", func(b *rttBook) bool { b.start(p); b.done(p, 0, nil); return true }, true, 120 * milli, 200 * milli},
		{"forgotten while in flight", func(b *rttBook) bool { b.start(p); b.forget(p); b.done(p, 50*milli, nil); return true }, true, 0, 0},
		{"starts afresh", func(b *rttBook) bool { return b.start(p) }, true, 0, 0},
	}
	b := newRTTBook()
	for _, s := range steps {
		if got := s.do(b); got != s.want {
			t.Fatalf("%s: %v, want %v", s.name, got, s.want)
		}
		if e, l := b.get(p); e != s.ewma || l != s.last {
			t.Fatalf("%s: ewma %v last %v, want %v %v", s.name, e, l, s.ewma, s.last)
		}
	}
	for _, c := range []struct {
		d    time.Duration
		want float64
	}{{0, 0}, {-milli, 0}, {time.Microsecond, 0.01}, {183 * time.Microsecond, 0.18}, {82437 * time.Microsecond, 82.44}} {
		if got := ms(c.d); got != c.want {
			t.Errorf("ms(%v) = %v, want %v", c.d, got, c.want)
		}
	}
}
