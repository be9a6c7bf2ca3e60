package chainmgr

import (
	"fmt"

	"github.com/poslab/posd/chain"
)

// Side blocks are bounded. A side block is valid and within reorg reach,
// so it is kept in case its branch wins later; but a staker can sign any
// number of valid variants of a block it was elected for (timestamps, the
// transactions it picks), each costing it one header signature, and
// without a bound 200 of them took a node's chain.db from 108 MB to 776 MB
// in 13 s. So a block that arrives off the main chain and loses the fork
// choice is stored only while:
//   - its slot (height, parent, forger, rank: one election's place) holds
//     fewer than sideCaps.perSlot stored side blocks: a second variant
//     proves an equivocation, a third adds nothing;
//   - its forger has fewer than sideCaps.perForger side blocks stored
//     (within reorg reach: pruning frees them);
//   - side blocks in all hold fewer than sideCaps.bytes encoded bytes;
//   - its forger has not equivocated on this slot already (nor been slashed
//     for this height): once evidence is recorded, further variants are
//     only headers of known evidence.
//
// A block refused by a cap is not stored and not held against whoever sent
// it (ErrSideBlock, wrapped); its header, checked, still feeds the evidence
// pool, which needs just two headers. If its branch would win, it is not a
// side block and no cap applies: the chain switches to it. The caps apply
// to blocks that come one by one (gossip, the API, the forger); blocks
// that come by sync (ProcessBlocks) are stored whatever the caps say and
// are not counted. Sync hands a branch over in batches of about two full
// blocks, and no batch can tell whether its branch will win: a branch
// forking deeper than a batch, or one at the head's height that wins on
// rank, would lose an ancestor to a cap that honest side blocks filled (a
// staker elected at losing ranks fills 256 MiB with full blocks), its
// next block would find no parent, and the node would stay on the losing
// fork. What sync stores is bounded otherwise: one session is one peer's
// range, forking within the reorg limit, and a session that moves nothing
// is not repeated before the next poll; pruning frees it all. Blocks the
// main chain leaves in a reorg become side blocks without counting
// against the caps either (they were the main chain; a reorg costs a
// better branch).

// sideCaps are the bounds; defaultSideCaps unless a test sets its own.
type sideCaps struct {
	perSlot   int
	perForger int
	bytes     int64
}

// defaultSideCaps: two variants per slot (one equivocation's proof), two
// reorgs' worth of side blocks per forger, and 256 MiB in all (about 100
// full blocks of 10,000 transactions).
var defaultSideCaps = sideCaps{perSlot: 2, perForger: 2 * MaxReorgDepth, bytes: 256 << 20}

// sideSlot is one election's place: a block's height, parent, forger and rank.
type sideSlot struct {
	height uint64
	prev   chain.Hash
	forger chain.Address
	rank   uint32
}

func slotOf(b *chain.Block) sideSlot {
	return sideSlot{b.Height, b.PrevHash, b.Forger, b.Rank}
}

type sideEntry struct {
	slot sideSlot
	size int64
}

// sideBook counts the side blocks stored under the caps, by slot, forger
// and bytes. Guarded by the index's lock.
type sideBook struct {
	entries   map[chain.Hash]sideEntry
	perSlot   map[sideSlot]int
	perForger map[chain.Address]int
	bytes     int64
}

func (s *sideBook) init() {
	s.entries = map[chain.Hash]sideEntry{}
	s.perSlot = map[sideSlot]int{}
	s.perForger = map[chain.Address]int{}
	s.bytes = 0
}

func (s *sideBook) add(h chain.Hash, e sideEntry) {
	if _, ok := s.entries[h]; ok {
		return
	}
	s.entries[h] = e
	s.perSlot[e.slot]++
	s.perForger[e.slot.forger]++
	s.bytes += e.size
}

func (s *sideBook) remove(h chain.Hash) {
	e, ok := s.entries[h]
	if !ok {
		return
	}
	delete(s.entries, h)
	if s.perSlot[e.slot]--; s.perSlot[e.slot] <= 0 {
		delete(s.perSlot, e.slot)
	}
	if s.perForger[e.slot.forger]--; s.perForger[e.slot.forger] <= 0 {
		delete(s.perForger, e.slot.forger)
	}
	s.bytes -= e.size
}

// refusal says which cap keeps b (of size bytes, 0: unknown yet) from
// being stored, or "".
func (s *sideBook) refusal(b *chain.Block, size int64, caps sideCaps) string {
	slot := slotOf(b)
	switch {
	case s.perSlot[slot] >= caps.perSlot:
		return fmt.Sprintf("its slot (height %d, forger %s, rank %d) holds %d side blocks already", b.Height, b.Forger, b.Rank, s.perSlot[slot])
	case s.perForger[b.Forger] >= caps.perForger:
		return fmt.Sprintf("forger %s has %d side blocks stored already", b.Forger, s.perForger[b.Forger])
	case s.bytes+size > caps.bytes:
		return fmt.Sprintf("side blocks hold %d bytes, the budget is %d", s.bytes, caps.bytes)
	}
	return ""
}

// sideRefusal says why b, a block off the main chain, may not be stored
// as a side block ("" if it may): a cap, or an equivocation already on
// record for its slot. size is its encoded size (0 if not known yet).
func (m *Manager) sideRefusal(b *chain.Block, size int64) string {
	if m.ev.Equivocated(b.Forger, b.Height, b.PrevHash) {
		return fmt.Sprintf("forger %s equivocated at height %d on this parent already", b.Forger, b.Height)
	}
	if _, ok := m.snap.Load().Slashed(b.Forger, b.Height); ok {
		return fmt.Sprintf("forger %s was slashed for height %d already", b.Forger, b.Height)
	}
	m.ix.mu.RLock()
	defer m.ix.mu.RUnlock()
	return m.ix.book.refusal(b, size, m.caps)
}

// sideStats are the side blocks counted under the caps (tests).
func (ix *index) sideStats() (blocks int, bytes int64) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.book.entries), ix.book.bytes
}

// errNotStored is a side block a cap keeps from the store.
func errNotStored(reason string) error {
	return fmt.Errorf("%w; not stored: %s", ErrSideBlock, reason)
}
