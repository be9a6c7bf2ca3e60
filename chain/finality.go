package chain

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Finality is the finality gadget's record on one branch (the v3 rules
// in docs/CONSENSUS.md): the justified and final checkpoints and what is needed to count
// the votes that blocks carry. It is part of the State: Apply replaces it
// (never mutates it: a record others read stays as it is), the Undo keeps
// the one before, and stores persist it in its binary encoding.
//
// Why it is a function of the chain alone. Justification and finality are
// computed only from votes included in blocks, never from votes seen on
// the wire, so every node that holds a branch, syncing or not, computes
// the same record for it; and what a branch says is final is what its
// blocks prove.
//
// Why weights come from the source. Every vote for a link s→t counts with
// the voter's lots in the state after s, so all votes of one link are
// counted against one table, and "more than 2/3" is a statement about one
// set of stakers. Two conflicting final checkpoints then need two
// supermajority links whose tables meet at a common justified ancestor,
// and by induction from genesis (justified by definition) more than a
// third of some table must have signed a slashable pair (SlashableVotes):
// accountable safety. Stake moved on a private branch weighs nothing until
// that branch has justified a checkpoint after the move, which needs
// votes weighed by a table both branches share.
//
// Why it is bounded. A vote's target may be at most MaxVoteAge heights
// below the block carrying it (max_reorg, as evidence), so the record
// keeps the checkpoints of that window with their tallies, plus the
// latest justified and final checkpoints (the sources an honest voter
// uses however long finality stalls). Weight tables are shared: a
// checkpoint whose block left every staker's lots as they were points at
// the table before it, so a branch whose stakes rarely change holds one
// table whatever its length.
type Finality struct {
	// Justified is the highest justified checkpoint of the branch: what a
	// fork choice compares, and an honest voter's source.
	Justified Checkpoint
	// Finalized is the highest final checkpoint; every block at or below
	// its height on this branch is final.
	Finalized Checkpoint

	// head is the height of the block the record is after.
	head uint64
	// dirty: a block after the newest checkpoint changed someone's lots,
	// so the next checkpoint needs a table of its own.
	dirty bool
	// entries are the kept checkpoints, by ascending height.
	entries []*cpEntry
}

// MaxVoteAge is how far below a block the target of a vote it carries may
// be: max_reorg, as for evidence. A vote older than that can no longer
// matter to a fork choice that never reorganises deeper.
const MaxVoteAge = 64

// WeightTable is the lots of every staker in the state after one
// checkpoint: the weights of the votes whose source it is. Immutable.
type WeightTable struct {
	entries []VoterLots // by address
	total   uint64
}

// VoterLots is one staker's lots in a weight table.
type VoterLots struct {
	Voter Address `json:"voter"`
	Lots  uint64  `json:"lots"`
}

// Lots returns a's lots in the table (0 for a non-staker).
func (t *WeightTable) Lots(a Address) uint64 {
	if i := t.index(a); i >= 0 {
		return t.entries[i].Lots
	}
	return 0
}

// index is a's position in the table, -1 for a non-staker.
func (t *WeightTable) index(a Address) int {
	i, ok := slices.BinarySearchFunc(t.entries, a, func(e VoterLots, a Address) int { return strings.Compare(string(e.Voter), string(a)) })
	if !ok {
		return -1
	}
	return i
}

// Total is the sum of every staker's lots.
func (t *WeightTable) Total() uint64 { return t.total }

// Entries lists the stakers and their lots by address (a copy).
func (t *WeightTable) Entries() []VoterLots { return slices.Clone(t.entries) }

func newWeightTable(es []VoterLots) *WeightTable {
	t := &WeightTable{entries: es}
	for _, e := range es {
		t.total += e.Lots
	}
	return t
}

// weightTableOf is the table of s's stakers in whole lots of lotSize.
func weightTableOf(s *State, lotSize uint64) *WeightTable {
	es := make([]VoterLots, 0, s.stakers.Len())
	s.stakers.each(func(a Address, stake uint64) bool {
		if n := stake / max(lotSize, 1); n > 0 {
			es = append(es, VoterLots{a, n})
		}
		return true
	})
	slices.SortFunc(es, func(x, y VoterLots) int { return strings.Compare(string(x.Voter), string(y.Voter)) })
	return newWeightTable(es)
}

// cpEntry is one kept checkpoint: immutable once a record holds it.
type cpEntry struct {
	cp        Checkpoint
	justified bool
	table     *WeightTable // the lots after the checkpoint: weights of votes from it
	links     []*link      // votes with this checkpoint as target, one per source, by source
}

// link is the tally of the included votes for one source → target. Its
// voters are a bit set over the source's table (bit i: entry i voted), so
// a tally costs a bit per staker, not an address.
type link struct {
	source Checkpoint
	table  *WeightTable // the source's
	voted  []byte       // len(table.entries) bits, the last byte's spare bits zero
	lots   uint64       // the voters' lots in table
}

func (l *link) has(i int) bool { return l.voted[i/8]&(1<<(i%8)) != 0 }

// voters lists the addresses that voted for the link.
func (l *link) voters() []Address {
	var out []Address
	for i, e := range l.table.entries {
		if l.has(i) {
			out = append(out, e.Voter)
		}
	}
	return out
}

func supermajority(lots, total uint64) bool {
	// 3w > 2T in 128 bits: lots are bounded by max_lots, but the record
	// does not rely on it.
	return total > 0 && mulGreater(lots, 3, total, 2)
}

// mulGreater reports a*x > b*y without overflow.
func mulGreater(a, x, b, y uint64) bool {
	ahi, alo := mul64(a, x)
	bhi, blo := mul64(b, y)
	return ahi > bhi || ahi == bhi && alo > blo
}

func mul64(a, b uint64) (hi, lo uint64) {
	const mask32 = 1<<32 - 1
	a0, a1 := a&mask32, a>>32
	b0, b1 := b&mask32, b>>32
	w0 := a0 * b0
	t := a1*b0 + w0>>32
	w1 := t&mask32 + a0*b1
	return a1*b1 + t>>32 + w1>>32, a * b
}

// genesisFinality is the record of the genesis state: block 0 is a
// justified and final checkpoint, weighing the genesis stakes.
func genesisFinality(g *Genesis, s *State) *Finality {
	cp := Checkpoint{Height: 0, Hash: g.Block().Hash()}
	return &Finality{
		Justified: cp, Finalized: cp,
		entries: []*cpEntry{{cp: cp, justified: true, table: weightTableOf(s, g.LotSize)}},
	}
}

// Head is the height of the block the record is after.
func (f *Finality) Head() uint64 { return f.head }

// IsFinal reports whether the block at height on this branch is final.
func (f *Finality) IsFinal(height uint64) bool {
	return len(f.entries) > 0 && height <= f.Finalized.Height
}

// Latest is the newest checkpoint of the branch: an honest voter's target
// (when it is higher than every target it voted for before).
func (f *Finality) Latest() Checkpoint {
	if len(f.entries) == 0 {
		return Checkpoint{}
	}
	return f.entries[len(f.entries)-1].cp
}

// find returns the kept entry of cp (height and hash), if any.
func (f *Finality) find(cp Checkpoint) (int, *cpEntry) {
	i, ok := slices.BinarySearchFunc(f.entries, cp.Height, func(e *cpEntry, h uint64) int { return cmpU64(e.cp.Height, h) })
	if !ok || f.entries[i].cp.Hash != cp.Hash {
		return -1, nil
	}
	return i, f.entries[i]
}

// IsJustified reports whether cp is a justified checkpoint the record
// keeps (recent ones, the latest justified and the final one).
func (f *Finality) IsJustified(cp Checkpoint) bool {
	_, e := f.find(cp)
	return e != nil && e.justified
}

// Weights returns the weight table of a kept checkpoint: the weights of
// votes with it as source.
func (f *Finality) Weights(cp Checkpoint) (*WeightTable, bool) {
	_, e := f.find(cp)
	if e == nil {
		return nil, false
	}
	return e.table, true
}

// CheckpointInfo is what the record knows of one kept checkpoint: for
// `poscli finality` and the dashboard.
type CheckpointInfo struct {
	Checkpoint
	Justified bool `json:"justified"`
	Final     bool `json:"final"`
	// TotalLots is the lots of the state after it: the weight votes from
	// it are counted against.
	TotalLots uint64 `json:"total_lots"`
	// Links are the included votes with this checkpoint as target, by source.
	Links []LinkTally `json:"links"`
}

// LinkTally is the included votes for one source → target.
type LinkTally struct {
	Source Checkpoint `json:"source"`
	// Lots voted, of Total: the lots of the state after the source.
	Lots  uint64 `json:"lots"`
	Total uint64 `json:"total"`
	// Supermajority: 3 × Lots > 2 × Total, the link justifies its target.
	Supermajority bool      `json:"supermajority"`
	Voters        []Address `json:"voters"`
	// Missing are the source's stakers that have not voted for the link.
	Missing []VoterLots `json:"missing,omitempty"`
}

// Checkpoints lists the kept checkpoints by ascending height with their
// tallies.
func (f *Finality) Checkpoints() []CheckpointInfo {
	out := make([]CheckpointInfo, len(f.entries))
	for i, e := range f.entries {
		out[i] = f.info(e)
	}
	return out
}

// Tally returns what the record knows of target, if it keeps it.
func (f *Finality) Tally(target Checkpoint) (CheckpointInfo, bool) {
	_, e := f.find(target)
	if e == nil {
		return CheckpointInfo{}, false
	}
	return f.info(e), true
}

func (f *Finality) info(e *cpEntry) CheckpointInfo {
	ci := CheckpointInfo{Checkpoint: e.cp, Justified: e.justified, Final: f.IsFinal(e.cp.Height), TotalLots: e.table.total}
	for _, l := range e.links {
		lt := LinkTally{Source: l.source, Lots: l.lots, Total: l.table.total, Supermajority: supermajority(l.lots, l.table.total), Voters: l.voters(), Missing: []VoterLots{}}
		for i, vl := range l.table.entries {
			if !l.has(i) {
				lt.Missing = append(lt.Missing, vl)
			}
		}
		ci.Links = append(ci.Links, lt)
	}
	return ci
}

// VoteError says which vote of a block broke a rule; it unwraps to the
// rule error.
type VoteError struct {
	Index int
	Err   error
}

func (e *VoteError) Error() string { return fmt.Sprintf("vote %d: %v", e.Index, e.Err) }

func (e *VoteError) Unwrap() error { return e.Err }

// linkKey names one voter's vote for one link within a block.
type linkKey struct {
	voter          Address
	source, target Checkpoint
}

// checkVote runs the stateful vote rules against the record for a block
// at blockHeight, and returns the target's and source's entries and the
// voter's lots. The order of the checks is the order of the codes in the
// conformance suite.
func (f *Finality) checkVote(v *Vote, voter Address, blockHeight uint64) (ti int, src *cpEntry, vi int, err error) {
	if err := v.CheckStateless(); err != nil {
		return -1, nil, 0, err
	}
	t := v.Target.Height
	if blockHeight == 0 || t >= blockHeight {
		return -1, nil, 0, ruleErrorf(ErrVoteFutureTarget, "target height %d is not below the block's parent (height %d)", t, int64(blockHeight)-1)
	}
	if blockHeight-t > MaxVoteAge {
		return -1, nil, 0, ruleErrorf(ErrVoteTooOld, "target height %d is %d heights below the block (limit %d)", t, blockHeight-t, MaxVoteAge)
	}
	ti, tgt := f.find(v.Target)
	if tgt == nil {
		return -1, nil, 0, ruleErrorf(ErrVoteUnknownCheckpoint, "target %s is not a checkpoint of this branch", v.Target)
	}
	_, src = f.find(v.Source)
	if src == nil {
		return -1, nil, 0, ruleErrorf(ErrVoteUnknownCheckpoint, "source %s is not a checkpoint this branch keeps (recent ones, the latest justified, the final one)", v.Source)
	}
	if !src.justified {
		return -1, nil, 0, ruleErrorf(ErrVoteSourceNotJustified, "source %s is not justified on this branch", v.Source)
	}
	if vi = src.table.index(voter); vi < 0 {
		return -1, nil, 0, ruleErrorf(ErrVoteNoStake, "voter %s held no lots after the source %s", voter, v.Source)
	}
	for _, l := range tgt.links {
		if l.source == v.Source && l.has(vi) {
			return -1, nil, 0, ruleErrorf(ErrVoteAlreadyCounted, "%s's vote %d→%d is already counted on this branch", voter, v.Source.Height, t)
		}
	}
	return ti, src, vi, nil
}

// CheckVote reports whether v could be included in a block at blockHeight
// on this state's branch (normally the head's height + 1), and why not:
// every rule Apply runs on a vote but its signature and duplicates within
// the block. A forger and a vote pool use it.
func (s *State) CheckVote(g *Genesis, v *Vote, blockHeight uint64) error {
	if s.fin == nil {
		return ruleErrorf(ErrVoteUnknownCheckpoint, "the state holds no finality record")
	}
	_, _, _, err := s.fin.checkVote(v, v.Voter(), blockHeight)
	return err
}

// next is the record after block b (with hash), whose application to the
// state (transactions, evidence) has run: the journal's first-touch
// values say whether it changed anyone's lots. It does not change f.
func (f *Finality) next(g *Genesis, s *State, b *Block, hash Hash, touched []UndoEntry) (*Finality, error) {
	nf := &Finality{Justified: f.Justified, Finalized: f.Finalized, head: b.Height, dirty: f.dirty, entries: slices.Clone(f.entries)}
	if len(b.Votes) > 0 {
		if err := nf.countVotes(b, max(g.EpochBlocks, 1)); err != nil {
			return nil, err
		}
	}
	if !nf.dirty {
		for _, e := range touched {
			if e.Account.Stake/max(g.LotSize, 1) != s.Account(e.Address).Stake/max(g.LotSize, 1) {
				nf.dirty = true
				break
			}
		}
	}
	if b.Height%max(g.EpochBlocks, 1) == 0 {
		var table *WeightTable
		if !nf.dirty && len(nf.entries) > 0 {
			table = nf.entries[len(nf.entries)-1].table // shared: no lots changed
		} else {
			table = weightTableOf(s, g.LotSize)
		}
		nf.entries = append(nf.entries, &cpEntry{cp: Checkpoint{b.Height, hash}, table: table})
		nf.dirty = false
	}
	nf.prune()
	return nf, nil
}

// countVotes adds b's votes to nf, a new record whose entries are still
// the old record's: entries and links it changes are copied first.
// epoch is the genesis's epoch_blocks.
func (nf *Finality) countVotes(b *Block, epoch uint64) error {
	seen := make(map[linkKey]struct{}, len(b.Votes))
	owned := make(map[int]bool)
	mine := make(map[*link]bool) // links copied (or made) for this record
	for i := range b.Votes {
		v := &b.Votes[i]
		k := linkKey{v.Voter(), v.Source, v.Target}
		if _, dup := seen[k]; dup {
			return &VoteError{i, ruleErrorf(ErrDuplicateVote, "a second vote of %s for %d→%d in the block", k.voter, v.Source.Height, v.Target.Height)}
		}
		seen[k] = struct{}{}
		ti, src, vi, err := nf.checkVote(v, k.voter, b.Height)
		if err != nil {
			return &VoteError{i, err}
		}
		if !owned[ti] {
			e := *nf.entries[ti]
			e.links = slices.Clone(e.links)
			nf.entries[ti] = &e
			owned[ti] = true
		}
		tgt := nf.entries[ti]
		var l *link
		for j, x := range tgt.links {
			if x.source == v.Source {
				if !mine[x] {
					c := *x
					c.voted = slices.Clone(x.voted)
					tgt.links[j] = &c
					mine[&c] = true
					x = &c
				}
				l = x
				break
			}
		}
		if l == nil {
			l = &link{source: v.Source, table: src.table, voted: make([]byte, (len(src.table.entries)+7)/8)}
			tgt.links = append(tgt.links, l)
			slices.SortFunc(tgt.links, func(x, y *link) int { return cmpCheckpoint(x.source, y.source) })
			mine[l] = true
		}
		before := supermajority(l.lots, l.table.total)
		l.voted[vi/8] |= 1 << (vi % 8)
		l.lots += l.table.entries[vi].Lots
		if before || !supermajority(l.lots, l.table.total) {
			continue
		}
		// The link has just reached more than 2/3 of its source's lots.
		if !tgt.justified {
			tgt.justified = true
			if tgt.cp.Height > nf.Justified.Height {
				nf.Justified = tgt.cp
			}
		}
		if tgt.cp.Height == v.Source.Height+epoch && v.Source.Height > nf.Finalized.Height {
			nf.Finalized = v.Source
		}
	}
	return nil
}

// prune drops the checkpoints no vote of a later block may target, but
// the latest justified and the final one (sources an honest voter may
// still use), and the tallies of those (no longer targets).
func (f *Finality) prune() {
	if f.head+1 <= MaxVoteAge {
		return
	}
	low := f.head + 1 - MaxVoteAge
	keep := f.entries[:0:0]
	for _, e := range f.entries {
		switch {
		case e.cp.Height >= low:
			keep = append(keep, e)
		case e.cp == f.Justified || e.cp == f.Finalized:
			if e.links != nil {
				c := *e
				c.links = nil
				e = &c
			}
			keep = append(keep, e)
		}
	}
	f.entries = keep
}

func cmpCheckpoint(a, b Checkpoint) int {
	if c := cmpU64(a.Height, b.Height); c != 0 {
		return c
	}
	return bytes.Compare(a.Hash[:], b.Hash[:])
}

// Finality record encoding, all integers big endian, counts uvarint:
//
//	version 1 byte (1)
//	justified, finalized  checkpoint each: height 8, hash 32
//	head 8, dirty 1 (0 or 1)
//	tables: count, then per table: count, per staker: address 20 bytes, lots 8
//	entries: count, then per entry: checkpoint, justified 1, table index,
//	         links: count, then per link: source checkpoint, table index
//	         (the source's), voted: one bit per entry of that table, bit i
//	         of byte i/8 for entry i, spare bits zero
//
// Tables are listed in the order entries and links first use them, and an
// index is an earlier table or the next one: one record, one encoding
// (UnmarshalBinary refuses any other), and shared tables stay shared.
// A link's lots are recomputed from its table.
const finalityCodecVersion = 1

// Bounds of the decoder: a record keeps at most the window's checkpoints
// and two more; each table and voter list at most max_lots entries.
const (
	maxFinalityEntries = MaxVoteAge + 3
	maxTableEntries    = MaxLotsLimit
)

// MarshalBinary encodes the record for the store and the undo record.
func (f *Finality) MarshalBinary() ([]byte, error) {
	b := []byte{finalityCodecVersion}
	b = appendCheckpoint(b, f.Justified)
	b = appendCheckpoint(b, f.Finalized)
	b = binary.BigEndian.AppendUint64(b, f.head)
	b = append(b, boolByte(f.dirty))
	index := map[*WeightTable]uint64{}
	var tables []*WeightTable
	use := func(t *WeightTable) {
		if _, ok := index[t]; !ok {
			index[t] = uint64(len(tables))
			tables = append(tables, t)
		}
	}
	for _, e := range f.entries {
		use(e.table)
		for _, l := range e.links {
			use(l.table)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(tables)))
	for _, t := range tables {
		b = binary.AppendUvarint(b, uint64(len(t.entries)))
		for _, e := range t.entries {
			b = appendAddress(b, e.Voter)
			b = binary.BigEndian.AppendUint64(b, e.Lots)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(f.entries)))
	for _, e := range f.entries {
		b = appendCheckpoint(b, e.cp)
		b = append(b, boolByte(e.justified))
		b = binary.AppendUvarint(b, index[e.table])
		b = binary.AppendUvarint(b, uint64(len(e.links)))
		for _, l := range e.links {
			b = appendCheckpoint(b, l.source)
			b = binary.AppendUvarint(b, index[l.table])
			b = append(b, l.voted...)
		}
	}
	return b, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// appendAddress writes a valid address as its 20 bytes.
func appendAddress(b []byte, a Address) []byte {
	var raw [20]byte
	hex.Decode(raw[:], []byte(a))
	return append(b, raw[:]...)
}

// UnmarshalBinary decodes what MarshalBinary wrote, and nothing else:
// counts are bounded before anything is allocated, and an input that is
// not the canonical encoding of a well-formed record is refused.
func (f *Finality) UnmarshalBinary(data []byte) error {
	d := decoder{buf: data}
	if v := d.byte(); d.err == nil && v != finalityCodecVersion {
		return fmt.Errorf("%w: finality record version %d", ErrDecode, v)
	}
	var r Finality
	r.Justified = d.checkpoint()
	r.Finalized = d.checkpoint()
	r.head = d.u64()
	r.dirty = d.flag()
	tables := make([]*WeightTable, d.count(2*maxFinalityEntries, 1))
	for i := range tables {
		es := make([]VoterLots, d.count(maxTableEntries, 28))
		for j := range es {
			es[j] = VoterLots{d.address(), d.u64()}
			if d.err == nil && (es[j].Lots == 0 || j > 0 && es[j].Voter <= es[j-1].Voter) {
				d.err = fmt.Errorf("%w: finality table not sorted, or an entry of no lots", ErrDecode)
			}
		}
		tables[i] = newWeightTable(es)
	}
	r.entries = make([]*cpEntry, d.count(maxFinalityEntries, 43))
	used := 0
	table := func() *WeightTable {
		ti := d.uvarint()
		if d.err != nil {
			return nil
		}
		switch {
		case ti < uint64(used):
		case ti == uint64(used) && used < len(tables):
			used++
		default:
			d.err = fmt.Errorf("%w: finality table index %d out of order", ErrDecode, ti)
			return nil
		}
		return tables[ti]
	}
	for i := range r.entries {
		e := &cpEntry{cp: d.checkpoint(), justified: d.flag()}
		e.table = table()
		e.links = make([]*link, d.count(maxFinalityEntries, 41))
		for j := range e.links {
			l := &link{source: d.checkpoint(), table: table()}
			if d.err == nil {
				n := len(l.table.entries)
				l.voted = make([]byte, (n+7)/8)
				d.bytes(l.voted)
				if d.err == nil && n%8 != 0 && l.voted[len(l.voted)-1]>>(n%8) != 0 {
					d.err = fmt.Errorf("%w: finality link with spare bits set", ErrDecode)
				}
				for k := range n {
					if l.has(k) {
						l.lots += l.table.entries[k].Lots
					}
				}
			}
			if d.err == nil && j > 0 && cmpCheckpoint(l.source, e.links[j-1].source) <= 0 {
				d.err = fmt.Errorf("%w: finality links not sorted", ErrDecode)
			}
			e.links[j] = l
		}
		if len(e.links) == 0 {
			e.links = nil
		}
		if d.err == nil && i > 0 && e.cp.Height <= r.entries[i-1].cp.Height {
			d.err = fmt.Errorf("%w: finality checkpoints not in ascending order", ErrDecode)
		}
		r.entries[i] = e
	}
	switch {
	case d.err != nil:
	case used != len(tables):
		d.err = fmt.Errorf("%w: %d finality tables, %d used", ErrDecode, len(tables), used)
	case len(d.buf) != 0:
		d.err = fmt.Errorf("%w: %d bytes after the finality record", ErrDecode, len(d.buf))
	}
	if d.err != nil {
		return d.err
	}
	if len(r.entries) == 0 {
		r.entries = nil
	}
	*f = r
	return nil
}

// count reads a count of items of at least minLen bytes each, at most
// limit, and no more than the rest of the input could hold.
func (d *decoder) count(limit, minLen int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(limit) || n > uint64(len(d.buf)/minLen) {
		d.err = fmt.Errorf("%w: count %d (limit %d, %d bytes left)", ErrDecode, n, limit, len(d.buf))
		return 0
	}
	return int(n)
}

func (d *decoder) flag() bool {
	v := d.byte()
	if v > 1 {
		d.err = fmt.Errorf("%w: flag byte %d", ErrDecode, v)
	}
	return v == 1
}

func (d *decoder) address() Address {
	var raw [20]byte
	d.bytes(raw[:])
	return Address(hex.EncodeToString(raw[:]))
}

func appendCheckpoint(b []byte, c Checkpoint) []byte {
	b = binary.BigEndian.AppendUint64(b, c.Height)
	return append(b, c.Hash[:]...)
}

func (d *decoder) checkpoint() (c Checkpoint) {
	c.Height = d.u64()
	d.bytes(c.Hash[:])
	return c
}

// applyFinality is Apply's finality step, after the block's transactions
// and evidence: it replaces the record by the one after b and keeps the
// old one in the undo record. A state without a record (NewState) keeps
// none, and refuses votes.
func (s *State) applyFinality(u *Undo, b *Block, g *Genesis) error {
	if s.fin == nil {
		if len(b.Votes) > 0 {
			return &VoteError{0, ruleErrorf(ErrVoteUnknownCheckpoint, "the state holds no finality record")}
		}
		return nil
	}
	nf, err := s.fin.next(g, s, b, b.Hash(), u.Entries)
	if err != nil {
		return err
	}
	prev, err := s.fin.MarshalBinary()
	if err != nil {
		return err
	}
	u.Finality = prev
	s.fin = nf
	return nil
}

// Equal reports whether two records say the same (their encodings agree).
func (f *Finality) Equal(o *Finality) bool {
	a, _ := f.MarshalBinary()
	b, _ := o.MarshalBinary()
	return bytes.Equal(a, b)
}
