package chain

// This file is the one place the stateful transaction rules are written.
// State.Apply runs CheckTx's core before it changes an account; pools,
// the node's admission and wallets run CheckTx or CheckPayable. So a rule
// is added, or its error code changed, here and nowhere else.

// TxView is the state a transaction is checked against: every account as
// the transaction would find it (zero when never seen). *State and the
// chain manager's snapshots are TxViews.
type TxView interface {
	Account(Address) Account
}

// LotView is a TxView that also counts the election lots (State.Lots).
// Against a LotView, CheckTx also checks the stake totals (stake_limit,
// stake_floor); a view of a few accounts cannot, and leaves them to the
// block.
type LotView interface {
	TxView
	Lots(lotSize uint64) uint64
}

// Pending is what the sender's earlier transactions, not yet in the view,
// do before tx runs: a pool's pending transactions of that sender.
type Pending struct {
	// Txs is how many of them there are: tx's nonce must be the
	// account's nonce + Txs + 1.
	Txs uint64
	// Owed is what they take from the sender's balance and stake.
	Owed Amounts
}

// CheckTx runs every stateful rule of tx against v after p, in the order
// State.Apply runs them, and returns the first broken one: unknown_type,
// bad_nonce, fee_too_low, exchange_not_allowed, overflow,
// insufficient_stake, insufficient_funds, and against a LotView
// stake_limit and stake_floor. It is what Apply checks before it changes
// anything, so on the same state the two agree on every transaction. The
// stateless rules and the signature are not checked (Genesis.CheckTx,
// Transaction.VerifySignature). v is not changed.
func CheckTx(g *Genesis, v TxView, tx *Transaction, p Pending) error {
	from := v.Account(tx.From)
	to := from
	if tx.To != tx.From {
		to = v.Account(tx.To)
	}
	lv, _ := v.(LotView)
	return checkHeld(g, tx, from, to, p, lv)
}

// CheckTxAccounts is CheckTx on the sender's and recipient's accounts a
// caller holds (a pool's) rather than on a view: every rule but the stake
// totals, which need the whole state and are left to the block. to is
// ignored when tx.To == tx.From.
func CheckTxAccounts(g *Genesis, tx *Transaction, from, to Account, p Pending) error {
	if tx.To == tx.From {
		to = from
	}
	return checkHeld(g, tx, from, to, p, nil)
}

// checkHeld is CheckTx on the accounts as held (before p), with the stake
// totals counted by lv (nil: not checked).
func checkHeld(g *Genesis, tx *Transaction, acc, to Account, p Pending, lv LotView) error {
	r := lookupTx(tx.Type)
	if r == nil {
		return ruleErrorf(ErrUnknownType, "type %q", tx.Type)
	}
	if p.Owed.Stake > acc.Stake {
		return ruleErrorf(ErrInsufficientStake, "stake of %s is %d, pending unstakes %d", tx.From, acc.Stake, p.Owed.Stake)
	}
	if p.Owed.Balance > acc.Balance {
		return ruleErrorf(ErrInsufficientFunds, "balance of %s is %d, pending %d", tx.From, acc.Balance, p.Owed.Balance)
	}
	from := acc
	from.Balance -= p.Owed.Balance
	from.Stake -= p.Owed.Stake
	from.Nonce += p.Txs
	if tx.To == tx.From {
		to = from
	}
	c := txCheck{g: g, tx: tx, r: r, from: from, to: to, owed: p.Owed, lots: lv}
	_, err := c.run()
	return err
}

// txCheck is one transaction against the accounts it finds.
type txCheck struct {
	g    *Genesis
	tx   *Transaction
	r    *txRule
	from Account // the sender as tx finds it
	to   Account // the recipient as tx finds it (from when tx.To == tx.From)
	// owed is what the sender's earlier pending transactions take (for
	// the messages: from already has it subtracted).
	owed Amounts
	// lots counts the election lots of the view, before owed; nil: the
	// stake totals are not checked.
	lots LotView
}

// checked is the outcome of a passed check: tx's effect and the accounts
// after it, the fee apart (it goes to the forger).
type checked struct {
	e        Effect
	from, to Account
}

// run checks c in State.Apply's order and returns the accounts after tx.
func (c *txCheck) run() (checked, error) {
	tx, g := c.tx, c.g
	if tx.Nonce != c.from.Nonce+1 {
		return checked{}, ruleErrorf(ErrBadNonce, "nonce %d, account %s expects %d", tx.Nonce, tx.From, c.from.Nonce+1)
	}
	if err := g.checkTxParams(tx, c.r); err != nil {
		return checked{}, err
	}
	e, err := tx.Effect()
	if err != nil {
		return checked{}, err
	}
	from := c.from
	if from.Stake < e.Debit.Stake {
		if c.owed.Stake > 0 {
			return checked{}, ruleErrorf(ErrInsufficientStake, "stake of %s is %d, pending unstakes %d, %s needs %d", tx.From, from.Stake+c.owed.Stake, c.owed.Stake, tx.Type, e.Debit.Stake)
		}
		return checked{}, ruleErrorf(ErrInsufficientStake, "stake of %s is %d, %s needs %d", tx.From, from.Stake, tx.Type, e.Debit.Stake)
	}
	if from.Balance < e.Debit.Balance {
		if c.owed.Balance > 0 {
			return checked{}, ruleErrorf(ErrInsufficientFunds, "balance of %s is %d, pending %d, needs %d", tx.From, from.Balance+c.owed.Balance, c.owed.Balance, e.Debit.Balance)
		}
		return checked{}, ruleErrorf(ErrInsufficientFunds, "balance of %s is %d, needs %d", tx.From, from.Balance, e.Debit.Balance)
	}
	from.Balance -= e.Debit.Balance
	from.Stake -= e.Debit.Stake
	from.Nonce++
	to := c.to
	if tx.To == tx.From {
		to = from
	}
	if g.UnbondingBlocks == 0 {
		// Unbonding is off: the coins return at once, as in v2.
		e.Credit.Balance += e.Credit.Unbonding
		e.Credit.Unbonding = 0
	}
	// Balance + Unbonding never overflows, so a release never can.
	if _, ok := add3(to.Balance, to.Unbonding, e.Credit.Balance+e.Credit.Unbonding); !ok {
		return checked{}, ruleErrorf(ErrAmountOverflow, "balance of %s would overflow", tx.To)
	}
	if to.Stake+e.Credit.Stake < to.Stake {
		return checked{}, ruleErrorf(ErrAmountOverflow, "stake of %s would overflow", tx.To)
	}
	to.Balance += e.Credit.Balance
	to.Stake += e.Credit.Stake
	to.Unbonding += e.Credit.Unbonding
	if tx.To == tx.From {
		from = to
	}
	if c.lots != nil && (e.Debit.Stake != 0 || e.Credit.Stake != 0) {
		if err := c.checkStakeTotals(from, to); err != nil {
			return checked{}, err
		}
	}
	return checked{e: e, from: from, to: to}, nil
}

// checkStakeTotals refuses a stake change that takes the total lots over
// max_lots (each election's cost is bounded by them) or the stake counted
// in whole lots below min_total_stake (an empty election halts the chain).
// Only the direction the transaction moved is checked, so a state is never
// stuck because of a rule it already broke at genesis. from and to are the
// accounts after tx; the totals wrap as State's running total does.
func (c *txCheck) checkStakeTotals(from, to Account) error {
	g, tx := c.g, c.tx
	// One account's lots over max_lots would let the wrapping total lie.
	for _, a := range [...]struct {
		addr  Address
		stake uint64
	}{{tx.From, from.Stake}, {tx.To, to.Stake}} {
		if lots := a.stake / g.LotSize; lots > g.MaxLots {
			return ruleErrorf(ErrStakeLimit, "stake of %s would be %d lots, max_lots is %d", a.addr, lots, g.MaxLots)
		}
	}
	// The total before tx: the view's, once the pending unstakes ran.
	held := c.from.Stake + c.owed.Stake
	before := c.lots.Lots(g.LotSize) - held/g.LotSize + c.from.Stake/g.LotSize
	after := before - c.from.Stake/g.LotSize + from.Stake/g.LotSize
	if tx.To != tx.From {
		after += to.Stake/g.LotSize - c.to.Stake/g.LotSize
	}
	switch {
	case after > before && after > g.MaxLots:
		return ruleErrorf(ErrStakeLimit, "total lots would be %d, max_lots is %d (lot_size %d)", after, g.MaxLots, g.LotSize)
	case after < before && after*g.LotSize < g.MinTotalStake:
		return ruleErrorf(ErrStakeFloor, "total stake would be %d in whole lots of %d, min_total_stake is %d", after*g.LotSize, g.LotSize, g.MinTotalStake)
	}
	return nil
}

// add3 returns a+b+c and whether it did not overflow.
func add3(a, b, c uint64) (uint64, bool) {
	s := a + b
	if s < a {
		return 0, false
	}
	t := s + c
	return t, t >= s
}
