package chain

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/poslab/posd/chain/election"
)

// State is every account's balance, stake and nonce. Its zero accounts are
// absent: an address never seen reads as a zero Account.
//
// Both maps are persistent (pmap): Clone is O(1) and a block's writes
// copy only what they touch, so what a block costs follows what it
// changed, not how many accounts there are.
type State struct {
	accounts pmap[Account]
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

// Len is the number of non-zero accounts.
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
		if !IsSlashRecord(a) {
			out = append(out, AccountEntry{a, acc})
		}
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
	c.table.Store(s.table.Load())
	return c
}

// Equal reports whether two states hold the same accounts and, when both
// hold one, the same finality record. (A state without a record is one
// made by NewState, or loaded by a store that keeps none.)
func (s *State) Equal(o *State) bool {
	return s.accounts.equal(&o.accounts) && (s.fin == nil || o.fin == nil || s.fin.Equal(o.fin))
}

// UndoEntry is one account as it was before a block touched it.
type UndoEntry struct {
	Address Address `json:"address"`
	Account Account `json:"account"`
}

// Undo records what a block changed, so the block can be reverted during a
// reorg: every touched account's value before the block, in first-touch order.
type Undo struct {
	Height  uint64      `json:"height"`
	Entries []UndoEntry `json:"entries"`
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

// journal collects first-touch values while a block is applied.
type journal struct {
	seen    map[Address]struct{}
	entries []UndoEntry
}

func (j *journal) touch(s *State, a Address) {
	if _, ok := j.seen[a]; !ok {
		j.record(a, s.Account(a))
	}
}

// touchAs is touch for a caller that has just read a's account as cur:
// the state is not read again.
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

// Apply runs every transaction of b in order, credits the block reward and
// the fees to the forger, and returns the undo record. Signatures and header
// rules are not checked here (see ValidateBlock); stateful transaction rules
// are. On error the state is left exactly as it was.
func (s *State) Apply(b *Block, g *Genesis) (*Undo, error) {
	j := journal{seen: make(map[Address]struct{}, 2*len(b.Transactions)+1)}
	m := s.mark()
	if b.Height > 0 {
		if err := s.credit(&j, b.Forger, g.BlockReward); err != nil {
			s.revert(j.entries)
			s.undoneTo(m)
			return nil, err
		}
	}
	// Slashings first: an UNSTAKE in the same block cannot escape them.
	if err := s.applyEvidence(&j, b, g); err != nil {
		s.revert(j.entries)
		s.undoneTo(m)
		return nil, err
	}
	for i := range b.Transactions {
		tx := &b.Transactions[i]
		if err := s.applyTx(&j, tx, g, b.Forger); err != nil {
			s.revert(j.entries)
			s.undoneTo(m)
			return nil, txError(i, tx, err)
		}
	}
	undo := &Undo{Height: b.Height, Entries: j.entries}
	if err := s.applyFinality(undo, b, g); err != nil {
		s.revert(j.entries)
		s.undoneTo(m)
		return nil, err
	}
	return undo, nil
}

// Revert undoes the block that produced u. Only the most recently applied
// block may be reverted; reorgs revert blocks newest first.
func (s *State) Revert(u *Undo) {
	s.revert(u.Entries)
	if u.Finality != nil {
		f := new(Finality)
		if err := f.UnmarshalBinary(u.Finality); err == nil {
			s.fin = f
		}
	}
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
	if acc.Balance+amount < acc.Balance {
		return ruleErrorf(ErrAmountOverflow, "balance of %s would overflow", a)
	}
	j.touchAs(a, acc)
	acc.Balance += amount
	s.put(a, acc)
	return nil
}

// applyTx applies one transaction: it runs the rules of CheckTx on the
// state, then writes what they computed. feeTo receives the fee; ""
// burns it. On error the caller reverts the journal.
func (s *State) applyTx(j *journal, tx *Transaction, g *Genesis, feeTo Address) error {
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
