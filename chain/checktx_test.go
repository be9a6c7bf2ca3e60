package chain

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestCheckTxAgreesWithApply is the property of the one transaction path:
// on random sequences of transactions (every type and an unknown one;
// amounts and fees at the overflow edges; nonces right and wrong; stakes
// near the lot boundaries, max_lots and min_total_stake; senders and
// recipients the same or not) CheckTx on a state says OK exactly when
// Apply of that transaction succeeds, with the same error code when not,
// and both agree with refApplyTx, the rules as written before CheckTx
// (so consensus did not move). A refused Apply leaves the state as it was.
// POSD_CHECKTX_SEQS runs more sequences.
func TestCheckTxAgreesWithApply(t *testing.T) {
	seqs := 300
	if n, err := strconv.Atoi(os.Getenv("POSD_CHECKTX_SEQS")); err == nil && n > 0 {
		seqs = n
	}
	codes := map[ErrorCode]int{}
	for seed := range uint64(seqs) {
		checkSequence(t, seed, 40, codes)
		if t.Failed() {
			return
		}
	}
	// A property that never meets a refusal tests little: each rule must
	// have been met at least once.
	for _, want := range []*RuleError{ErrUnknownType, ErrBadNonce, ErrFeeTooLow, ErrNotExchange, ErrAmountOverflow,
		ErrInsufficientFunds, ErrInsufficientStake, ErrStakeLimit, ErrStakeFloor} {
		if codes[want.Code] == 0 {
			t.Errorf("no sequence met %s: %v", want.Code, codes)
		}
	}
	t.Logf("outcomes by code: %v", codes)
	if codes[""] == 0 {
		t.Errorf("no transaction applied: %v", codes)
	}
}

func checkSequence(t *testing.T, seed uint64, steps int, codes map[ErrorCode]int) {
	rng := rand.New(rand.NewPCG(seed, 0x19))
	names := []string{"alice", "bob", "carol", "dave"}
	addrs := make([]Address, len(names))
	for i, n := range names {
		addrs[i] = testAddr(n)
	}
	g := DefaultGenesis()
	g.ChainID = testChainID
	g.LotSize = []uint64{1, 7, 100}[rng.IntN(3)]
	g.MaxLots = 50 + rng.Uint64N(100)
	g.MinTotalStake = g.LotSize * (1 + rng.Uint64N(20))
	g.MinFee = rng.Uint64N(3)
	g.Exchange = ExchangePolicy{Authorities: []Address{addrs[0]}}
	st := NewState()
	for i, a := range addrs {
		acc := Account{Balance: pick(rng, g, Account{}), Nonce: rng.Uint64N(3)}
		if i < 2 {
			acc.Stake = g.LotSize * (g.MinTotalStake/g.LotSize + rng.Uint64N(g.MaxLots/4))
		}
		if rng.IntN(8) == 0 {
			acc.Balance = math.MaxUint64 - rng.Uint64N(10)
		}
		st.SetAccount(a, acc)
	}
	for step := range steps {
		tx := randomTx(rng, g, st, addrs)
		where := fmt.Sprintf("seed %d step %d: %s %d fee %d nonce %d from %s to %s", seed, step, tx.Type, tx.Amount, tx.Fee, tx.Nonce, tx.From[:6], tx.To[:6])

		check := CheckTx(g, st, &tx, Pending{})
		ref := st.Clone()
		refErr := refApplyTx(ref, &tx, g)
		next := st.Clone()
		// A forger of its own each block: its fee credit cannot overflow,
		// and it is not an account the transactions touch.
		forger := testAddr(fmt.Sprint("forger", seed, step))
		_, applyErr := next.Apply(&Block{Header: Header{Height: 0, Forger: forger}, Transactions: []Transaction{tx}}, g)

		if CodeOf(check) != CodeOf(applyErr) || CodeOf(check) != CodeOf(refErr) {
			t.Fatalf("%s: CheckTx %v, Apply %v, the rules before CheckTx %v", where, check, applyErr, refErr)
		}
		if (check == nil) != (applyErr == nil) {
			t.Fatalf("%s: CheckTx %v, Apply %v", where, check, applyErr)
		}
		codes[CodeOf(check)]++
		// On the accounts alone, the same but for the stake totals.
		held := CheckTxAccounts(g, &tx, st.Account(tx.From), st.Account(tx.To), Pending{})
		if stakeTotals := errors.Is(check, ErrStakeLimit) || errors.Is(check, ErrStakeFloor); stakeTotals && held != nil || !stakeTotals && CodeOf(held) != CodeOf(check) {
			t.Fatalf("%s: CheckTx %v, CheckTxAccounts %v", where, check, held)
		}
		if applyErr != nil {
			if !next.Equal(st) {
				t.Fatalf("%s: a refused Apply changed the state", where)
			}
			continue
		}
		// The same accounts as the old rules left, the forger's fee apart.
		next.SetAccount(forger, Account{})
		if !next.Equal(ref) {
			t.Fatalf("%s: Apply and the rules before CheckTx left different states", where)
		}
		if next.Lots(g.LotSize) != ref.Lots(g.LotSize) {
			t.Fatalf("%s: lots %d, want %d", where, next.Lots(g.LotSize), ref.Lots(g.LotSize))
		}
		st = next
	}
}

// randomTx makes a transaction of a random type (an unknown one too) from
// one of addrs, aimed at the rules' edges.
func randomTx(rng *rand.Rand, g *Genesis, st *State, addrs []Address) Transaction {
	types := []TxType{TxExchange, TxTransfer, TxStake, TxStake, TxUnstake, TxUnstake, "BURN"}
	from := addrs[rng.IntN(len(addrs))]
	to := from
	if rng.IntN(3) == 0 {
		to = addrs[rng.IntN(len(addrs))]
	}
	acc := st.Account(from)
	tx := Transaction{Type: types[rng.IntN(len(types))], ChainID: testChainID, From: from, To: to, Nonce: acc.Nonce + 1}
	if tx.Type == TxTransfer && to == from && rng.IntN(2) == 0 {
		tx.To = addrs[(rng.IntN(len(addrs)-1)+1+indexOf(addrs, from))%len(addrs)]
	}
	switch rng.IntN(10) {
	case 0:
		tx.Nonce = acc.Nonce
	case 1:
		tx.Nonce = acc.Nonce + 2
	}
	tx.Amount = pick(rng, g, acc)
	switch rng.IntN(6) {
	case 0:
		tx.Fee = 0
	case 1:
		tx.Fee = math.MaxUint64 - rng.Uint64N(3)
	case 2:
		tx.Fee = math.MaxUint64 - tx.Amount + rng.Uint64N(2)
	default:
		tx.Fee = g.MinFee + rng.Uint64N(3)
	}
	return tx
}

// pick returns an amount near an edge of acc or of g's stake rules.
func pick(rng *rand.Rand, g *Genesis, acc Account) uint64 {
	lots := func(n uint64) uint64 { return n * g.LotSize }
	switch rng.IntN(10) {
	case 0:
		return 0
	case 1:
		return math.MaxUint64 - rng.Uint64N(3)
	case 2:
		return 1 << 62
	case 3:
		return acc.Balance - rng.Uint64N(3)
	case 4:
		return acc.Stake - rng.Uint64N(2)*g.LotSize
	case 5:
		return lots(g.MaxLots) + rng.Uint64N(3) - 1
	case 6:
		return lots(rng.Uint64N(g.MaxLots/2+1)) + rng.Uint64N(2)
	case 7:
		return g.MinTotalStake + rng.Uint64N(3) - 1
	}
	return 1 + rng.Uint64N(1000)
}

func indexOf(as []Address, a Address) int {
	for i := range as {
		if as[i] == a {
			return i
		}
	}
	return -1
}

// refApplyTx is State.applyTx as it was written before CheckTx (every rule
// inline, on the live state), the fee burned: the reference the property
// compares against, so a change of consensus would show. On error the
// caller drops s.
func refApplyTx(s *State, tx *Transaction, g *Genesis) error {
	r := lookupTx(tx.Type)
	if r == nil {
		return ruleErrorf(ErrUnknownType, "type %q", tx.Type)
	}
	from := s.Account(tx.From)
	if tx.Nonce != from.Nonce+1 {
		return ruleErrorf(ErrBadNonce, "nonce")
	}
	if tx.Fee < g.MinFee {
		return ruleErrorf(ErrFeeTooLow, "fee")
	}
	if r.Mints && !g.Exchange.Allows(tx.From) {
		return ruleErrorf(ErrNotExchange, "exchange")
	}
	e, err := tx.Effect()
	if err != nil {
		return err
	}
	if from.Stake < e.Debit.Stake {
		return ruleErrorf(ErrInsufficientStake, "stake")
	}
	if from.Balance < e.Debit.Balance {
		return ruleErrorf(ErrInsufficientFunds, "funds")
	}
	before := s.Lots(g.LotSize)
	from.Balance -= e.Debit.Balance
	from.Stake -= e.Debit.Stake
	from.Nonce++
	s.SetAccount(tx.From, from)
	to := s.Account(tx.To)
	if g.UnbondingBlocks == 0 {
		e.Credit.Balance, e.Credit.Unbonding = e.Credit.Balance+e.Credit.Unbonding, 0
	}
	// Balance + Unbonding must not overflow (a release never can then).
	held := to.Balance + to.Unbonding
	if held < to.Balance || held+e.Credit.Balance+e.Credit.Unbonding < held || to.Stake+e.Credit.Stake < to.Stake {
		return ruleErrorf(ErrAmountOverflow, "credit")
	}
	if e.Credit != (Amounts{}) {
		to.Balance += e.Credit.Balance
		to.Stake += e.Credit.Stake
		to.Unbonding += e.Credit.Unbonding
		if e.Credit.Unbonding > 0 {
			to.Release = g.UnbondingBlocks // the block is at height 0
		}
		s.SetAccount(tx.To, to)
	}
	if e.Debit.Stake != 0 || e.Credit.Stake != 0 {
		for _, a := range []Address{tx.From, tx.To} {
			if s.Account(a).Stake/g.LotSize > g.MaxLots {
				return ruleErrorf(ErrStakeLimit, "account")
			}
		}
		after := s.Lots(g.LotSize)
		switch {
		case after > before && after > g.MaxLots:
			return ruleErrorf(ErrStakeLimit, "total")
		case after < before && after*g.LotSize < g.MinTotalStake:
			return ruleErrorf(ErrStakeFloor, "floor")
		}
	}
	return nil
}

// TestCheckTxPending: what the sender's earlier pooled transactions owe
// counts, with its own messages, and the nonce follows them.
func TestCheckTxPending(t *testing.T) {
	g := testGenesis(t)
	alice, bob := testAddr("alice"), testAddr("bob")
	st := g.State() // alice: balance 1000, stake 10
	tests := []struct {
		name string
		tx   Transaction
		p    Pending
		want *RuleError
		msg  string
	}{
		{"after two pending", signedTx(TxTransfer, "alice", bob, 10, 0, 3), Pending{Txs: 2, Owed: Amounts{Balance: 990}}, nil, ""},
		{"nonce not after the pending", signedTx(TxTransfer, "alice", bob, 10, 0, 2), Pending{Txs: 2}, ErrBadNonce, "expects 3"},
		{"funds owed", signedTx(TxTransfer, "alice", bob, 10, 0, 2), Pending{Txs: 1, Owed: Amounts{Balance: 991}}, ErrInsufficientFunds, "is 1000, pending 991, needs 10"},
		{"more owed than held", signedTx(TxTransfer, "alice", bob, 1, 0, 2), Pending{Txs: 1, Owed: Amounts{Balance: 1001}}, ErrInsufficientFunds, "pending 1001"},
		{"stake owed", signedTx(TxUnstake, "alice", alice, 5, 0, 2), Pending{Txs: 1, Owed: Amounts{Stake: 6}}, ErrInsufficientStake, "is 10, pending unstakes 6, UNSTAKE needs 5"},
		{"the floor after the pending unstakes", signedTx(TxUnstake, "alice", alice, 4, 0, 2), Pending{Txs: 1, Owed: Amounts{Stake: 6}}, ErrStakeFloor, ""},
	}
	for _, tc := range tests {
		err := CheckTx(g, st, &tc.tx, tc.p)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.want.Code)
		} else if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: message %q lacks %q", tc.name, err, tc.msg)
		}
	}
}
