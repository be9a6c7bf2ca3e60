package txadmit

import (
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/mempool"
	"github.com/poslab/posd/internal/testkit"
)

// recordingPool is a pool that admits everything and remembers what it
// was given, to show what admission passes on.
type recordingPool struct {
	got  []chain.Transaction
	from []mempool.Origin // of each call
}

func (p *recordingPool) AdmitNewest(txs []chain.Transaction, from mempool.Origin, newest func() mempool.StateView) ([]error, []chain.Transaction) {
	if newest() == nil {
		panic("no view")
	}
	p.got = append(p.got, txs...)
	p.from = append(p.from, from)
	return make([]error, len(txs)), txs
}

// TestAdmitRefusesStakeTotals: each case with the code admission gives it
// (none: passed on to the pool). Only the stake totals are admission's;
// every other refusal is the pool's, so a stake change that breaks another
// rule reaches the pool and gets the pool's code.
func TestAdmitRefusesStakeTotals(t *testing.T) {
	staker, whale := testkit.Named("staker"), testkit.Named("whale")
	g := testkit.Genesis([]chain.Allocation{testkit.Fund(staker, 50, 100), testkit.Fund(whale, 5000, 0)},
		func(g *chain.Genesis) { g.MaxLots, g.MinTotalStake = 1000, 100 })
	st := g.State()

	// selfTx is k's fee-less transaction of typ to itself.
	selfTx := func(k testkit.Key, typ chain.TxType, amount, nonce uint64) chain.Transaction {
		return testkit.Tx(k, typ, "", amount, 0, nonce)
	}
	tests := []struct {
		name string
		tx   chain.Transaction
		want *chain.RuleError
	}{
		{"stake within max_lots", selfTx(whale, chain.TxStake, 900, 1), nil},
		{"stake over max_lots", selfTx(whale, chain.TxStake, 901, 1), chain.ErrStakeLimit},
		{"stake over max_lots after a gap", selfTx(whale, chain.TxStake, 901, 3), chain.ErrStakeLimit},
		{"unstake below min_total_stake", selfTx(staker, chain.TxUnstake, 1, 1), chain.ErrStakeFloor},
		{"stake over max_lots with a used nonce: the pool's", selfTx(whale, chain.TxStake, 901, 0), nil},
		{"stake over max_lots on another chain: the pool's", func() chain.Transaction {
			t := selfTx(whale, chain.TxStake, 901, 1)
			t.ChainID = "elsewhere"
			return testkit.Resign(whale, t)
		}(), nil},
		{"unstake beyond the stake: the pool's", selfTx(staker, chain.TxUnstake, 101, 1), nil},
		{"transfer", selfTx(whale, chain.TxTransfer, 10, 1), nil},
	}
	for _, from := range []mempool.Origin{mempool.Local, mempool.Relayed} {
		pool := &recordingPool{}
		a := New(g, func() chain.LotView { return st }, pool)
		txs := make([]chain.Transaction, len(tests))
		for i, tc := range tests {
			txs[i] = tc.tx
		}
		errs, ready := a.Admit(txs, from)
		if len(pool.from) != 1 || pool.from[0] != from {
			t.Errorf("admitted as %v: the pool was told %v", from, pool.from)
		}
		passed := map[chain.Hash]bool{}
		for _, tx := range pool.got {
			passed[tx.ID()] = true
		}
		for i, tc := range tests {
			if chain.CodeOf(errs[i]) != codeOf(tc.want) {
				t.Errorf("%s: got %v, want %q", tc.name, errs[i], codeOf(tc.want))
			}
			if passed[tc.tx.ID()] != (tc.want == nil) {
				t.Errorf("%s: passed to the pool: %v", tc.name, passed[tc.tx.ID()])
			}
		}
		if len(ready) != len(pool.got) {
			t.Errorf("ready %d, the pool made %d ready", len(ready), len(pool.got))
		}
	}
}

func codeOf(e *chain.RuleError) chain.ErrorCode {
	if e == nil {
		return ""
	}
	return e.Code
}
