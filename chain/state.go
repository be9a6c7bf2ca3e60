package chain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/poslab/posd/chain/election"
)

// State is the chain's state after a block, in typed tables:
//
//   - accounts: every account's balance, stake, unbonding stake and nonce.
//     Zero accounts are absent: an address never seen reads as a zero
//     Account.
//   - slashings: one record per offence slashed on this branch
//     (evidence.go), so no offence is slashed twice.
//   - unbonding: the release queue, release height → the accounts whose
//     unbonding stake returns at that height, so a block releases in
//     O(released), never by walking the accounts.
//   - fin: the finality record (finality.go).
//
// One journal records what a block changes in all of them and produces
// the Undo; Revert restores all of them. The release queue and the
// stakers are indexes of the accounts, kept by put: restoring an account
// restores them.
//
// Every map is persistent (pmap): Clone is O(1) and a block's writes
// copy only what they touch, so what a block costs follows what it
// changed, not how many accounts there are.
type State struct {
	accounts pmap[Account]
	// slashings is keyed by offenceKey.
	slashings pmap[Slashing]
	// unbonding is keyed by releaseKey(height); each set is never written
	// once in the map (a change stores a changed copy), so states that
	// share it by Clone never see each other's changes.
	unbonding pmap[*pmap[struct{}]]
	// stakers holds the stake of every account with stake, kept up to
	// date by put (so by Apply, Revert and SetAccount): elections, stake
	// listings and lot counts read it, not every account.
	stakers pmap[uint64]
	// totalLots is Σ stake/lotSize over all accounts, kept up to date by
	// put once lotSize is set (lazily, by lots, for the genesis in use).
	lotSize   uint64
	totalLots uint64
	// table caches the election's lot table (ElectionTable) until a stake
	// changes. Atomic, because elections read states others read too.
	table atomic.Pointer[lotTable]
	// pending lists the stake changes since table was made (while there is
	// one), so the next table is the old one updated, not rebuilt.
	pending []election.Stake
	// fin is the finality record (finality.go); nil reads as the zero record.
	fin *Finality
}

// lotTable is an election table, the lot size it counts and how many
// entries of State.pending it includes.
type lotTable struct {
	lotSize uint64
	t       *election.StakeTable
	applied int
}

// maxPending bounds the stake changes kept for a table update; past it
// the table is rebuilt.
const maxPending = 1 << 16

// NewState returns an empty state.
func NewState() *State { return &State{} }

// Account returns a's account (zero if a was never seen).
func (s *State) Account(a Address) Account {
	acc, _ := s.accounts.get(a)
	return acc
}

// SetAccount writes an account directly. Stores use it to load state from
// disk; the protocol changes state only through Apply.
func (s *State) SetAccount(a Address, acc Account) { s.put(a, acc) }

// put writes one account and keeps the lot total in step. The total is
// exact modulo 2^64, and applyTx keeps the true value far below that.
func (s *State) put(a Address, acc Account) {
	var was Account
	if acc == (Account{}) {
		was, _ = s.accounts.del(a)
	} else {
		was, _ = s.accounts.set(a, acc)
	}
	if acc.Unbonding > 0 && (was.Unbonding == 0 || was.Release != acc.Release) {
		s.queueRelease(a, acc.Release)
	}
	old := was.Stake
	if acc.Stake == old {
		return
	}
	if acc.Stake > 0 {
		s.stakers.set(a, acc.Stake)
	} else {
		s.stakers.del(a)
	}
	if s.lotSize != 0 {
		s.totalLots += acc.Stake/s.lotSize - old/s.lotSize
	}
	if s.table.Load() != nil {
		if len(s.pending) >= maxPending {
			s.table.Store(nil)
			s.pending = nil
		} else {
			s.pending = append(s.pending, election.Stake{Staker: string(a), Stake: acc.Stake})
		}
	}
}

// releaseKey is the release queue's key for height h: 8 bytes big endian
// (not an address; the queue has keys of its own).
func releaseKey(h uint64) Address {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], h)
	return Address(k[:])
}

// queueRelease adds a to the accounts released at height h. A set in the
// queue is shared with clones: it is copied (O(1)) and the copy changed.
// An address the queue lists at a height its account no longer releases
// at (a later UNSTAKE moved it) is skipped when that height comes.
func (s *State) queueRelease(a Address, h uint64) {
	key := releaseKey(h)
	set := new(pmap[struct{}])
	if old, ok := s.unbonding.get(key); ok {
		if _, in := old.get(a); in {
			return
		}
		old.cloneTo(set)
	}
	set.set(a, struct{}{})
	s.unbonding.set(key, set)
}

// release returns to their balances the unbonding stake of every account
// whose release height is h, in O(released): the block at h calls it.
// Balance + Unbonding never overflows (the rules keep it so).
func (s *State) release(j *journal, h uint64) {
	key := releaseKey(h)
	set, ok := s.unbonding.get(key)
	if !ok {
		return
	}
	s.unbonding.del(key)
	set.each(func(a Address, _ struct{}) bool {
		acc := s.Account(a)
		if acc.Unbonding == 0 || acc.Release != h {
			return true // merged into a later release, or slashed to nothing
		}
		j.touchAs(a, acc)
		acc.Balance += acc.Unbonding
		acc.Unbonding, acc.Release = 0, 0
		s.put(a, acc)
		return true
	})
}

// Releasing lists the accounts the release queue holds for height h (an
// address whose release moved later may be listed; its Account says).
func (s *State) Releasing(h uint64) []Address {
	set, ok := s.unbonding.get(releaseKey(h))
	if !ok {
		return nil
	}
	out := make([]Address, 0, set.Len())
	set.each(func(a Address, _ struct{}) bool {
		out = append(out, a)
		return true
	})
	slices.Sort(out)
	return out
}

// lots returns the total lots for lotSize, counting them once when the
// state has not counted for that size yet.
func (s *State) lots(lotSize uint64) uint64 {
	if s.lotSize != lotSize {
		s.lotSize, s.totalLots = lotSize, s.Lots(lotSize)
	}
	return s.totalLots
}

// Lots returns the total election lots: Σ stake / lotSize. It counts the
// stakers (O(stakers)) unless s keeps the total for lotSize, and does not
// change s, so it is safe on a state others read.
func (s *State) Lots(lotSize uint64) uint64 {
	if lotSize == 0 {
		return 0
	}
	if s.lotSize == lotSize {
		return s.totalLots
	}
	var n uint64
	s.stakers.each(func(_ Address, stake uint64) bool {
		n += stake / lotSize
		return true
	})
	return n
}

// Len is the number of non-zero accounts (other tables not counted).
func (s *State) Len() int { return s.accounts.Len() }

// AccountEntry is an account with its address, for ordered listings.
type AccountEntry struct {
	Address Address `json:"address"`
	Account
}

// Accounts lists every non-zero account in address order.
func (s *State) Accounts() []AccountEntry {
	out := make([]AccountEntry, 0, s.accounts.Len())
	s.accounts.each(func(a Address, acc Account) bool {
		out = append(out, AccountEntry{a, acc})
		return true
	})
	sortEntries(out)
	return out
}

// Stakers lists the accounts with stake in address order, in
// O(stakers log stakers) whatever the number of accounts.
func (s *State) Stakers() []AccountEntry {
	out := make([]AccountEntry, 0, s.stakers.Len())
	s.stakers.each(func(a Address, _ uint64) bool {
		out = append(out, AccountEntry{a, s.Account(a)})
		return true
	})
	sortEntries(out)
	return out
}

func sortEntries(es []AccountEntry) {
	slices.SortFunc(es, func(a, b AccountEntry) int { return strings.Compare(string(a.Address), string(b.Address)) })
}

// Stakes returns every positive stake keyed by address string. Elections
// take lots, not stakes: see ElectionTable.
func (s *State) Stakes() map[string]uint64 {
	out := make(map[string]uint64, s.stakers.Len())
	s.stakers.each(func(a Address, stake uint64) bool {
		out[string(a)] = stake
		return true
	})
	return out
}

// Clone returns an independent copy in O(1): the two share every account
// until one of them writes it. s may be cloned while others read it.
func (s *State) Clone() *State {
	// Tables are immutable, and the clipped pending list makes the clone
	// append elsewhere: sharing both is safe.
	c := &State{lotSize: s.lotSize, totalLots: s.totalLots, pending: slices.Clip(s.pending), fin: s.fin}
	s.accounts.cloneTo(&c.accounts)
	s.stakers.cloneTo(&c.stakers)
	s.slashings.cloneTo(&c.slashings)
	s.unbonding.cloneTo(&c.unbonding)
	c.table.Store(s.table.Load())
	return c
}

// Equal reports whether two states hold the same accounts and slashings
// and, when both hold one, the same finality record (a state without one
// is made by NewState). The release queue is an index of the accounts.
func (s *State) Equal(o *State) bool {
	return s.accounts.equal(&o.accounts) && s.slashings.equal(&o.slashings) &&
		(s.fin == nil || o.fin == nil || s.fin.Equal(o.fin))
}

// UndoEntry is one account as it was before a block touched it.
type UndoEntry struct {
	Address Address `json:"address"`
	Account Account `json:"account"`
}

// Undo records what a block changed, so the block can be reverted during a
// reorg, in typed entries: every touched account's value before the block
// (in first-touch order), the slashing records the block added, and the
// finality record before it.
type Undo struct {
	Height  uint64      `json:"height"`
	Entries []UndoEntry `json:"entries"`
	// Slashings are the records the block added; none was there before
	// (a block never slashes one offence twice), so reverting deletes them.
	Slashings []Slashing `json:"slashings,omitempty"`
	// Finality is the encoding of the finality record before the block,
	// when the block changed it; nil when it did not.
	Finality []byte `json:"finality,omitempty"`
}

// Touched lists the addresses the block changed.
func (u *Undo) Touched() []Address {
	out := make([]Address, len(u.Entries))
	for i, e := range u.Entries {
		out[i] = e.Address
	}
	return out
}

// journal collects first-touch values while a block is applied, and the
// slashing records it adds.
type journal struct {
	seen      map[Address]struct{}
	entries   []UndoEntry
	slashings []Slashing
}

// undo restores what j recorded: the state as it was before.
func (s *State) undo(j *journal) {
	s.revertTables(j.entries, j.slashings)
}

// revertTables deletes the added slashings and restores the accounts,
// newest first.
func (s *State) revertTables(entries []UndoEntry, slashings []Slashing) {
	for i := len(slashings) - 1; i >= 0; i-- {
		s.slashings.del(slashings[i].key())
	}
	s.revert(entries)
}

// touchAs records a's account as cur (just read by the caller) before the
// block first changes it.
func (j *journal) touchAs(a Address, cur Account) {
	if _, ok := j.seen[a]; !ok {
		j.record(a, cur)
	}
}

func (j *journal) record(a Address, cur Account) {
	j.seen[a] = struct{}{}
	j.entries = append(j.entries, UndoEntry{a, cur})
}

// revert restores the journal's accounts, newest first.
func (s *State) revert(entries []UndoEntry) {
	for i := len(entries) - 1; i >= 0; i-- {
		s.SetAccount(entries[i].Address, entries[i].Account)
	}
}

// mark remembers where the pending stake changes end, so that an apply
// undone at once (a refused block) leaves no pending changes.
type mark struct {
	table   *lotTable
	pending int
}

func (s *State) mark() mark { return mark{s.table.Load(), len(s.pending)} }

// undoneTo drops the pending changes made since m: they were reverted.
func (s *State) undoneTo(m mark) {
	if s.table.Load() == m.table && len(s.pending) >= m.pending {
		s.pending = s.pending[:m.pending]
	}
}

// Apply runs b on the state and returns the undo record. In order: the
// block reward to the forger; the evidence (slashings, before anything
// else can move the stake they reach); the release of the unbonding stake
// due at b's height; the transactions, each fee to the forger. Signatures
// and header rules are not checked here (see ValidateBlock); stateful
// transaction and evidence rules are. On error the state is left exactly
// as it was.
func (s *State) Apply(b *Block, g *Genesis) (*Undo, error) {
	j := journal{seen: make(map[Address]struct{}, 2*len(b.Transactions)+1)}
	m := s.mark()
	fail := func(err error) (*Undo, error) {
		s.undo(&j)
		s.undoneTo(m)
		return nil, err
	}
	if b.Height > 0 {
		if err := s.credit(&j, b.Forger, g.BlockReward); err != nil {
			return fail(err)
		}
	}
	// Slashings first: an UNSTAKE in the same block cannot escape them,
	// nor can stake whose release is due at this very height.
	if err := s.applyEvidence(&j, b, g); err != nil {
		return fail(err)
	}
	s.release(&j, b.Height)
	for i := range b.Transactions {
		tx := &b.Transactions[i]
		if err := s.applyTx(&j, tx, g, b.Forger, b.Height); err != nil {
			return fail(txError(i, tx, err))
		}
	}
	undo := &Undo{Height: b.Height, Entries: j.entries, Slashings: j.slashings}
	if err := s.applyFinality(undo, b, g); err != nil {
		return fail(err)
	}
	return undo, nil
}

// ErrCorruptUndo is Revert's refusal of an undo record whose finality
// bytes do not decode. Apply never makes one: it was read from a damaged
// store, and the state before the block cannot be known from it.
var ErrCorruptUndo = errors.New("corrupt undo record")

// Revert undoes the block that produced u. Only the most recently applied
// block may be reverted; reorgs revert blocks newest first. An undo record
// whose finality record does not decode is refused (ErrCorruptUndo) and
// the state is left unchanged: reverting the accounts but not the record
// would leave a state that no chain produced.
func (s *State) Revert(u *Undo) error {
	var f *Finality
	if u.Finality != nil {
		f = new(Finality)
		if err := f.UnmarshalBinary(u.Finality); err != nil {
			return fmt.Errorf("%w: height %d: finality record (%d bytes): %v", ErrCorruptUndo, u.Height, len(u.Finality), err)
		}
	}
	s.revertTables(u.Entries, u.Slashings)
	if f != nil {
		s.fin = f
	}
	return nil
}

// Finality returns the finality record of the state's branch. Callers must
// not change it: Apply replaces the record, it never edits one.
func (s *State) Finality() *Finality {
	if s.fin == nil {
		return &Finality{}
	}
	return s.fin
}

// SetFinality sets the finality record directly. Stores use it to load
// the state from disk; the protocol changes it only through Apply.
func (s *State) SetFinality(f *Finality) { s.fin = f }

// CheckTx reports whether tx could be applied to the state now: the stateful
// rules (nonce, funds, stake, exchange policy, overflow, stake totals), as
// CheckTx with nothing pending. The state is unchanged.
func (s *State) CheckTx(tx *Transaction, g *Genesis) error {
	return CheckTx(g, s, tx, Pending{})
}

// credit adds amount to a's balance.
func (s *State) credit(j *journal, a Address, amount uint64) error {
	if amount == 0 {
		return nil
	}
	acc := s.Account(a)
	if _, ok := add3(acc.Balance, acc.Unbonding, amount); !ok {
		return ruleErrorf(ErrAmountOverflow, "balance of %s would overflow", a)
	}
	j.touchAs(a, acc)
	acc.Balance += amount
	s.put(a, acc)
	return nil
}

// applyTx applies one transaction: it runs the rules of CheckTx on the
// state, then writes what they computed; stake it unbonds is released at
// height + unbonding_blocks. feeTo receives the fee; "" burns it. On
// error the caller reverts the journal.
func (s *State) applyTx(j *journal, tx *Transaction, g *Genesis, feeTo Address, height uint64) error {
	r := lookupTx(tx.Type)
	if r == nil {
		return ruleErrorf(ErrUnknownType, "type %q", tx.Type)
	}
	c := txCheck{g: g, tx: tx, r: r, from: s.Account(tx.From), lots: (*lotCounter)(s)}
	c.to = c.from
	if tx.To != tx.From {
		c.to = s.Account(tx.To)
	}
	after, err := c.run()
	if err != nil {
		return err
	}
	if after.e.Credit.Unbonding > 0 {
		after.to.Release = height + g.UnbondingBlocks
		if tx.To == tx.From {
			after.from = after.to // UNSTAKE: to self
		}
	}
	j.touchAs(tx.From, c.from)
	s.put(tx.From, after.from)
	if after.e.Credit != (Amounts{}) && tx.To != tx.From {
		j.touchAs(tx.To, c.to)
		s.put(tx.To, after.to)
	}
	if feeTo != "" {
		return s.credit(j, feeTo, tx.Fee)
	}
	return nil
}

// lotCounter is the state as applyTx counts its lots: keeping the total
// up to date from then on (State.lots), where Lots counts without
// changing the state.
type lotCounter State

func (c *lotCounter) Account(a Address) Account  { return (*State)(c).Account(a) }
func (c *lotCounter) Lots(lotSize uint64) uint64 { return (*State)(c).lots(lotSize) }
