package chainmgr

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/poslab/posd/chain"
)

// What an event is estimated to hold, for a subscriber's byte budget. A
// decoded transaction is its strings plus its fixed fields, and the state
// version of its snapshot keeps the paths it changed (two accounts, a few
// nodes each, shared in part with the next version) alive while the
// event waits: about 512 B in all. An event
// also holds its snapshot's own nodes and the blocks' headers.
const (
	eventBaseBytes  = 16 << 10
	blockBaseBytes  = 1 << 10
	txOverheadBytes = 512
)

// MinEventBytes is the smallest budget Subscribe accepts.
const MinEventBytes = 1 << 20

// eventBytes estimates what ev keeps alive while it is queued.
func eventBytes(ev Event) int {
	n := eventBaseBytes
	for _, bs := range [][]*chain.Block{ev.Added, ev.Reverted} {
		for _, b := range bs {
			n += blockBytes(b)
		}
	}
	return n
}

func blockBytes(b *chain.Block) int {
	n := blockBaseBytes
	for i := range b.Transactions {
		tx := &b.Transactions[i]
		n += txOverheadBytes + len(tx.ChainID) + len(tx.From) + len(tx.To) + len(tx.PublicKey) + len(tx.Signature)
	}
	return n
}

// subscriber queues the events of one Subscribe call within a byte
// budget and hands them over in order from its own goroutine, so a slow
// reader never stalls an import.
//
// Past the budget, the queued events are coalesced into one: the newest
// snapshot, every reverted block (the pool puts their transactions back:
// they are never dropped, and a reorg is bounded by MaxReorgDepth), and
// of the added blocks only the newest that fit in the budget; the others
// are counted in Event.MissedBlocks and Stats.EventsDropped. So a queue
// holds at most the budget and the newest event. Every event
// carries the whole snapshot, so the reader is up to date after it.
type subscriber struct {
	out     chan Event
	wake    chan struct{} // a push happened (capacity 1)
	done    chan struct{} // closed by cancel or the manager's Close
	budget  int
	dropped *atomic.Int64

	mu    sync.Mutex
	queue []Event
	bytes int // estimated bytes of queue
	peak  int // highest bytes seen, for tests
	stop  sync.Once
}

func newSubscriber(budget int, dropped *atomic.Int64) *subscriber {
	s := &subscriber{
		out: make(chan Event), wake: make(chan struct{}, 1), done: make(chan struct{}),
		budget: max(budget, MinEventBytes), dropped: dropped,
	}
	go s.run()
	return s
}

func (s *subscriber) close() { s.stop.Do(func() { close(s.done) }) }

// push queues ev; it never blocks.
func (s *subscriber) push(ev Event) {
	size := eventBytes(ev)
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.bytes += size
	if s.bytes > s.budget {
		s.coalesceLocked()
	}
	s.peak = max(s.peak, s.bytes)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// coalesceLocked replaces the queue by one event (see subscriber). The
// newest event's added blocks are always kept, so a reader that keeps up
// loses nothing even when one commit alone outweighs the budget (a sync
// batch, bounded by sync itself); older ones are kept newest first while
// they fit.
func (s *subscriber) coalesceLocked() {
	newest := s.queue[len(s.queue)-1]
	merged := Event{Snapshot: newest.Snapshot}
	var older []*chain.Block
	for i, ev := range s.queue {
		// Newest first within an event, and later events' reverts are
		// newer: the whole list stays newest first.
		merged.Reverted = append(append([]*chain.Block(nil), ev.Reverted...), merged.Reverted...)
		merged.MissedBlocks += ev.MissedBlocks
		if i < len(s.queue)-1 {
			older = append(older, ev.Added...)
		}
	}
	size := eventBaseBytes
	for _, b := range merged.Reverted {
		size += blockBytes(b)
	}
	for _, b := range newest.Added {
		size += blockBytes(b)
	}
	left := len(older) // the oldest added blocks left out
	for left > 0 && size+blockBytes(older[left-1]) <= s.budget {
		size += blockBytes(older[left-1])
		left--
	}
	merged.Added = append(slices.Clip(older[left:]), newest.Added...)
	merged.MissedBlocks += left
	s.dropped.Add(int64(len(s.queue) - 1))
	clear(s.queue)
	s.queue = append(s.queue[:0], merged)
	s.bytes = size
}

func (s *subscriber) pop() (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return Event{}, false
	}
	ev := s.queue[0]
	s.queue[0] = Event{}
	s.queue = s.queue[1:]
	s.bytes -= eventBytes(ev)
	if len(s.queue) == 0 {
		s.queue, s.bytes = nil, 0
	}
	return ev, true
}

// run delivers the queue until close; what is still queued then is
// dropped (the reader has gone, or the manager has closed).
func (s *subscriber) run() {
	defer close(s.out)
	for {
		ev, ok := s.pop()
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.out <- ev:
		case <-s.done:
			return
		}
	}
}

// subscribers are the queues of the Subscribe calls.
type subscribers struct {
	mu sync.Mutex
	m  map[*subscriber]struct{}
}

// add keeps s, or closes it at once if closed says the manager is.
func (ss *subscribers) add(s *subscriber, closed func() bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if closed() {
		s.close()
		return
	}
	ss.m[s] = struct{}{}
}

func (ss *subscribers) remove(s *subscriber) {
	ss.mu.Lock()
	delete(ss.m, s)
	ss.mu.Unlock()
	s.close()
}

func (ss *subscribers) closeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for s := range ss.m {
		s.close()
		delete(ss.m, s)
	}
}

// emit queues ev for every subscriber (never waiting for one).
func (ss *subscribers) emit(ev Event) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for s := range ss.m {
		s.push(ev)
	}
}
