// Package txadmit is the node's one door for transactions, whoever brings
// them: the API (SubmitTxs) and gossip (HandleTxs) both admit through an
// Admitter, so a transaction the chain would refuse on the head is refused
// with the same code on either path, and what gossip refuses is not relayed.
//
// The Admitter adds to the pool's rules only what the pool cannot see: the
// stake totals (stake_limit, stake_floor), which need the whole state. It
// asks chain.CheckTx for them on the newest snapshot, so the rule is the
// chain's, written once.
package txadmit

import (
	"errors"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/daemon/mempool"
)

// Pool is what admission needs of the mempool.
type Pool interface {
	AdmitNewest(txs []chain.Transaction, from mempool.Origin, newest func() mempool.StateView) (errs []error, ready []chain.Transaction)
}

// Admitter admits transactions to a pool against the newest state.
type Admitter struct {
	g      *chain.Genesis
	newest func() chain.LotView
	pool   Pool
}

// New returns an Admitter for the network g describes. newest returns the
// head's state at each call (the chain manager's snapshot, which is also
// mempool.Versioned); it must never wait for an import.
func New(g *chain.Genesis, newest func() chain.LotView, pool Pool) *Admitter {
	return &Admitter{g: g, newest: newest, pool: pool}
}

// Admit runs the stake totals on the stake changes among txs, then pools
// the rest as brought by from (mempool.Origin: the API's are Local,
// gossip's Relayed). It returns an error per transaction (nil: pooled)
// and the transactions that became executable, to gossip.
func (a *Admitter) Admit(txs []chain.Transaction, from mempool.Origin) (errs []error, ready []chain.Transaction) {
	newest := func() mempool.StateView { return a.newest() }
	var refused []error
	var view chain.LotView
	for i := range txs {
		if !changesStake(&txs[i]) {
			continue
		}
		if view == nil {
			view = a.newest()
		}
		if err := a.checkStake(view, &txs[i]); err != nil {
			if refused == nil {
				refused = make([]error, len(txs))
			}
			refused[i] = err
		}
	}
	if refused == nil { // the usual case: no copies
		return a.pool.AdmitNewest(txs, from, newest)
	}
	admit, where := make([]chain.Transaction, 0, len(txs)), make([]int, 0, len(txs))
	for i := range txs {
		if refused[i] != nil {
			continue
		}
		admit, where = append(admit, txs[i]), append(where, i)
	}
	if len(admit) == 0 {
		return refused, nil
	}
	admitted, ready := a.pool.AdmitNewest(admit, from, newest)
	for j, err := range admitted {
		refused[where[j]] = err
	}
	return refused, ready
}

// changesStake reports whether tx moves stake (STAKE, UNSTAKE): only those
// can break the stake totals.
func changesStake(tx *chain.Transaction) bool {
	e, err := tx.Effect()
	return err == nil && (e.Debit.Stake != 0 || e.Credit.Stake != 0)
}

// checkStake returns the stake_limit or stake_floor error chain.CheckTx
// gives tx on v, with tx's nonce taken as following the sender's pooled
// transactions, or nil. Any other broken rule is the pool's to report:
// it counts what the sender's pooled transactions owe, and its codes tell
// a peer's fault (a stateless rule) from a state it has not seen.
func (a *Admitter) checkStake(v chain.LotView, tx *chain.Transaction) error {
	if a.g.CheckTx(tx) != nil {
		return nil
	}
	acc := v.Account(tx.From)
	if tx.Nonce <= acc.Nonce {
		return nil
	}
	err := chain.CheckTx(a.g, v, tx, chain.Pending{Txs: tx.Nonce - acc.Nonce - 1})
	if errors.Is(err, chain.ErrStakeLimit) || errors.Is(err, chain.ErrStakeFloor) {
		return err
	}
	return nil
}
