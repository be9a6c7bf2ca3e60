package chain

// This file is the one table of transaction types: for each type, its code
// in the signing bytes, its stateless rule, what it costs its sender and
// what it credits. State.Apply, the stateless checks, the signing bytes and
// the pre-checks of pools and wallets all read it, so adding a type is one
// entry here plus its tests.

// Amounts is a quantity of balance, of stake and of unbonding stake.
type Amounts struct {
	Balance uint64 `json:"balance"`
	Stake   uint64 `json:"stake"`
	// Unbonding is only ever credited (UNSTAKE): nothing spends it.
	Unbonding uint64 `json:"unbonding,omitempty"`
}

// Effect is what a transaction does to accounts. Debit leaves the sender
// (the fee included, in Debit.Balance); Credit then arrives at tx.To, which
// is the sender itself for STAKE and UNSTAKE. What EXCHANGE credits is
// minted. The fee goes to the block's forger. UNSTAKE credits unbonding
// stake (Account.Unbonding), which returns to the balance unbonding_blocks
// later; on a genesis with unbonding_blocks 0 it is credited to the
// balance at once (State.Apply and CheckTx do that, not Effect).
type Effect struct {
	Debit  Amounts `json:"debit"`
	Credit Amounts `json:"credit"`
}

// TxSpec describes one transaction type.
type TxSpec struct {
	Type TxType
	// Code stands for the type in the signing bytes and never changes.
	Code byte
	// ToSelf: the transaction must be sent to its own sender (stake_not_self).
	ToSelf bool
	// Mints: the credit is new coins, so only the genesis exchange
	// authorities may send it (exchange_not_allowed).
	Mints bool
	// Doc says in one line what the type does.
	Doc string
}

type txRule struct {
	TxSpec
	// effect is the type's cost and credit; tx.Amount+tx.Fee is known
	// not to overflow when it is called.
	effect func(tx *Transaction) Effect
}

// txTable is the table of transaction types, in code order.
var txTable = [...]txRule{
	{TxSpec{TxExchange, 1, false, true, "buys coins from the exchange: mints amount to `to`; the sender pays the fee"},
		func(tx *Transaction) Effect {
			return Effect{Debit: Amounts{Balance: tx.Fee}, Credit: Amounts{Balance: tx.Amount}}
		}},
	{TxSpec{TxTransfer, 2, false, false, "the sender pays amount + fee; `to` receives amount"},
		func(tx *Transaction) Effect {
			return Effect{Debit: Amounts{Balance: tx.Amount + tx.Fee}, Credit: Amounts{Balance: tx.Amount}}
		}},
	{TxSpec{TxStake, 3, true, false, "moves amount from the sender's balance to its stake; the sender pays the fee"},
		func(tx *Transaction) Effect {
			return Effect{Debit: Amounts{Balance: tx.Amount + tx.Fee}, Credit: Amounts{Stake: tx.Amount}}
		}},
	{TxSpec{TxUnstake, 4, true, false, "moves amount from the sender's stake to unbonding, back in its balance unbonding_blocks later; the sender pays the fee"},
		func(tx *Transaction) Effect {
			return Effect{Debit: Amounts{Balance: tx.Fee, Stake: tx.Amount}, Credit: Amounts{Unbonding: tx.Amount}}
		}},
}

func lookupTx(t TxType) *txRule {
	for i := range txTable {
		if txTable[i].Type == t {
			return &txTable[i]
		}
	}
	return nil
}

// TxTypes lists every transaction type, in code order.
func TxTypes() []TxSpec {
	out := make([]TxSpec, len(txTable))
	for i := range txTable {
		out[i] = txTable[i].TxSpec
	}
	return out
}

// LookupTxType returns the description of t, false when t is unknown.
func LookupTxType(t TxType) (TxSpec, bool) {
	if r := lookupTx(t); r != nil {
		return r.TxSpec, true
	}
	return TxSpec{}, false
}

// code is the byte that stands for the type in the canonical encoding.
func (t TxType) code() (byte, bool) {
	if r := lookupTx(t); r != nil {
		return r.Code, true
	}
	return 0, false
}

// Effect returns what tx takes from its sender and credits, by the table of
// types. Errors: unknown_type, overflow (amount + fee).
func (tx *Transaction) Effect() (Effect, error) {
	r := lookupTx(tx.Type)
	if r == nil {
		return Effect{}, ruleErrorf(ErrUnknownType, "type %q is not one of %s", tx.Type, typeNames())
	}
	if tx.Amount+tx.Fee < tx.Amount {
		return Effect{}, ruleErrorf(ErrAmountOverflow, "amount %d + fee %d overflows", tx.Amount, tx.Fee)
	}
	return r.effect(tx), nil
}

// Cost is what tx takes from its sender's balance and stake, the fee
// included: what a pool reserves against pending spends, and a wallet
// checks before it signs.
func (tx *Transaction) Cost() (Amounts, error) {
	e, err := tx.Effect()
	return e.Debit, err
}

func typeNames() string {
	s := ""
	for i := range txTable {
		switch {
		case i == 0:
		case i == len(txTable)-1:
			s += " or "
		default:
			s += ", "
		}
		s += string(txTable[i].Type)
	}
	return s
}

// CheckTx runs every rule tx must meet that depends on no account: the
// stateless rules (Transaction.CheckStateless on this chain id), the
// minimum fee and, for a minting type, the exchange policy. The signature
// is not checked (VerifySignature). Pools run it at admission, wallets
// before they send.
func (g *Genesis) CheckTx(tx *Transaction) error {
	if err := tx.CheckStateless(g.ChainID); err != nil {
		return err
	}
	return g.checkTxParams(tx, lookupTx(tx.Type))
}

// checkTxParams checks the genesis rules of a known type.
func (g *Genesis) checkTxParams(tx *Transaction, r *txRule) error {
	if tx.Fee < g.MinFee {
		return ruleErrorf(ErrFeeTooLow, "fee %d, this network's min_fee is %d", tx.Fee, g.MinFee)
	}
	if r.Mints && !g.Exchange.Allows(tx.From) {
		return ruleErrorf(ErrNotExchange, "%s is not an exchange authority", tx.From)
	}
	return nil
}

// CheckPayable is the typed pre-check of a transaction against accounts a
// caller holds (a wallet's): CheckTxAccounts with from (the sender's
// account) and to (the recipient's), the nonce taken as right. It
// runs every rule of State.Apply but the nonce and the stake totals
// (stake_limit, stake_floor need the whole state): fee_too_low,
// exchange_not_allowed, insufficient_stake, insufficient_funds, overflow.
// Accounts are not changed.
func (g *Genesis) CheckPayable(tx *Transaction, from, to Account) error {
	from.Nonce = tx.Nonce - 1
	return CheckTxAccounts(g, tx, from, to, Pending{})
}
