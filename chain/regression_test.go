package chain

import (
	"errors"
	"testing"
)

// TestRegressionStake2p62: v1 froze every node with EXCHANGE 2^62 then
// STAKE 2^62 (the lottery cost one hash per staked coin). Now the EXCHANGE
// is valid, the STAKE is refused with stake_limit, and the chain goes on:
// the next election still runs over at most max_lots lots
// (BenchmarkWorstElection* bound what that costs).
func TestRegressionStake2p62(t *testing.T) {
	c := newTestChain(t, testGenesis(t))
	dave := testAddr("dave")
	c.accept(c.next(0, signedTx(TxExchange, "dave", dave, 1<<62, 0, 1)))
	stake := signedTx(TxStake, "dave", dave, 1<<62, 0, 2)
	if err := c.state.CheckTx(&stake, c.g); !errors.Is(err, ErrStakeLimit) {
		t.Fatalf("STAKE 2^62: %v, want stake_limit", err)
	}
	b := c.next(0, stake)
	if _, err := ValidateAndApply(c.g, c.tip(), b, c.candidates(), c.state, c.nowMs, nil); !errors.Is(err, ErrStakeLimit) {
		t.Fatalf("block with STAKE 2^62: %v, want stake_limit", err)
	}
	// The largest stake that fits is accepted, and the chain goes on.
	room := c.g.MaxLots - c.state.Lots(c.g.LotSize)
	c.accept(c.next(0, signedTx(TxStake, "dave", dave, room, 0, 2)))
	if lots := ElectionTable(c.g, c.state).Total(); lots != c.g.MaxLots {
		t.Fatalf("%d lots after filling up, want max_lots %d", lots, c.g.MaxLots)
	}
	c.accept(c.next(0))
	one := signedTx(TxStake, "dave", dave, 1, 0, 3)
	if err := c.state.CheckTx(&one, c.g); !errors.Is(err, ErrStakeLimit) {
		t.Fatalf("one more lot: %v, want stake_limit", err)
	}
}

// TestRegressionUnstakeToZero: v1 let UNSTAKE empty the stake, after which
// nobody could ever forge. Now it is refused with stake_floor, and the
// same UNSTAKE less one coin is fine.
func TestRegressionUnstakeToZero(t *testing.T) {
	c := newTestChain(t, testGenesis(t))
	alice := testAddr("alice")
	all := signedTx(TxUnstake, "alice", alice, 10, 0, 1)
	if err := c.state.CheckTx(&all, c.g); !errors.Is(err, ErrStakeFloor) {
		t.Fatalf("unstake everything: %v, want stake_floor", err)
	}
	c.accept(c.next(0, signedTx(TxUnstake, "alice", alice, 9, 0, 1)))
	if cands := c.candidates(); len(cands) != 1 || cands[0] != alice {
		t.Fatalf("candidates %v after unstaking down to the floor", cands)
	}
	last := signedTx(TxUnstake, "alice", alice, 1, 0, 2)
	if err := c.state.CheckTx(&last, c.g); !errors.Is(err, ErrStakeFloor) {
		t.Fatalf("unstake the last coin: %v, want stake_floor", err)
	}
}
