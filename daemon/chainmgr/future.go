package chainmgr

import (
	"cmp"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/poslab/posd/chain"
)

// Blocks from a little ahead of our clock. A block whose timestamp is
// more than chain.MaxFutureMs ahead of this node's clock is refused
// (future_timestamp), but when it is no more than maxAheadSlots slots
// ahead it is kept, bounded in count and bytes, and offered again when it
// is due: a node whose clock is a few seconds slow then follows the chain
// a few seconds late instead of refusing every block for good. Each such
// block (its forger elected and its signature checked before its
// timestamp was) and valid once due is evidence that our clock is slow; a
// node that keeps seeing them says so (ClockBehind, a log line at most once
// a minute). A block whose parent is kept here waits with it.

const (
	// maxAheadSlots bounds how far ahead a kept block may be.
	maxAheadSlots = 10
	// maxFutureBlocks and maxFutureBytes bound what is kept.
	maxFutureBlocks = 256
	maxFutureBytes  = 16 << 20
	// clockWindow is how long a sighting counts for ClockBehind, and
	// clockMinSightings how many it needs.
	clockWindow       = 2 * time.Minute
	clockMinSightings = 3
	clockLogEvery     = time.Minute
	clockSightings    = 32 // ring of the latest sightings
)

type futureBlock struct {
	b     *chain.Block
	hash  chain.Hash
	size  int
	ahead int64 // ms ahead of our clock when it arrived
}

// sighting is one block seen ahead of our clock: by how much, and when.
type sighting struct {
	at    time.Time
	ahead int64 // ms
}

// future is the holder of early blocks and the clock evidence. It offers
// a due block to process (the manager's import) from its own goroutine.
type future struct {
	slotMs  int64
	now     func() time.Time
	log     *slog.Logger
	closed  func() bool
	process func(*chain.Block) error

	mu      sync.Mutex
	blocks  map[chain.Hash]futureBlock
	bytes   int
	seen    []sighting // ring, newest at (next-1) % len
	next    int
	logged  time.Time
	wake    chan struct{}
	stopped chan struct{}
}

func newFuture() *future {
	return &future{blocks: make(map[chain.Hash]futureBlock), wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// has reports whether a block with hash h is kept until due.
func (f *future) has(h chain.Hash) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.blocks[h]
	return ok
}

// holdIfEarly keeps b if err says it came from a little ahead of our
// clock, or if its parent is such a block kept here and it is ahead too;
// it returns whether it did.
func (f *future) holdIfEarly(b *chain.Block, err error) bool {
	if err == nil {
		return false
	}
	now := f.now()
	ahead := b.Timestamp - now.UnixMilli()
	if ahead <= chain.MaxFutureMs || ahead > maxAheadSlots*f.slotMs {
		return false
	}
	hash := b.Hash()
	f.mu.Lock()
	defer f.mu.Unlock()
	if !errors.Is(err, chain.ErrFutureBlock) {
		if _, ok := f.blocks[b.PrevHash]; !ok || !errors.Is(err, ErrUnknownParent) {
			return false
		}
	}
	if _, ok := f.blocks[hash]; ok {
		return true
	}
	size := len(chain.EncodeBlock(b))
	if len(f.blocks) >= maxFutureBlocks || f.bytes+size > maxFutureBytes {
		return false
	}
	f.blocks[hash] = futureBlock{b: b, hash: hash, size: size, ahead: ahead}
	f.bytes += size
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return true
}

// sight records a kept block that turned out valid once due: evidence that
// our clock is behind by about its lead at arrival. It logs, at most once
// a minute, while the evidence holds.
func (f *future) sight(ahead int64) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	s := sighting{at: now, ahead: ahead}
	if len(f.seen) < clockSightings {
		f.seen = append(f.seen, s)
	} else {
		f.seen[f.next%clockSightings] = s
	}
	f.next++
	if behind, ok := f.behindLocked(now); ok && now.Sub(f.logged) >= clockLogEvery {
		f.logged = now
		f.log.Warn("this node's clock looks slow: valid blocks arrive ahead of it and wait until due; check its time synchronisation (NTP)",
			"behind_ms", behind.Milliseconds(), "kept_until_due", len(f.blocks))
	}
}

// behindLocked is the median lead of the recent sightings, if there are
// enough of them.
func (f *future) behindLocked(now time.Time) (time.Duration, bool) {
	var leads []int64
	for _, s := range f.seen {
		if !s.at.IsZero() && now.Sub(s.at) <= clockWindow {
			leads = append(leads, s.ahead)
		}
	}
	if len(leads) < clockMinSightings {
		return 0, false
	}
	slices.Sort(leads)
	return time.Duration(leads[len(leads)/2]) * time.Millisecond, true
}

// ClockBehind is how far this node's clock seems behind the network's: the
// median lead, over our clock at arrival, of the kept blocks found valid
// in the last two minutes, when there were at least three; false otherwise.
// (The Manager embeds the future: these two are its.)
func (f *future) ClockBehind() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.behindLocked(f.now())
}

// FutureBlocks is the number of early blocks kept until due.
func (f *future) FutureBlocks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.blocks)
}

// takeDue removes and returns the kept blocks now due, lowest first, and
// how long until the next one is.
func (f *future) takeDue() ([]futureBlock, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	nowMs := f.now().UnixMilli()
	var due []futureBlock
	next := time.Duration(-1)
	for h, fb := range f.blocks {
		wait := time.Duration(fb.b.Timestamp-chain.MaxFutureMs-nowMs) * time.Millisecond
		if wait <= 0 {
			due = append(due, fb)
			delete(f.blocks, h)
			f.bytes -= fb.size
			continue
		}
		if next < 0 || wait < next {
			next = wait
		}
	}
	slices.SortFunc(due, func(a, b futureBlock) int { return cmp.Compare(a.b.Height, b.b.Height) })
	return due, next
}

// futureLoop offers each kept block again when it is due, until Close.
func (f *future) loop() {
	for {
		due, next := f.takeDue()
		for _, fb := range due {
			if f.closed() {
				return
			}
			err := f.process(fb.b)
			switch {
			case err == nil, errors.Is(err, ErrSideBlock):
				f.sight(fb.ahead)
			case f.holdIfEarly(fb.b, err): // our clock went back
			case !errors.Is(err, ErrKnownBlock):
				f.log.Debug("a block kept until due was refused", "height", fb.b.Height, "hash", fb.hash.String(), "err", err.Error())
			}
		}
		if next < 0 {
			next = time.Hour
		}
		t := time.NewTimer(next)
		select {
		case <-f.stopped:
			t.Stop()
			return
		case <-f.wake:
		case <-t.C:
		}
		t.Stop()
	}
}
