package wan

import (
	"context"
	"fmt"
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

// errCut is what a stream between two nodes whose link is cut returns, and
// what opening one returns: as a reset stream (network.ErrReset).
var errCut = fmt.Errorf("wan: the link is cut: %w", network.ErrReset)

// wanHost is a node's mocknet host whose streams (opened and accepted, i.e.
// what gossipsub, status, sync, gap filling and ping write) get the link's
// jitter and loss; mocknet's link adds the latency and the bandwidth.
//
// It also enforces the cuts (Net.Partition, Net.Offline) itself rather
// than trusting mocknet to: a stream between two nodes whose link is cut
// cannot be opened, accepted, read or written, and the cut resets the
// streams that were open. Mocknet alone leaks: a conn it has closed still
// opens streams (conn.NewStream does not look at IsClosed), and its close
// resets only the streams listed on the conn at that moment, so a stream
// opened on a conn while it closes (gossipsub re-opens its writer at once
// when its stream to a still-connected peer is reset) lives on across the
// cut on a conn that mocknet no longer lists. Only the protocols the host
// registers on itself (identify) escape these checks; they carry no chain
// data.
type wanHost struct {
	host.Host
	w    *Net
	self int
}

func (h *wanHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if h.w.cutTo(h.self, p) {
		return nil, errCut
	}
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	ws, err := h.wrap(s)
	if err != nil {
		s.Reset()
		return nil, err
	}
	return ws, nil
}

func (h *wanHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, h.accept(handler))
}

func (h *wanHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, h.accept(handler))
}

// accept wraps an incoming stream for handler, or resets it when it comes
// across a cut.
func (h *wanHost) accept(handler network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		ws, err := h.wrap(s)
		if err != nil {
			s.Reset()
			return
		}
		handler(ws)
	}
}

// wrap wraps s for its link and registers it with the Net (so that a cut
// resets it); errCut if its link is cut.
func (h *wanHost) wrap(s network.Stream) (network.Stream, error) {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	remote, ok := h.w.index[s.Conn().RemotePeer()]
	if !ok {
		return s, nil
	}
	p := pair(h.self, remote)
	if h.w.cut[p] {
		h.w.refused++
		return nil, errCut
	}
	h.w.streams++
	ls := &lossyStream{Stream: s, w: h.w, a: h.self, b: remote, rng: rand.New(rand.NewPCG(h.w.seed, h.w.streams))}
	if h.w.live[p] == nil {
		h.w.live[p] = map[*lossyStream]struct{}{}
	}
	h.w.live[p][ls] = struct{}{}
	return ls, nil
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
	l, cut := s.w.linkState(s.a, s.b)
	if cut {
		return 0, s.cutOff()
	}
	now := time.Now()
	at := now.Add(s.delay(l, len(p)))
	if at.Before(s.next) {
		at = s.next
	}
	s.next = at
	if d := at.Sub(now); d > 0 {
		time.Sleep(d)
		if _, cut := s.w.linkState(s.a, s.b); cut {
			return 0, s.cutOff()
		}
	}
	return s.Stream.Write(p)
}

// Read reads what the other node wrote, unless the link is cut: what comes
// out of the stream after the cut is dropped.
func (s *lossyStream) Read(p []byte) (int, error) {
	if _, cut := s.w.linkState(s.a, s.b); cut {
		return 0, s.cutOff()
	}
	n, err := s.Stream.Read(p)
	if n > 0 {
		if _, cut := s.w.linkState(s.a, s.b); cut {
			return 0, s.cutOff()
		}
	}
	return n, err
}

// cutOff resets the stream, whose link is cut, and counts the refusal.
func (s *lossyStream) cutOff() error {
	s.w.mu.Lock()
	s.w.refused++
	s.w.mu.Unlock()
	s.Reset()
	return errCut
}

func (s *lossyStream) Close() error {
	s.w.untrack(s)
	return s.Stream.Close()
}

func (s *lossyStream) Reset() error {
	s.w.untrack(s)
	return s.Stream.Reset()
}

func (s *lossyStream) ResetWithError(code network.StreamErrorCode) error {
	s.w.untrack(s)
	return s.Stream.ResetWithError(code)
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
