package chainmgr

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/metrics"
)

// The evidence pool: the manager sees every block it validates, on the
// main chain or a side branch, so it is where an equivocation shows: two
// valid headers for one slot (height and parent) by one forger. It keeps
// the pair as evidence until a block on the main chain carries it, hands
// pending evidence to the forger, takes evidence from peers (checked
// first), and remembers what was committed so it is never included twice
// (the state's slashing records say so on every branch; the pool's
// records serve the API and events). Everything is bounded: headers by
// the heights a reorg can reach and a count, evidence by a count.

const (
	// maxSlotHeaders bounds the headers remembered for detection.
	maxSlotHeaders = 8192
	// maxEvidence bounds the evidence records (pending and committed).
	maxEvidence = 1024
)

// EvidenceRecord is what the pool knows of one equivocation.
type EvidenceRecord struct {
	Evidence chain.Evidence
	SeenAt   time.Time
	// IncludedIn is the main-chain block that carries it (0: pending);
	// Burned the stake it burned there.
	IncludedIn uint64
	Burned     uint64
}

// EvidenceEvent tells evidence subscribers what happened: "evidence" (a
// new equivocation seen here or received) or "slashing" (a block on the
// main chain carried it).
type EvidenceEvent struct {
	Type   string
	Record EvidenceRecord
}

type slotKey struct {
	height uint64
	prev   chain.Hash
	forger chain.Address
}

type evKey struct {
	forger chain.Address
	height uint64
}

type evidencePool struct {
	mu      sync.Mutex
	headers map[slotKey]chain.Header // the first header seen per slot
	records map[evKey]*EvidenceRecord
	subs    map[chan EvidenceEvent]struct{}
	met     *metrics.Evidence // nil-safe
}

func (p *evidencePool) init() {
	p.headers = make(map[slotKey]chain.Header)
	p.records = make(map[evKey]*EvidenceRecord)
	p.subs = make(map[chan EvidenceEvent]struct{})
}

// observe remembers b's header for its slot; a second, different header
// for the slot is an equivocation, returned as evidence (unchecked).
// The caller has validated b's header.
func (p *evidencePool) observe(b *chain.Block, hash chain.Hash, head uint64) (first chain.Header, found bool) {
	k := slotKey{b.Height, b.PrevHash, b.Forger}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, known := p.records[evKey{b.Forger, b.Height}]; known {
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

// equivocated reports whether evidence is on record against forger at
// height on parent prev: further blocks for that slot prove nothing new.
func (p *evidencePool) equivocated(forger chain.Address, height uint64, prev chain.Hash) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.records[evKey{forger, height}]
	return ok && r.Evidence.A.PrevHash == prev
}

// pruneHeadersLocked drops headers no evidence can use any more, and if
// that frees nothing, the lowest half.
func (p *evidencePool) pruneHeadersLocked(head uint64) {
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
func (p *evidencePool) add(e chain.Evidence, now time.Time) (EvidenceRecord, bool) {
	k := evKey{e.Forger(), e.Height()}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.records[k]; ok {
		return EvidenceRecord{}, false
	}
	if len(p.records) >= maxEvidence {
		p.evictLocked()
	}
	r := &EvidenceRecord{Evidence: e, SeenAt: now}
	p.records[k] = r
	p.met.Received()
	p.emitLocked(EvidenceEvent{Type: "evidence", Record: *r})
	return *r, true
}

// evictLocked drops the oldest record by height: committed ones live in
// the state too, and old pending ones could not be included any more.
func (p *evidencePool) evictLocked() {
	var oldest evKey
	first := true
	for k := range p.records {
		if first || k.height < oldest.height {
			oldest, first = k, false
		}
	}
	delete(p.records, oldest)
}

// onChain follows the main chain: evidence in added blocks is committed
// (with what it burned in st, the state after them), in reverted blocks
// pending again.
func (p *evidencePool) onChain(added, reverted []*chain.Block, st *chain.State, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range reverted {
		for i := range b.Evidence {
			if r, ok := p.records[evKey{b.Evidence[i].Forger(), b.Evidence[i].Height()}]; ok && r.IncludedIn == b.Height {
				r.IncludedIn, r.Burned = 0, 0
			}
		}
	}
	for _, b := range added {
		for i := range b.Evidence {
			e := &b.Evidence[i]
			k := evKey{e.Forger(), e.Height()}
			r, ok := p.records[k]
			if !ok {
				if len(p.records) >= maxEvidence {
					p.evictLocked()
				}
				r = &EvidenceRecord{Evidence: *e, SeenAt: now}
				p.records[k] = r
			}
			r.IncludedIn = b.Height
			if s, ok := st.SlashedFor(e); ok {
				r.IncludedIn, r.Burned = s.IncludedIn, s.Burned
			}
			p.met.Committed(1, r.Burned)
			p.emitLocked(EvidenceEvent{Type: "slashing", Record: *r})
		}
	}
}

func (p *evidencePool) emitLocked(ev EvidenceEvent) {
	for ch := range p.subs {
		select {
		case ch <- ev:
		default: // a slow subscriber misses it; GET /v1/evidence has it
		}
	}
}

// observeEvidence is the manager's detection hook, called for each block
// validated in full (main chain or side branch): a second header for one
// slot becomes pending evidence, checked as a block would check it.
func (m *Manager) observeEvidence(b *chain.Block, hash chain.Hash) {
	if b.Height == 0 {
		return
	}
	head := m.snap.Load().Height()
	first, found := m.ev.observe(b, hash, head)
	if !found {
		return
	}
	parent, err := m.st.BlockByHash(b.PrevHash)
	if err != nil {
		m.log.Warn("equivocation seen but its parent is unreadable", "height", b.Height, "forger", string(b.Forger), "err", err.Error())
		return
	}
	e := chain.NewEvidence(parent.Seed, &first, &b.Header)
	if err := e.Check(m.g, max(head, b.Height)+1); err != nil {
		m.log.Warn("equivocation seen but the evidence does not check", "height", b.Height, "forger", string(b.Forger), "err", err.Error())
		return
	}
	if _, ok := m.snap.Load().state.SlashedFor(&e); ok {
		return
	}
	if _, added := m.ev.add(e, m.now()); added {
		m.log.Warn("EQUIVOCATION: a forger signed two blocks for one slot", "forger", string(e.Forger()), "height", e.Height(),
			"a", e.A.Hash().String(), "b", e.B.Hash().String())
	}
}

// AddEvidence takes evidence from a peer. It returns true when the
// evidence is new here and valid (forward it), false when it is known,
// already slashed on the main chain, or too old to include any more; a
// rule error when it is malformed (the sender's fault, see IsPeerFault).
//
// Evidence is dropped unchecked when the pool knows its (forger, height),
// and after the check when it is for a height this node has not reached
// (a node behind leaves it to the others) or a forger without stake here
// (it would burn nothing; keys without stake cannot flood the pool).
func (m *Manager) AddEvidence(e chain.Evidence) (bool, error) {
	m.ev.mu.Lock()
	_, known := m.ev.records[evKey{e.Forger(), e.Height()}]
	m.ev.mu.Unlock()
	if known {
		return false, nil
	}
	snap := m.snap.Load()
	next := snap.Height() + 1
	if err := e.Check(m.g, max(next, e.Height()+1)); err != nil {
		return false, err
	}
	if e.Height() >= next || next-e.Height() > m.g.EvidenceAge(e.KindOf()) {
		return false, nil
	}
	// Slashing reaches unbonding stake too.
	if acc := snap.state.Account(e.Forger()); acc.Stake == 0 && acc.Unbonding == 0 {
		return false, nil
	}
	if _, ok := snap.state.SlashedFor(&e); ok {
		return false, nil
	}
	_, added := m.ev.add(e, m.now())
	if added {
		m.log.Warn("EQUIVOCATION: evidence received", "forger", string(e.Forger()), "height", e.Height())
	}
	return added, nil
}

// PendingEvidence is the evidence a block on the current head may carry:
// not slashed on the main chain, not too old for the next height, at most
// chain.MaxBlockEvidence items, oldest first.
func (m *Manager) PendingEvidence() []chain.Evidence {
	snap := m.snap.Load()
	next := snap.Height() + 1
	m.ev.mu.Lock()
	var out []chain.Evidence
	for k, r := range m.ev.records {
		if r.IncludedIn != 0 || k.height >= next || next-k.height > m.g.EvidenceAge(r.Evidence.KindOf()) {
			continue
		}
		if _, ok := snap.state.SlashedFor(&r.Evidence); ok {
			continue
		}
		out = append(out, r.Evidence)
	}
	m.ev.mu.Unlock()
	slices.SortFunc(out, func(a, b chain.Evidence) int {
		if a.Height() != b.Height() {
			return cmp.Compare(a.Height(), b.Height())
		}
		return compareAddr(a.Forger(), b.Forger())
	})
	if len(out) > chain.MaxBlockEvidence {
		out = out[:chain.MaxBlockEvidence]
	}
	return out
}

func compareAddr(a, b chain.Address) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Evidence lists the evidence records, newest height first.
func (m *Manager) Evidence() []EvidenceRecord {
	m.ev.mu.Lock()
	out := make([]EvidenceRecord, 0, len(m.ev.records))
	for _, r := range m.ev.records {
		out = append(out, *r)
	}
	m.ev.mu.Unlock()
	slices.SortFunc(out, func(a, b EvidenceRecord) int {
		if a.Evidence.Height() != b.Evidence.Height() {
			if a.Evidence.Height() > b.Evidence.Height() {
				return -1
			}
			return 1
		}
		return compareAddr(a.Evidence.Forger(), b.Evidence.Forger())
	})
	return out
}

// SubscribeEvidence delivers evidence events until cancel; a subscriber
// that does not keep up misses events.
func (m *Manager) SubscribeEvidence(buffer int) (<-chan EvidenceEvent, func()) {
	ch := make(chan EvidenceEvent, max(buffer, 1))
	m.ev.mu.Lock()
	m.ev.subs[ch] = struct{}{}
	m.ev.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			m.ev.mu.Lock()
			delete(m.ev.subs, ch)
			m.ev.mu.Unlock()
		})
	}
}

// Slashed returns the slashing of forger for height on this snapshot's
// main chain.
func (s *Snapshot) Slashed(forger chain.Address, height uint64) (chain.Slashing, bool) {
	return s.state.Slashed(forger, height)
}

// ReadState is the state after the head, for elections and reads: callers
// must not change it (chain.ElectionTable may be called on it).
func (s *Snapshot) ReadState() *chain.State { return s.state }

// loadEvidence fills the pool's records from the evidence the main chain
// carried in its last MaxEvidenceAge blocks, so a restarted node lists
// recent slashings too (older ones live on in the state's records).
func (m *Manager) loadEvidence() error {
	from := uint64(1)
	if m.head.Height > chain.MaxEvidenceAge {
		from = m.head.Height - chain.MaxEvidenceAge
	}
	blocks, err := m.st.Blocks(from, chain.MaxEvidenceAge+1)
	if err != nil {
		return err
	}
	var carried []*chain.Block
	for _, b := range blocks {
		if len(b.Evidence) > 0 {
			carried = append(carried, b)
		}
	}
	m.ev.onChain(carried, nil, m.state, m.now())
	return nil
}
