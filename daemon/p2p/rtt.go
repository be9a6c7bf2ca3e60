package p2p

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// Each handshaken peer's round-trip time, measured with libp2p's ping
// protocol (/ipfs/ping/1.0.0: 32 random bytes echoed back) on a new stream
// per measurement. Over the emulated network (daemon/wan) that stream has
// the link's latency, jitter and loss as every other stream does, so the
// figure is what gossip and sync see, not a bare link setting.
//
// A peer is pinged once right after its handshake (so the figure shows up
// at once) and then every rttInterval; at most one ping per peer is in
// flight, and a ping that gets no answer within rttTimeout is dropped.
// Pinging never holds Node.mu: the book has its own lock, held only to
// read or write a record.

// rttInterval is how often every peer is pinged (a variable for tests).
var rttInterval = 10 * time.Second

const (
	// rttTimeout bounds one ping: a peer that does not echo 32 bytes in
	// 5 s is not measured this round (its last figure stays).
	rttTimeout = 5 * time.Second
	// rttAlpha is the weight of a new sample in the moving average: with
	// a ping every 10 s it follows a changed link within a minute or so,
	// and one sample held back by a retransmission moves it by a fifth.
	// (The peerstore's own LatencyEWMA, which ping also feeds, weighs a
	// sample 0.1 process-wide and outlives the connection; ours starts
	// afresh with each connection.)
	rttAlpha = 0.2
	// maxRTTPeers bounds the book; peers beyond it go unmeasured (the
	// node never has that many connections: maxConns).
	maxRTTPeers = maxConns
)

// rttBook holds the measured round-trip times by peer.
type rttBook struct {
	mu sync.Mutex
	m  map[peer.ID]*rttRec
}

type rttRec struct {
	ewma, last time.Duration // zero: no answer yet
	samples    int           // answered pings on this connection
	inFlight   bool
}

func newRTTBook() *rttBook { return &rttBook{m: map[peer.ID]*rttRec{}} }

// start marks a ping to p in flight; false when one already is (or the
// book is full).
func (b *rttBook) start(p peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.m[p]
	if r == nil {
		if len(b.m) >= maxRTTPeers {
			return false
		}
		r = &rttRec{}
		b.m[p] = r
	}
	if r.inFlight {
		return false
	}
	r.inFlight = true
	return true
}

// done records the outcome of p's ping (d when err is nil). A peer forgotten
// meanwhile (it disconnected) stays forgotten.
func (b *rttBook) done(p peer.ID, d time.Duration, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.m[p]
	if r == nil {
		return
	}
	r.inFlight = false
	if err != nil || d <= 0 {
		return
	}
	r.last = d
	r.samples++
	if r.ewma == 0 {
		r.ewma = d
	} else {
		r.ewma = time.Duration(rttAlpha*float64(d) + (1-rttAlpha)*float64(r.ewma))
	}
}

// forget drops p's record (on disconnect).
func (b *rttBook) forget(p peer.ID) {
	b.mu.Lock()
	delete(b.m, p)
	b.mu.Unlock()
}

// get returns p's moving average and latest sample (zero: unknown).
func (b *rttBook) get(p peer.ID) (ewma, last time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r := b.m[p]; r != nil {
		return r.ewma, r.last
	}
	return 0, 0
}

// PeerRTT returns the moving average and the latest sample of the
// round-trip time to the peer with the given id (zero: not measured yet,
// or not a peer).
func (n *Node) PeerRTT(id string) (ewma, last time.Duration) {
	p, err := peer.Decode(id)
	if err != nil {
		return 0, 0
	}
	return n.rtt.get(p)
}

// ms is d in milliseconds, rounded to 10 µs (a loopback RTT stays above 0).
func ms(d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return max(0.01, math.Round(float64(d)/float64(time.Millisecond)*100)/100)
}

// servePing answers pings. A libp2p TCP host already does; a host from
// Config.NewHost (e.g. mocknet's) does not, and the handler must be set on
// that host (not below it) to go through its stream wrapping.
func servePing(h host.Host) { ping.NewPingService(h) }

// rttLoop pings every handshaken peer each rttInterval.
func (n *Node) rttLoop() {
	t := time.NewTicker(rttInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		ids := make([]peer.ID, 0, len(n.peers))
		for id := range n.peers {
			ids = append(ids, id)
		}
		n.mu.Unlock()
		for _, id := range ids {
			n.pingPeer(id)
		}
	}
}

// pingPeer measures p's round-trip time in the background, unless a ping
// to p is already in flight.
func (n *Node) pingPeer(p peer.ID) {
	if !n.rtt.start(p) {
		return
	}
	if !n.spawn(func() {
		d, err := n.pingOnce(p)
		n.rtt.done(p, d, err)
		if err != nil && n.ctx.Err() == nil {
			n.log.Debug("p2p: ping failed", "peer", p, "err", err)
		}
	}) {
		n.rtt.done(p, 0, errors.New("node closing"))
	}
}

// pingOnce is one ping on a new stream, without dialling.
func (n *Node) pingOnce(p peer.ID) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(n.ctx, rttTimeout)
	// Cancelling ends ping.Ping's loop and resets its stream.
	defer cancel()
	select {
	case res, ok := <-ping.Ping(network.WithNoDial(ctx, "ping a connected peer"), n.host, p):
		if !ok {
			return 0, ctx.Err()
		}
		return res.RTT, res.Error
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
