package chain

import (
	"maps"
	"sort"
)

// State is every account's balance, stake and nonce. Its zero accounts are
// absent: an address never seen reads as a zero Account.
type State struct {
	accounts map[Address]Account
}

// NewState returns an empty state.
func NewState() *State { return &State{accounts: make(map[Address]Account)} }

// Account returns a's account (zero if a was never seen).
func (s *State) Account(a Address) Account { return s.accounts[a] }

// SetAccount writes an account directly. Stores use it to load state from
// disk; the protocol changes state only through Apply.
func (s *State) SetAccount(a Address, acc Account) {
	if acc == (Account{}) {
		delete(s.accounts, a)
		return
	}
	s.accounts[a] = acc
}

// Len is the number of non-zero accounts.
func (s *State) Len() int { return len(s.accounts) }

// AccountEntry is an account with its address, for ordered listings.
type AccountEntry struct {
	Address Address `json:"address"`
	Account
}

// Accounts lists every non-zero account in address order.
func (s *State) Accounts() []AccountEntry {
	out := make([]AccountEntry, 0, len(s.accounts))
	for a, acc := range s.accounts {
		out = append(out, AccountEntry{a, acc})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// Stakes returns every positive stake keyed by address string, the shape
// chain/election takes.
func (s *State) Stakes() map[string]uint64 {
	out := make(map[string]uint64)
	for a, acc := range s.accounts {
		if acc.Stake > 0 {
			out[string(a)] = acc.Stake
		}
	}
	return out
}

// Clone returns an independent copy.
func (s *State) Clone() *State { return &State{accounts: maps.Clone(s.accounts)} }

// Equal reports whether two states hold the same accounts.
func (s *State) Equal(o *State) bool { return maps.Equal(s.accounts, o.accounts) }

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
	if _, ok := j.seen[a]; ok {
		return
	}
	j.seen[a] = struct{}{}
	j.entries = append(j.entries, UndoEntry{a, s.accounts[a]})
}

// revert restores the journal's accounts, newest first.
func (s *State) revert(entries []UndoEntry) {
	for i := len(entries) - 1; i >= 0; i-- {
		s.SetAccount(entries[i].Address, entries[i].Account)
	}
}

// Apply runs every transaction of b in order, credits the block reward and
// the fees to the forger, and returns the undo record. Signatures and header
// rules are not checked here (see ValidateBlock); stateful transaction rules
// are. On error the state is left exactly as it was.
func (s *State) Apply(b *Block, g *Genesis) (*Undo, error) {
	j := journal{seen: make(map[Address]struct{}, 2*len(b.Transactions)+1)}
	if b.Height > 0 {
		if err := s.credit(&j, b.Forger, g.BlockReward); err != nil {
			s.revert(j.entries)
			return nil, err
		}
	}
	for i := range b.Transactions {
		tx := &b.Transactions[i]
		if err := s.applyTx(&j, tx, g, b.Forger); err != nil {
			s.revert(j.entries)
			return nil, txError(i, tx, err)
		}
	}
	return &Undo{Height: b.Height, Entries: j.entries}, nil
}

// Revert undoes the block that produced u. Only the most recently applied
// block may be reverted; reorgs revert blocks newest first.
func (s *State) Revert(u *Undo) { s.revert(u.Entries) }

// CheckTx reports whether tx could be applied to the state now: the stateful
// rules (nonce, funds, stake, exchange policy, overflow). The state is unchanged.
func (s *State) CheckTx(tx *Transaction, g *Genesis) error {
	j := journal{seen: make(map[Address]struct{}, 2)}
	err := s.applyTx(&j, tx, g, "")
	s.revert(j.entries)
	return err
}

// credit adds amount to a's balance.
func (s *State) credit(j *journal, a Address, amount uint64) error {
	if amount == 0 {
		return nil
	}
	acc := s.accounts[a]
	if acc.Balance+amount < acc.Balance {
		return ruleErrorf(ErrAmountOverflow, "balance of %s would overflow", a)
	}
	j.touch(s, a)
	acc.Balance += amount
	s.accounts[a] = acc
	return nil
}

// applyTx applies one transaction. feeTo receives the fee; "" burns it
// (CheckTx uses that, having no forger).
func (s *State) applyTx(j *journal, tx *Transaction, g *Genesis, feeTo Address) error {
	from := s.accounts[tx.From]
	if tx.Nonce != from.Nonce+1 {
		return ruleErrorf(ErrBadNonce, "nonce %d, account %s expects %d", tx.Nonce, tx.From, from.Nonce+1)
	}
	var debit uint64 // what leaves from's balance
	switch tx.Type {
	case TxExchange:
		if !g.Exchange.Allows(tx.From) {
			return ruleErrorf(ErrNotExchange, "%s is not an exchange authority", tx.From)
		}
		debit = tx.Fee
	case TxTransfer, TxStake:
		debit = tx.Amount + tx.Fee
		if debit < tx.Amount {
			return ruleErrorf(ErrAmountOverflow, "amount %d + fee %d overflows", tx.Amount, tx.Fee)
		}
	case TxUnstake:
		if from.Stake < tx.Amount {
			return ruleErrorf(ErrInsufficientStake, "stake of %s is %d, unstake needs %d", tx.From, from.Stake, tx.Amount)
		}
		debit = tx.Fee
	default:
		return ruleErrorf(ErrUnknownType, "type %q", tx.Type)
	}
	if from.Balance < debit {
		return ruleErrorf(ErrInsufficientFunds, "balance of %s is %d, needs %d", tx.From, from.Balance, debit)
	}
	j.touch(s, tx.From)
	from.Balance -= debit
	from.Nonce++
	switch tx.Type {
	case TxStake:
		if from.Stake+tx.Amount < from.Stake {
			return ruleErrorf(ErrAmountOverflow, "stake of %s would overflow", tx.From)
		}
		from.Stake += tx.Amount
	case TxUnstake:
		if from.Balance+tx.Amount < from.Balance {
			return ruleErrorf(ErrAmountOverflow, "balance of %s would overflow", tx.From)
		}
		from.Stake -= tx.Amount
		from.Balance += tx.Amount
	}
	s.accounts[tx.From] = from
	if tx.Type == TxExchange || tx.Type == TxTransfer {
		if err := s.credit(j, tx.To, tx.Amount); err != nil {
			return err
		}
	}
	if feeTo != "" {
		return s.credit(j, feeTo, tx.Fee)
	}
	return nil
}
