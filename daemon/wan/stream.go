package wan

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Loss on a reliable stream: a lost segment is sent again after the
// retransmission timeout, and everything behind it on the stream waits
// (head-of-line blocking). Linux's RTO is at least 200 ms, plus the RTT.
const (
	segmentBytes = 1460
	minRTO       = 200 * time.Millisecond
)

// wanHost is a node's mocknet host whose streams (opened and accepted, i.e.
// what gossipsub, status and sync write) get the link's jitter and loss;
// mocknet's link adds the latency and the bandwidth.
type wanHost struct {
	host.Host
	w    *Net
	self int
}

func (h *wanHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.wrap(s), nil
}

func (h *wanHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.wrap(s)) })
}

func (h *wanHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, func(s network.Stream) { handler(h.wrap(s)) })
}

func (h *wanHost) wrap(s network.Stream) network.Stream {
	h.w.mu.Lock()
	remote, ok := h.w.index[s.Conn().RemotePeer()]
	h.w.streams++
	n := h.w.streams
	h.w.mu.Unlock()
	if !ok {
		return s
	}
	return &lossyStream{Stream: s, w: h.w, a: h.self, b: remote, rng: rand.New(rand.NewPCG(h.w.seed, n))}
}

// lossyStream delays each write by the link's jitter, and by a
// retransmission timeout when one of its segments is lost. Writes leave in
// order: a write never overtakes the one before it.
type lossyStream struct {
	network.Stream
	w    *Net
	a, b int

	mu   sync.Mutex
	rng  *rand.Rand
	next time.Time // when the previous write left
}

func (s *lossyStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.w.LinkOf(s.a, s.b)
	now := time.Now()
	at := now.Add(s.delay(l, len(p)))
	if at.Before(s.next) {
		at = s.next
	}
	s.next = at
	if d := at.Sub(now); d > 0 {
		time.Sleep(d)
	}
	return s.Stream.Write(p)
}

// delay draws the extra delay of one write of n bytes over l.
func (s *lossyStream) delay(l Link, n int) time.Duration {
	var d time.Duration
	if l.Jitter > 0 {
		d = time.Duration(s.rng.Int64N(int64(l.Jitter)))
	}
	if l.Loss > 0 {
		segments := max(1, (n+segmentBytes-1)/segmentBytes)
		if s.rng.Float64() < 1-math.Pow(1-l.Loss, float64(segments)) {
			d += minRTO + l.RTT
		}
	}
	return d
}
