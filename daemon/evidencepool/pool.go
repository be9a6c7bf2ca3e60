// Package evidencepool keeps a node's equivocation evidence: two valid
// headers one forger signed for one slot (height and parent). It sees
// every block whose header the chain manager checked, on the main chain or
// a side branch, and every move of the main chain, as events the manager
// emits to its observers (chainmgr.Observer); it keeps each pair found as
// evidence until a block on the main chain carries it, hands pending
// evidence to the forger, takes evidence from peers (checked first), and
// remembers what was committed so it is never included twice (the state's
// slashing records say so on every branch; the pool's records serve the
// API and events). Everything is bounded: headers by the heights a reorg
// can reach and a count, evidence by a count, subscribers' queues by a
// count (daemon/feed, lossy: a slow subscriber misses events; the records
// have them).
//
// It knows nothing of the manager: its view of the chain (the head and
// the state after it) is a function it is given (the manager's snapshot)
// or else the last ChainMoved event's, and it reads the store only for a
// parent's seed when it found an equivocation, and for the recent main
// chain at start.
package evidencepool

import (
	"cmp"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/feed"
	"github.com/poslab/posd/daemon/metrics"
)

const (
	// maxSlotHeaders bounds the headers remembered for detection.
	maxSlotHeaders = 8192
	// maxEvidence bounds the evidence records (pending and committed).
	maxEvidence = 1024
)

// Record is what the pool knows of one equivocation.
type Record struct {
	Evidence chain.Evidence
	SeenAt   time.Time
	// IncludedIn is the main-chain block that carries it (0: pending);
	// Burned the stake it burned there.
	IncludedIn uint64
	Burned     uint64
}

// Event tells evidence subscribers what happened: "evidence" (a new
// equivocation seen here or received) or "slashing" (a block on the main
// chain carried it).
type Event struct {
	Type   string
	Record Record
}

// Blocks is what the pool reads of the store (chainmgr.Store has it).
type Blocks interface {
	BlockByHash(h chain.Hash) (*chain.Block, error)
	Blocks(from uint64, limit int) ([]*chain.Block, error)
	Headers(from uint64, limit int) ([]*chain.Header, error)
}

// Config configures New.
type Config struct {
	Genesis *chain.Genesis
	Blocks  Blocks
	Logger  *slog.Logger      // nil: discarded
	Now     func() time.Time  // nil: time.Now
	Metrics *metrics.Evidence // nil records nothing
	// Head, if set, is the chain's current head height and the state
	// after it (not changed by anyone): the manager's newest snapshot.
	// The pool's reads use it rather than the last ChainMoved, which a
	// reader may see a moment after the snapshot moved: a forger that
	// builds on the new head must not be handed evidence its parent
	// already carried. nil: the last event's.
	Head func() (uint64, *chain.State)
}

type slotKey struct {
	height uint64
	prev   chain.Hash
	forger chain.Address
}

type evKey struct {
	forger chain.Address
	height uint64
	// vote: a vote offence (double or surround vote), counted apart
	// from a header equivocation at the same height, as the chain does.
	vote bool
}

// Pool is the evidence pool. Its methods are safe for concurrent use.
type Pool struct {
	g      *chain.Genesis
	blocks Blocks
	log    *slog.Logger
	now    func() time.Time
	met    *metrics.Evidence // nil-safe
	headFn func() (uint64, *chain.State)

	mu      sync.Mutex
	head    uint64                   // the main chain's height, as last told
	st      *chain.State             // the state after it (read only)
	headers map[slotKey]chain.Header // the first header seen per slot
	records map[evKey]*Record

	feed *feed.Feed[Event] // events to subscribers (lossy: Records has them all)
}

// New makes an empty pool; Started gives it the chain.
func New(cfg Config) *Pool {
	p := &Pool{
		g: cfg.Genesis, blocks: cfg.Blocks, log: cfg.Logger, now: cfg.Now, met: cfg.Metrics, headFn: cfg.Head,
		headers: make(map[slotKey]chain.Header), records: make(map[evKey]*Record),
		feed: feed.New[Event](feed.Options{MaxSubscribers: maxSubscribers}),
		st:   chain.NewState(),
	}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// view is the chain's head height and the state after it (Config.Head,
// or as last told).
func (p *Pool) view() (uint64, *chain.State) {
	if p.headFn != nil {
		return p.headFn()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.head, p.st
}

// Started is the chain at start (head, the state after it, which the
// caller does not change): the pool fills its records from the evidence
// the main chain carried in its last MaxEvidenceAge blocks, so a restarted
// node lists recent slashings too (older ones live on in the state's
// records).
func (p *Pool) Started(head *chain.Block, st *chain.State) error {
	from := uint64(1)
	if head.Height > chain.MaxEvidenceAge {
		from = head.Height - chain.MaxEvidenceAge
	}
	// Headers first: a block without evidence has the zero evidence root,
	// and only the others are read whole (a start used to decode the
	// newest 65 blocks, transactions and all).
	headers, err := p.blocks.Headers(from, chain.MaxEvidenceAge+1)
	if err != nil {
		return err
	}
	var carried []*chain.Block
	for _, h := range headers {
		if h.EvidenceRoot == (chain.Hash{}) {
			continue
		}
		b, err := p.blocks.BlockByHash(h.Hash())
		if err != nil {
			return err
		}
		carried = append(carried, b)
	}
	p.mu.Lock()
	p.head, p.st = head.Height, st
	p.onChainLocked(carried, nil, st, p.now())
	p.mu.Unlock()
	return nil
}

// ChainMoved follows the main chain: head is its new tip and st the state
// after it (not changed by the caller); added blocks (oldest first) were
// checked like any other block, so they are looked at for equivocations;
// evidence in them is committed, evidence in reverted blocks (newest
// first) pending again.
func (p *Pool) ChainMoved(head *chain.Block, added, reverted []*chain.Block, st *chain.State) {
	p.mu.Lock()
	p.head, p.st = head.Height, st
	p.mu.Unlock()
	for _, b := range added {
		p.BlockChecked(b, b.Hash())
	}
	p.mu.Lock()
	p.onChainLocked(added, reverted, st, p.now())
	p.mu.Unlock()
}

// BlockChecked is the detection: b's header was checked in full (main
// chain or side branch); a second header for one slot becomes pending
// evidence, checked as a block would check it.
func (p *Pool) BlockChecked(b *chain.Block, hash chain.Hash) {
	if b.Height == 0 {
		return
	}
	head, st := p.view()
	first, found := p.observe(b, hash, head)
	if !found {
		return
	}
	parent, err := p.blocks.BlockByHash(b.PrevHash)
	if err != nil {
		p.log.Warn("equivocation seen but its parent is unreadable", "height", b.Height, "forger", string(b.Forger), "err", err.Error())
		return
	}
	e := chain.NewEvidence(parent.Seed, &first, &b.Header)
	if err := e.Check(p.g, max(head, b.Height)+1); err != nil {
		p.log.Warn("equivocation seen but the evidence does not check", "height", b.Height, "forger", string(b.Forger), "err", err.Error())
		return
	}
	if _, ok := st.SlashedFor(&e); ok {
		return
	}
	if _, added := p.add(e, p.now()); added {
		p.log.Warn("EQUIVOCATION: a forger signed two blocks for one slot", "forger", string(e.Forger()), "height", e.Height(),
			"a", e.A.Hash().String(), "b", e.B.Hash().String())
	}
}

// observe remembers b's header for its slot; a second, different header
// for the slot is an equivocation, returned as evidence (unchecked).
func (p *Pool) observe(b *chain.Block, hash chain.Hash, head uint64) (first chain.Header, found bool) {
	k := slotKey{b.Height, b.PrevHash, b.Forger}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, known := p.records[evKey{b.Forger, b.Height, false}]; known {
		return chain.Header{}, false
	}
	h, ok := p.headers[k]
	if !ok {
		if len(p.headers) >= maxSlotHeaders {
			p.pruneHeadersLocked(head)
		}
		if len(p.headers) < maxSlotHeaders {
			p.headers[k] = b.Header
		}
		return chain.Header{}, false
	}
	if h.Hash() == hash {
		return chain.Header{}, false
	}
	return h, true
}

// Equivocated reports whether evidence is on record against forger at
// height on parent prev: further blocks for that slot prove nothing new
// (the manager's side-block caps ask).
func (p *Pool) Equivocated(forger chain.Address, height uint64, prev chain.Hash) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.records[evKey{forger, height, false}]
	return ok && r.Evidence.A.PrevHash == prev
}

// pruneHeadersLocked drops headers no evidence can use any more, and if
// that frees nothing, the lowest half.
func (p *Pool) pruneHeadersLocked(head uint64) {
	for k := range p.headers {
		if k.height+chain.MaxEvidenceAge < head {
			delete(p.headers, k)
		}
	}
	if len(p.headers) < maxSlotHeaders {
		return
	}
	hs := make([]uint64, 0, len(p.headers))
	for k := range p.headers {
		hs = append(hs, k.height)
	}
	slices.Sort(hs)
	cut := hs[len(hs)/2]
	for k := range p.headers {
		if k.height <= cut {
			delete(p.headers, k)
		}
	}
}

// add keeps e as pending evidence; false if the (forger, height) is known.
func (p *Pool) add(e chain.Evidence, now time.Time) (Record, bool) {
	k := keyOf(&e)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.records[k]; ok {
		return Record{}, false
	}
	if len(p.records) >= maxEvidence {
		p.evictLocked()
	}
	r := &Record{Evidence: e, SeenAt: now}
	p.records[k] = r
	p.met.Received()
	p.emitLocked(Event{Type: "evidence", Record: *r})
	return *r, true
}

// evictLocked drops the oldest record by height: committed ones live in
// the state too, and old pending ones could not be included any more.
func (p *Pool) evictLocked() {
	var oldest evKey
	first := true
	for k := range p.records {
		if first || k.height < oldest.height {
			oldest, first = k, false
		}
	}
	delete(p.records, oldest)
}

// onChainLocked: evidence in added blocks is committed (with what it
// burned in st, the state after them), in reverted blocks pending again.
func (p *Pool) onChainLocked(added, reverted []*chain.Block, st *chain.State, now time.Time) {
	for _, b := range reverted {
		for i := range b.Evidence {
			if r, ok := p.records[keyOf(&b.Evidence[i])]; ok && r.IncludedIn == b.Height {
				r.IncludedIn, r.Burned = 0, 0
			}
		}
	}
	for _, b := range added {
		for i := range b.Evidence {
			e := &b.Evidence[i]
			k := keyOf(e)
			r, ok := p.records[k]
			if !ok {
				if len(p.records) >= maxEvidence {
					p.evictLocked()
				}
				r = &Record{Evidence: *e, SeenAt: now}
				p.records[k] = r
			}
			r.IncludedIn = b.Height
			if s, ok := st.SlashedFor(e); ok {
				r.IncludedIn, r.Burned = s.IncludedIn, s.Burned
			}
			p.met.Committed(1, r.Burned)
			p.emitLocked(Event{Type: "slashing", Record: *r})
		}
	}
}

// emitLocked queues ev for the subscribers; a slow one misses it
// (feed.DropNewest), Records has it.
func (p *Pool) emitLocked(ev Event) { p.feed.Send(ev) }

// Add takes evidence from a peer. It returns true when the evidence is
// new here and valid (forward it), false when it is known, already
// slashed on the main chain, or too old to include any more; a rule error
// when it is malformed (the sender's fault, chainmgr.IsPeerFault).
//
// Evidence is dropped unchecked when the pool knows its (forger, height),
// and after the check when it is for a height this node has not reached
// (a node behind leaves it to the others) or a forger without stake here
// (it would burn nothing; keys without stake cannot flood the pool).
func (p *Pool) Add(e chain.Evidence) (bool, error) {
	p.mu.Lock()
	_, known := p.records[keyOf(&e)]
	p.mu.Unlock()
	head, st := p.view()
	if known {
		return false, nil
	}
	next := head + 1
	if err := e.Check(p.g, max(next, e.Height()+1)); err != nil {
		return false, err
	}
	if e.Height() >= next || next-e.Height() > p.g.EvidenceAge(e.KindOf()) {
		return false, nil
	}
	// Slashing reaches unbonding stake too.
	if acc := st.Account(e.Forger()); acc.Stake == 0 && acc.Unbonding == 0 {
		return false, nil
	}
	if _, ok := st.SlashedFor(&e); ok {
		return false, nil
	}
	_, added := p.add(e, p.now())
	switch {
	case added && e.KindOf() == chain.EvidenceEquivocation:
		p.log.Warn("EQUIVOCATION: evidence received", "forger", string(e.Forger()), "height", e.Height())
	case added: // a double or surround vote
		p.log.Warn("SLASHABLE VOTES: evidence received", "kind", string(e.KindOf()), "voter", string(e.Forger()), "height", e.Height())
	}
	return added, nil
}

// AddEvidence is Add under the name the network's handler asks for.
func (p *Pool) AddEvidence(e chain.Evidence) (bool, error) { return p.Add(e) }

// Pending is the evidence a block on the current head may carry: not
// slashed on the main chain, not too old for the next height, at most
// chain.MaxBlockEvidence items, oldest first.
func (p *Pool) Pending() []chain.Evidence {
	head, st := p.view()
	next := head + 1
	p.mu.Lock()
	var out []chain.Evidence
	for k, r := range p.records {
		if r.IncludedIn != 0 || k.height >= next || next-k.height > p.g.EvidenceAge(r.Evidence.KindOf()) {
			continue
		}
		if _, ok := st.SlashedFor(&r.Evidence); ok {
			continue
		}
		out = append(out, r.Evidence)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b chain.Evidence) int {
		if a.Height() != b.Height() {
			return cmp.Compare(a.Height(), b.Height())
		}
		return cmp.Compare(a.Forger(), b.Forger())
	})
	if len(out) > chain.MaxBlockEvidence {
		out = out[:chain.MaxBlockEvidence]
	}
	return out
}

// Records lists the evidence records, newest height first.
func (p *Pool) Records() []Record {
	p.mu.Lock()
	out := make([]Record, 0, len(p.records))
	for _, r := range p.records {
		out = append(out, *r)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Record) int {
		if c := cmp.Compare(b.Evidence.Height(), a.Evidence.Height()); c != 0 {
			return c
		}
		return cmp.Compare(a.Evidence.Forger(), b.Evidence.Forger())
	})
	return out
}

// maxSubscribers bounds the subscribers (each holds a queue).
const maxSubscribers = 256

// Subscribe delivers evidence events until cancel (which closes the
// channel); a subscriber that does not keep up misses the newest events
// (feed.DropNewest: its queue holds buffer, at least 1). Beyond
// maxSubscribers, the channel is never written to.
func (p *Pool) Subscribe(buffer int) (<-chan Event, func()) {
	s, err := p.feed.Subscribe(feed.DropNewest[Event](buffer))
	if err != nil {
		return make(chan Event), func() {}
	}
	return s.C(), s.Cancel
}

// keyOf is the record key of an evidence item.
func keyOf(e *chain.Evidence) evKey {
	return evKey{e.Forger(), e.Height(), e.KindOf() != chain.EvidenceEquivocation}
}

// Dropped counts the events subscribers missed for not keeping up.
func (p *Pool) Dropped() int64 { return p.feed.Stats().Dropped }
