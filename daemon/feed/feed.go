// Package feed is the node's one publish/subscribe fan-out: a Feed[T]
// hands each value sent to every subscriber, and every subscriber states
// how it wants to be treated when it falls behind (its Policy), so that
// what may be lost is written where the subscription is made:
//
//   - Lossless with coalescing (Coalesce): queued values are kept within a
//     byte budget; past it, a merge function folds the queue into one
//     value (the chain manager's events: the newest snapshot and what fits
//     of the blocks). Nothing is dropped that the merge keeps.
//   - Lossy (DropNewest, DropOldest): at most a count of values wait; past
//     it the newest (or the oldest) are dropped and counted.
//
// Send never blocks on a subscriber and takes only the feed's lock and
// each queue's; a feed holds at most MaxSubscribers subscriptions. A
// subscriber reads a channel, which is closed when it cancels or when the
// feed closes (values still queued are dropped then).
package feed

import (
	"errors"
	"sync"
	"sync/atomic"
)

// DefaultMaxSubscribers bounds the subscriptions of a feed whose Options
// give no bound.
const DefaultMaxSubscribers = 256

// ErrTooManySubscribers is Subscribe's answer at the feed's bound.
var ErrTooManySubscribers = errors.New("feed: too many subscribers")

// Options configure New.
type Options struct {
	// MaxSubscribers bounds the subscriptions (0: DefaultMaxSubscribers).
	MaxSubscribers int
}

// kind is a policy's way of treating a subscriber that falls behind.
type kind int

const (
	kindNone kind = iota
	kindCoalesce
	kindDropNewest
	kindDropOldest
)

// Policy is what a subscriber accepts to lose when it falls behind. Make
// one with Coalesce, DropNewest or DropOldest; the zero Policy is refused.
type Policy[T any] struct {
	kind     kind
	maxItems int
	maxBytes int
	size     func(T) int
	merge    func(queued []T, budget int) (merged T, folded int)
}

// Coalesce is the lossless policy: values queue while their estimated
// size (size) stays within maxBytes; past it, merge folds the whole queue
// (oldest first) into one value that must keep what the subscriber cannot
// do without, and should fit budget when it can (the newest value alone
// may not). It returns how many values it folded away beyond the first
// (counted in Stats.Coalesced) — len(queued)-1 for a merge that folds all.
func Coalesce[T any](maxBytes int, size func(T) int, merge func(queued []T, budget int) (T, int)) Policy[T] {
	return Policy[T]{kind: kindCoalesce, maxBytes: max(maxBytes, 1), size: size, merge: merge}
}

// DropNewest is a lossy policy: at most maxItems values wait (at least
// one); a value sent while they do is dropped (Stats.Dropped).
func DropNewest[T any](maxItems int) Policy[T] {
	return Policy[T]{kind: kindDropNewest, maxItems: max(maxItems, 1)}
}

// DropOldest is a lossy policy: at most maxItems values wait (at least
// one); a value sent while they do replaces the oldest (Stats.Dropped).
func DropOldest[T any](maxItems int) Policy[T] {
	return Policy[T]{kind: kindDropOldest, maxItems: max(maxItems, 1)}
}

// Stats count what a feed, or one subscription, did.
type Stats struct {
	Sent      int64 // values queued for a subscriber
	Dropped   int64 // values lost by a lossy policy
	Coalesced int64 // values folded into another by a Coalesce policy
	PeakBytes int64 // highest estimated bytes queued (Coalesce only)
}

type counters struct {
	sent, dropped, coalesced, peak atomic.Int64
}

func (c *counters) stats() Stats {
	return Stats{Sent: c.sent.Load(), Dropped: c.dropped.Load(), Coalesced: c.coalesced.Load(), PeakBytes: c.peak.Load()}
}

func (c *counters) raisePeak(n int64) {
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// Feed fans values of type T out to its subscribers. The zero Feed is not
// usable; make one with New. Its methods are safe for concurrent use.
type Feed[T any] struct {
	maxSubs int

	mu     sync.Mutex
	subs   map[*Subscription[T]]struct{}
	closed bool

	total counters
}

// New returns an open feed.
func New[T any](o Options) *Feed[T] {
	if o.MaxSubscribers <= 0 {
		o.MaxSubscribers = DefaultMaxSubscribers
	}
	return &Feed[T]{maxSubs: o.MaxSubscribers, subs: make(map[*Subscription[T]]struct{})}
}

// Subscription is one subscriber's queue. Read C; call Cancel when done.
type Subscription[T any] struct {
	f   *Feed[T]
	pol Policy[T]
	out chan T
	// Coalesce only: its queue, handed over from a goroutine of its own so
	// that the queue can be merged while the reader sleeps.
	wake chan struct{} // a value was queued (capacity 1)
	done chan struct{} // closed by Cancel or the feed's Close

	running bool // its goroutine was started (Coalesce on an open feed)

	mu    sync.Mutex
	queue []T
	bytes int
	stop  sync.Once
	own   counters
}

// Subscribe adds a subscriber with policy p. A closed feed returns a
// subscription whose channel is already closed. Past the feed's bound it
// returns ErrTooManySubscribers; a zero policy is refused too.
func (f *Feed[T]) Subscribe(p Policy[T]) (*Subscription[T], error) {
	if p.kind == kindNone || (p.kind == kindCoalesce && (p.size == nil || p.merge == nil)) {
		return nil, errors.New("feed: a subscription needs a policy (Coalesce, DropNewest, DropOldest)")
	}
	s := &Subscription[T]{f: f, pol: p, done: make(chan struct{})}
	if p.kind == kindCoalesce {
		s.out, s.wake = make(chan T), make(chan struct{}, 1)
	} else {
		s.out = make(chan T, p.maxItems)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		s.finish()
		return s, nil
	}
	if len(f.subs) >= f.maxSubs {
		return nil, ErrTooManySubscribers
	}
	f.subs[s] = struct{}{}
	if p.kind == kindCoalesce {
		s.running = true
		go s.run()
	}
	return s, nil
}

// C is the subscriber's channel: the values in the order sent, less what
// its policy lost. It is closed after Cancel or the feed's Close.
func (s *Subscription[T]) C() <-chan T { return s.out }

// Cancel ends the subscription; its channel closes. Safe to call twice.
func (s *Subscription[T]) Cancel() {
	s.f.mu.Lock()
	delete(s.f.subs, s)
	s.f.mu.Unlock()
	s.finish()
}

// Stats are this subscription's counters.
func (s *Subscription[T]) Stats() Stats { return s.own.stats() }

// finish closes the subscription once. A lossy channel is closed here
// (no Send reaches a subscription once it left the feed's set, under the
// feed's lock); a coalescing one by its goroutine.
func (s *Subscription[T]) finish() {
	s.stop.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		close(s.done)
		if !s.running {
			close(s.out)
		}
		s.queue, s.bytes = nil, 0
	})
}

// Len is the number of subscribers.
func (f *Feed[T]) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// Stats are the counters of every subscription the feed has had.
func (f *Feed[T]) Stats() Stats { return f.total.stats() }

// Send queues v for every subscriber by its policy and returns how many
// there were. It never waits for a reader.
func (f *Feed[T]) Send(v T) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.push(v)
	}
	return len(f.subs)
}

// Close ends every subscription (their channels close) and makes later
// subscriptions closed at once. Safe to call twice.
func (f *Feed[T]) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.subs {
		delete(f.subs, s)
		s.finish()
	}
}

func (s *Subscription[T]) count(sent, dropped, coalesced int64) {
	for _, c := range []*counters{&s.own, &s.f.total} {
		c.sent.Add(sent)
		c.dropped.Add(dropped)
		c.coalesced.Add(coalesced)
	}
}

// push queues v by the policy. The feed's lock is held.
func (s *Subscription[T]) push(v T) {
	switch s.pol.kind {
	case kindDropNewest:
		select {
		case s.out <- v:
			s.count(1, 0, 0)
		default:
			s.count(0, 1, 0)
		}
	case kindDropOldest:
		// The reader may take values meanwhile: take out the oldest until
		// v fits (once, unless the reader is racing us).
		s.mu.Lock()
		defer s.mu.Unlock()
		for {
			select {
			case s.out <- v:
				s.count(1, 0, 0)
				return
			default:
			}
			select {
			case <-s.out:
				s.count(0, 1, 0)
			default:
			}
		}
	case kindCoalesce:
		s.pushCoalesce(v)
	}
}

func (s *Subscription[T]) pushCoalesce(v T) {
	size := s.pol.size(v)
	s.mu.Lock()
	s.queue = append(s.queue, v)
	s.bytes += size
	s.count(1, 0, 0)
	if s.bytes > s.pol.maxBytes && len(s.queue) > 1 {
		merged, folded := s.pol.merge(s.queue, s.pol.maxBytes)
		s.count(0, 0, int64(folded))
		clear(s.queue)
		s.queue = append(s.queue[:0], merged)
		s.bytes = s.pol.size(merged)
	}
	for _, c := range []*counters{&s.own, &s.f.total} {
		c.raisePeak(int64(s.bytes))
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Subscription[T]) pop() (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var zero T
	if len(s.queue) == 0 {
		return zero, false
	}
	v := s.queue[0]
	s.queue[0] = zero
	s.queue = s.queue[1:]
	s.bytes -= s.pol.size(v)
	if len(s.queue) == 0 {
		s.queue, s.bytes = nil, 0
	}
	return v, true
}

// run delivers a coalescing queue until the subscription ends.
func (s *Subscription[T]) run() {
	defer close(s.out)
	for {
		v, ok := s.pop()
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.out <- v:
		case <-s.done:
			return
		}
	}
}
