package api

import (
	"encoding/json"
	"log/slog"
	"sync"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/chain/rpc"
)

// hub fans the backend's new heads, and its finality events when it has
// them (FinalityEvents), out to the /v1/events subscribers.
//
// Each block is encoded once, as its whole SSE message, and the same bytes
// are queued for every subscriber. A subscriber's queue is bounded in bytes
// (Limits.EventBufferBytes): one that falls further behind is dropped, not
// waited for, so a client that never reads costs the node no more than its
// budget. Since every queue is a suffix of the same sequence of shared
// messages, all queues together hold at most one budget of distinct bytes.
//
// The hub subscribes to the backend while it has subscribers and lets go
// of the backend's subscription when the last one leaves.
type hub struct {
	b      Backend
	limits Limits
	log    *slog.Logger
	// summarize makes a block's summary for subscribers that asked for
	// summaries (?summary=1, the dashboard); nil: the block itself.
	summarize func(*chain.Block) any

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	cancel  func()        // the backend subscriptions, nil while idle
	stop    chan struct{} // closed to end the current run
	dropped uint64        // subscribers dropped for falling behind (metrics)
}

func newHub(b Backend, l Limits, log *slog.Logger) *hub {
	return &hub{b: b, limits: l, log: log, subs: make(map[*subscriber]struct{})}
}

// subscriber is one /v1/events stream's queue.
type subscriber struct {
	wake    chan struct{} // a message or a state change is waiting
	summary bool          // wants block summaries, not whole blocks

	mu     sync.Mutex
	queue  [][]byte
	bytes  int
	state  subState
	budget int
}

type subState int

const (
	subOpen subState = iota
	subDropped
	subClosed
)

// join adds a subscriber of whole blocks, or reports false at the cap.
func (h *hub) join() (*subscriber, bool) { return h.joinAs(false) }

// joinAs adds a subscriber of whole blocks or of block summaries.
func (h *hub) joinAs(summary bool) (*subscriber, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= h.limits.MaxEventStreams {
		return nil, false
	}
	sub := &subscriber{wake: make(chan struct{}, 1), summary: summary, budget: h.limits.EventBufferBytes}
	h.subs[sub] = struct{}{}
	if h.cancel == nil {
		ch, cancel := h.b.SubscribeBlocks()
		fin, finCancel := finalityEvents(h.b)
		h.cancel = func() { cancel(); finCancel() }
		h.stop = make(chan struct{})
		go h.run(ch, fin, h.stop)
	}
	return sub, true
}

// leave removes a subscriber; the last one ends the backend subscription.
func (h *hub) leave(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[sub]; !ok {
		return
	}
	delete(h.subs, sub)
	if len(h.subs) == 0 && h.cancel != nil {
		h.cancel()
		close(h.stop)
		h.cancel, h.stop = nil, nil
	}
}

// stats are the subscribers now and those dropped so far.
func (h *hub) stats() (subscribers int, dropped uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs), h.dropped
}

// run encodes each block of ch, and each finality event of fin, once and
// queues it for every subscriber.
func (h *hub) run(ch <-chan *chain.Block, fin <-chan rpc.FinalityEvent, stop chan struct{}) {
	for {
		var b *chain.Block
		var ok bool
		select {
		case <-stop:
			return
		case ev, fok := <-fin:
			if !fok {
				fin = nil // the node stops, or has no more: blocks go on
				continue
			}
			h.broadcastFinality(ev)
			continue
		case b, ok = <-ch:
		}
		if !ok { // the node is stopping: end every stream
			h.mu.Lock()
			if h.stop == stop {
				for sub := range h.subs {
					sub.setState(subClosed)
				}
				h.cancel, h.stop = nil, nil
			}
			h.mu.Unlock()
			return
		}
		if b == nil {
			continue
		}
		h.mu.Lock()
		// Each form is encoded at most once per block, and only if some
		// subscriber wants it.
		var full, sum []byte
		for sub := range h.subs {
			msg := &full
			if sub.summary && h.summarize != nil {
				msg = &sum
			}
			if *msg == nil {
				var v any = b
				if msg == &sum {
					v = h.summarize(b)
				}
				var err error
				if *msg, err = encodeEvent("block", v); err != nil {
					h.log.Error("api: /v1/events: encode block", "err", err)
					continue
				}
			}
			// A dropped subscriber stays listed until its handler leaves
			// (at most EventWriteTimeout later), holding no messages.
			if sub.push(*msg) {
				h.dropped++
				h.log.Warn("api: /v1/events: dropped a subscriber that fell behind", "budget_bytes", h.limits.EventBufferBytes)
			}
		}
		h.mu.Unlock()
	}
}

// broadcastFinality queues a "justified" or "finalized" event for every
// subscriber (summary or not: the event is small and the same for both).
func (h *hub) broadcastFinality(ev rpc.FinalityEvent) {
	if ev.Type != rpc.EventJustified && ev.Type != rpc.EventFinalized {
		h.log.Error("api: /v1/events: unknown finality event", "type", ev.Type)
		return
	}
	msg, err := encodeEvent(ev.Type, ev)
	if err != nil {
		h.log.Error("api: /v1/events: encode finality event", "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if sub.push(msg) {
			h.dropped++
			h.log.Warn("api: /v1/events: dropped a subscriber that fell behind", "budget_bytes", h.limits.EventBufferBytes)
		}
	}
}

// encodeEvent is the SSE message of one event.
func encodeEvent(name string, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 0, len(data)+len(name)+16)
	msg = append(msg, "event: "...)
	msg = append(msg, name...)
	msg = append(msg, "\ndata: "...)
	msg = append(msg, data...)
	return append(msg, "\n\n"...), nil
}

// push queues msg, or drops the subscriber when msg would take its queue
// over budget; it reports whether it dropped it just now. A message larger
// than the budget still goes to a subscriber whose queue is empty, so one
// big block never ends every stream.
func (s *subscriber) push(msg []byte) (dropped bool) {
	s.mu.Lock()
	if s.state != subOpen {
		s.mu.Unlock()
		return false
	}
	if s.bytes > 0 && s.bytes+len(msg) > s.budget {
		s.state = subDropped
		s.queue, s.bytes = nil, 0
		s.mu.Unlock()
		s.signal()
		return true
	}
	s.queue = append(s.queue, msg)
	s.bytes += len(msg)
	s.mu.Unlock()
	s.signal()
	return false
}

func (s *subscriber) setState(st subState) {
	s.mu.Lock()
	s.state = st
	s.queue, s.bytes = nil, 0
	s.mu.Unlock()
	s.signal()
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next pops the oldest queued message (nil when none) and the state.
func (s *subscriber) next() ([]byte, subState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != subOpen {
		return nil, s.state
	}
	if len(s.queue) == 0 {
		return nil, subOpen
	}
	msg := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	s.bytes -= len(msg)
	if len(s.queue) == 0 {
		s.queue = nil
	}
	return msg, subOpen
}
