package chain

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// unbondingGenesis: alice stakes 10 and bob 6 (so alice may unstake all of
// hers above the floor), no reward, unbonding_blocks u.
//
// u 0 is no genesis a file may hold (Validate refuses it); it is what a
// Genesis built in code without the field holds, and it must behave as v2
// (coins back at once), so the tests set it after validation.
func unbondingGenesis(t testing.TB, u uint64, mutate ...func(*Genesis)) *Genesis {
	t.Helper()
	g := testGenesis(t, append([]func(*Genesis){twoStakers, func(g *Genesis) {
		g.UnbondingBlocks = max(u, 1)
		g.BlockReward = 0
	}}, mutate...)...)
	g.UnbondingBlocks = u
	return g
}

// applyAt applies a block at height h carrying txs and evidence, forged by
// an address no test account is, and fails the test on error.
func applyAt(t testing.TB, st *State, g *Genesis, h uint64, ev []Evidence, txs ...Transaction) *Undo {
	t.Helper()
	u, err := st.Apply(&Block{Header: Header{Height: h, Forger: testAddr("forger")}, Transactions: txs, Evidence: ev}, g)
	if err != nil {
		t.Fatalf("block %d: %v", h, err)
	}
	return u
}

// testVote is name's signed vote for source → target, the hashes made from
// the heights and tag (two tags: two different blocks at one height).
func testVote(name string, s, tgt uint64, tag byte) Vote {
	v := Vote{Source: Checkpoint{Height: s, Hash: Hash{byte(s), 's'}}, Target: Checkpoint{Height: tgt, Hash: Hash{byte(tgt), 't', tag}}}
	v.Sign(testChainID, testKey(name))
	return v
}

func mustVoteEvidence(t testing.TB, a, b Vote) Evidence {
	t.Helper()
	e, err := NewVoteEvidence(&a, &b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestUnbondingRelease: UNSTAKE moves stake to unbonding, which carries no
// lots and returns to the balance at the exact release height.
func TestUnbondingRelease(t *testing.T) {
	alice := testAddr("alice")
	unstake := func(amount, nonce uint64) Transaction {
		return signedTx(TxUnstake, "alice", alice, amount, 0, nonce)
	}
	type want struct{ balance, stake, unbonding, release uint64 }
	for _, tc := range []struct {
		name   string
		u      uint64
		blocks map[uint64][]Transaction // height → transactions; the others empty
		want   map[uint64]want          // alice after the block at that height
		top    uint64
	}{
		{"release at the exact height", 3,
			map[uint64][]Transaction{1: {unstake(4, 1)}},
			map[uint64]want{1: {1000, 6, 4, 4}, 3: {1000, 6, 4, 4}, 4: {1004, 6, 0, 0}, 5: {1004, 6, 0, 0}}, 5},
		{"a second unstake restarts the clock for all", 3,
			map[uint64][]Transaction{1: {unstake(4, 1)}, 2: {unstake(2, 2)}},
			map[uint64]want{1: {1000, 6, 4, 4}, 2: {1000, 4, 6, 5}, 4: {1000, 4, 6, 5}, 5: {1006, 4, 0, 0}}, 6},
		{"an unstake in the block that releases", 2,
			map[uint64][]Transaction{1: {unstake(1, 1)}, 3: {unstake(2, 2)}},
			map[uint64]want{1: {1000, 9, 1, 3}, 3: {1001, 7, 2, 5}, 4: {1001, 7, 2, 5}, 5: {1003, 7, 0, 0}}, 5},
		{"unbonding_blocks 0 returns the coins at once", 0,
			map[uint64][]Transaction{1: {unstake(4, 1)}},
			map[uint64]want{1: {1004, 6, 0, 0}, 2: {1004, 6, 0, 0}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := unbondingGenesis(t, tc.u)
			st := g.State()
			lots := st.Lots(g.LotSize)
			for h := uint64(1); h <= tc.top; h++ {
				applyAt(t, st, g, h, nil, tc.blocks[h]...)
				acc := st.Account(alice)
				if w, ok := tc.want[h]; ok {
					if got := (want{acc.Balance, acc.Stake, acc.Unbonding, acc.Release}); got != w {
						t.Fatalf("after block %d: alice %+v, want %+v", h, got, w)
					}
				}
				// Unbonding carries no lots.
				if got, want := st.Lots(g.LotSize), lots-(10-acc.Stake); got != want {
					t.Fatalf("after block %d: %d lots, want %d", h, got, want)
				}
				if acc.Unbonding > 0 && !slices.Contains(st.Releasing(acc.Release), alice) {
					t.Fatalf("after block %d: the release queue at %d misses alice", h, acc.Release)
				}
			}
			if got := st.Releasing(tc.top); len(got) != 0 {
				t.Fatalf("the queue still holds %v for a height applied", got)
			}
		})
	}
}

// TestUnbondingRevertAcrossRelease: reverting the block that released
// puts the coins back in unbonding and in the queue, and the next block
// at that height releases them again.
func TestUnbondingRevertAcrossRelease(t *testing.T) {
	g := unbondingGenesis(t, 2)
	alice := testAddr("alice")
	st := g.State()
	genesis := st.Clone()
	u1 := applyAt(t, st, g, 1, nil, signedTx(TxUnstake, "alice", alice, 4, 0, 1))
	u2 := applyAt(t, st, g, 2, nil)
	before := st.Clone()
	u3 := applyAt(t, st, g, 3, nil)
	released := st.Clone()
	if got := st.Account(alice); got.Balance != 1004 || got.Unbonding != 0 {
		t.Fatalf("block 3 did not release: %+v", got)
	}
	st.Revert(u3)
	if !st.Equal(before) {
		t.Fatal("revert of the releasing block did not restore the state")
	}
	if got := st.Account(alice); got.Unbonding != 4 || got.Release != 3 || !slices.Contains(st.Releasing(3), alice) {
		t.Fatalf("after revert: %+v, queue at 3 %v", got, st.Releasing(3))
	}
	// Another block at height 3 (another branch) releases again.
	applyAt(t, st, g, 3, nil)
	if !st.Equal(released) {
		t.Fatalf("re-applying height 3: alice %+v, want %+v", st.Account(alice), released.Account(alice))
	}
	// A refused block at the release height leaves the coins unbonding.
	st.Revert(u3)
	bad := signedTx(TxTransfer, "carol", alice, 1_000_000, 0, 1)
	if _, err := st.Apply(&Block{Header: Header{Height: 3}, Transactions: []Transaction{bad}}, g); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("overdraft: %v", err)
	}
	if !st.Equal(before) || !slices.Contains(st.Releasing(3), alice) {
		t.Fatal("a refused block at the release height changed the state or the queue")
	}
	st.Revert(u2)
	st.Revert(u1)
	if !st.Equal(genesis) || st.Account(alice) != genesis.Account(alice) {
		t.Fatal("reverting to genesis did not restore it")
	}
}

// TestSlashReachesUnbonding: slash_percent of bonded and unbonding stake is
// burned, even in the block that would release it.
func TestSlashReachesUnbonding(t *testing.T) {
	alice := testAddr("alice")
	type want struct{ balance, stake, unbonding, release, burned uint64 }
	for _, tc := range []struct {
		name     string
		percent  uint32
		evidence uint64 // height of the block carrying the evidence
		want     want   // alice after it
		after    want   // alice at height 4, past the release (burned unused)
	}{
		{"half of each", 50, 2, want{1000, 3, 2, 3, 5}, want{1002, 3, 0, 0, 0}},
		{"all of it", 100, 2, want{1000, 0, 0, 0, 10}, want{1000, 0, 0, 0, 0}},
		{"in the block that releases", 50, 3, want{1002, 3, 0, 0, 5}, want{1002, 3, 0, 0, 0}},
		{"switched off", 0, 2, want{1000, 6, 4, 3, 0}, want{1004, 6, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := unbondingGenesis(t, 2, func(g *Genesis) { g.SlashPercent = tc.percent })
			st := g.State()
			ev := mustVoteEvidence(t, testVote("alice", 0, 1, 1), testVote("alice", 0, 1, 2))
			var undos []*Undo
			var snaps []*State
			for h := uint64(1); h <= 4; h++ {
				var txs []Transaction
				if h == 1 {
					txs = []Transaction{signedTx(TxUnstake, "alice", alice, 4, 0, 1)}
				}
				var evs []Evidence
				if h == tc.evidence {
					evs = []Evidence{ev}
				}
				snaps = append(snaps, st.Clone())
				undos = append(undos, applyAt(t, st, g, h, evs, txs...))
				acc := st.Account(alice)
				if h == tc.evidence {
					rec, ok := st.SlashedFor(&ev)
					got := want{acc.Balance, acc.Stake, acc.Unbonding, acc.Release, rec.Burned}
					if !ok || got != tc.want || rec.Kind != EvidenceDoubleVote || rec.IncludedIn != h {
						t.Fatalf("after the evidence: %+v, record %+v (%v), want %+v", got, rec, ok, tc.want)
					}
				}
				if h == 4 {
					if got := (want{acc.Balance, acc.Stake, acc.Unbonding, acc.Release, 0}); got != tc.after {
						t.Fatalf("at height 4: %+v, want %+v", got, tc.after)
					}
				}
			}
			// The same evidence again: already_slashed.
			if _, err := st.Clone().Apply(&Block{Header: Header{Height: 5}, Evidence: []Evidence{ev}}, g); !errors.Is(err, ErrAlreadySlashed) {
				t.Fatalf("second slashing: %v, want already_slashed", err)
			}
			for i := len(undos) - 1; i >= 0; i-- {
				st.Revert(undos[i])
				if !st.Equal(snaps[i]) {
					t.Fatalf("revert of block %d did not restore the state", i+1)
				}
			}
			if len(st.Slashings()) != 0 {
				t.Fatalf("slashings left after reverting everything: %+v", st.Slashings())
			}
		})
	}
}

// TestEvidenceExpiry: evidence older than unbonding_blocks is too old, so
// no unstaked coin is released before its evidence can land.
func TestEvidenceExpiry(t *testing.T) {
	for _, tc := range []struct {
		u            uint64
		header, vote uint64 // EvidenceAge by kind
	}{
		{256, MaxEvidenceAge, 256},
		{10, 10, 10},
		{64, 64, 64},
		{0, MaxEvidenceAge, MaxEvidenceAge},
	} {
		t.Run(fmt.Sprint("unbonding ", tc.u), func(t *testing.T) {
			g := unbondingGenesis(t, tc.u)
			if got := g.EvidenceAge(EvidenceEquivocation); got != tc.header {
				t.Fatalf("header evidence age %d, want %d", got, tc.header)
			}
			for _, k := range []EvidenceKind{EvidenceDoubleVote, EvidenceSurroundVote} {
				if got := g.EvidenceAge(k); got != tc.vote {
					t.Fatalf("%s age %d, want %d", k, got, tc.vote)
				}
			}
			ev := mustVoteEvidence(t, testVote("alice", 0, 5, 1), testVote("alice", 1, 5, 1))
			if err := ev.Check(g, 5+tc.vote); err != nil {
				t.Fatalf("evidence exactly %d below: %v", tc.vote, err)
			}
			if err := ev.Check(g, 5+tc.vote+1); !errors.Is(err, ErrEvidenceTooOld) {
				t.Fatalf("evidence %d below: %v, want evidence_too_old", tc.vote+1, err)
			}
		})
	}
	// With unbonding on, an offender who unstakes at the offence height is
	// still unbonding when the oldest evidence allowed lands.
	g := unbondingGenesis(t, 10)
	if g.EvidenceAge(EvidenceDoubleVote) > g.UnbondingBlocks || g.EvidenceAge(EvidenceEquivocation) > g.UnbondingBlocks {
		t.Fatal("evidence outlives unbonding")
	}
}

// TestUnbondingOverflow: balance + unbonding never overflows; an UNSTAKE
// or a credit that would make it is refused (overflow), by CheckTx and
// Apply alike.
func TestUnbondingOverflow(t *testing.T) {
	g := unbondingGenesis(t, 5)
	alice := testAddr("alice")
	st := g.State()
	st.SetAccount(alice, Account{Balance: math.MaxUint64 - 3, Stake: 10})
	tx := signedTx(TxUnstake, "alice", alice, 4, 0, 1)
	if err := st.CheckTx(&tx, g); !errors.Is(err, ErrAmountOverflow) {
		t.Fatalf("CheckTx: %v, want overflow", err)
	}
	if _, err := st.Clone().Apply(&Block{Header: Header{Height: 1}, Transactions: []Transaction{tx}}, g); !errors.Is(err, ErrAmountOverflow) {
		t.Fatalf("Apply: %v, want overflow", err)
	}
	ok := signedTx(TxUnstake, "alice", alice, 3, 0, 1)
	applyAt(t, st, g, 1, nil, ok)
	in := signedTx(TxTransfer, "bob", alice, 1, 0, 1)
	if err := st.CheckTx(&in, g); !errors.Is(err, ErrAmountOverflow) {
		t.Fatalf("a transfer onto unbonding coins at the limit: %v, want overflow", err)
	}
}

// TestGenesisUnbonding: the default, the bounds (0 refused: a genesis file
// always unbonds).
func TestGenesisUnbonding(t *testing.T) {
	if g := DefaultGenesis(); g.UnbondingBlocks != DefaultUnbondingBlocks {
		t.Fatalf("default unbonding_blocks %d", g.UnbondingBlocks)
	}
	for _, tc := range []struct {
		u    uint64
		code ErrorCode
	}{{0, ErrBadGenesis.Code}, {1, ""}, {MaxUnbondingBlocks, ""}, {MaxUnbondingBlocks + 1, ErrBadGenesis.Code}} {
		g := testGenesis(t)
		g.UnbondingBlocks = tc.u
		if err := g.Validate(); CodeOf(err) != tc.code {
			t.Errorf("unbonding_blocks %d: %v, want %q", tc.u, err, tc.code)
		}
	}
	g, err := ParseGenesis([]byte(`{"chain_id":"x","allocations":[{"address":"` + string(testAddr("alice")) + `","balance":1,"stake":1}]}`))
	if err != nil || g.UnbondingBlocks != DefaultUnbondingBlocks {
		t.Fatalf("absent unbonding_blocks: %v, %d", err, g.UnbondingBlocks)
	}
	p := DefaultGenesisParams()
	if p.UnbondingBlocks != DefaultUnbondingBlocks {
		t.Fatalf("params default %d", p.UnbondingBlocks)
	}
}

// TestTypedJournal is the property: on random sequences of blocks (with
// transfers, stakes, unstakes across their releases, refused blocks and
// vote evidence), each Revert restores every table exactly (accounts,
// slashings, and the release queue as the accounts need it), and applying
// a reverted block again gives the same state.
func TestTypedJournal(t *testing.T) {
	names := []string{"alice", "bob", "carol", "dave"}
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 0x20))
		u := []uint64{0, 1, 2, 3, 7}[rng.IntN(5)]
		g := unbondingGenesis(t, u, func(g *Genesis) {
			g.Allocations = append(g.Allocations, Allocation{Address: testAddr("dave"), Balance: 300, Stake: 20})
			g.SlashPercent = uint32(rng.IntN(101))
		})
		st := g.State()
		nonces := map[string]uint64{}
		type applied struct {
			undo   *Undo
			before *State
			block  *Block
		}
		var stack []applied
		for step := range 120 {
			h := uint64(len(stack) + 1)
			b := &Block{Header: Header{Height: h, Forger: testAddr(names[rng.IntN(4)])}}
			for range rng.IntN(4) {
				from := names[rng.IntN(4)]
				typ := []TxType{TxTransfer, TxStake, TxUnstake, TxUnstake}[rng.IntN(4)]
				to := testAddr(from)
				if typ == TxTransfer {
					to = testAddr(names[rng.IntN(4)])
				}
				nonces[from]++
				b.Transactions = append(b.Transactions, signedTx(typ, from, to, 1+rng.Uint64N(8), rng.Uint64N(2), nonces[from]))
			}
			if rng.IntN(5) == 0 && h > 1 {
				who := names[rng.IntN(4)]
				t1 := 1 + rng.Uint64N(h-1)
				b.Evidence = []Evidence{mustVoteEvidence(t, testVote(who, 0, t1, 1), testVote(who, 0, t1, 2))}
			}
			before := st.Clone()
			undo, err := st.Apply(b, g)
			if err != nil {
				if !st.Equal(before) {
					t.Fatalf("seed %d step %d: a refused block changed the state: %v", seed, step, err)
				}
				// Nonces of the refused transactions were not used.
				for _, n := range names {
					nonces[n] = st.Account(testAddr(n)).Nonce
				}
				continue
			}
			checkQueue(t, st, fmt.Sprintf("seed %d step %d", seed, step))
			stack = append(stack, applied{undo, before, b})
			if rng.IntN(4) == 0 {
				// Revert a few blocks, checking each, then re-apply the top one.
				k := 1 + rng.IntN(min(len(stack), 4))
				var last applied
				var after *State
				for range k {
					last = stack[len(stack)-1]
					after = st.Clone()
					st.Revert(last.undo)
					if !st.Equal(last.before) || !slices.Equal(st.Slashings(), last.before.Slashings()) || !slices.Equal(st.Accounts(), last.before.Accounts()) {
						t.Fatalf("seed %d step %d: revert of block %d did not restore every table", seed, step, last.block.Height)
					}
					checkQueue(t, st, fmt.Sprintf("seed %d step %d revert", seed, step))
					stack = stack[:len(stack)-1]
				}
				again, err := st.Apply(last.block, g)
				if err != nil || !st.Equal(after) {
					t.Fatalf("seed %d step %d: re-applying block %d: %v, same state %v", seed, step, last.block.Height, err, st.Equal(after))
				}
				stack = append(stack, applied{again, last.before, last.block})
				for _, n := range names {
					nonces[n] = st.Account(testAddr(n)).Nonce
				}
			}
		}
		for i := len(stack) - 1; i >= 0; i-- {
			st.Revert(stack[i].undo)
		}
		if !st.Equal(g.State()) || st.Len() != g.State().Len() || len(st.Slashings()) != 0 {
			t.Fatalf("seed %d: reverting every block did not give back genesis", seed)
		}
	}
}

// checkQueue: every unbonding account is in the release queue at its
// release height, and Len counts accounts only.
func checkQueue(t *testing.T, st *State, where string) {
	t.Helper()
	n := 0
	for _, e := range st.Accounts() {
		n++
		if !e.Address.Valid() {
			t.Fatalf("%s: Accounts lists %q", where, e.Address)
		}
		if e.Unbonding > 0 && !slices.Contains(st.Releasing(e.Release), e.Address) {
			t.Fatalf("%s: %s unbonds %d until %d, not in the queue", where, e.Address.Short(), e.Unbonding, e.Release)
		}
		if (e.Unbonding == 0) != (e.Release == 0) {
			t.Fatalf("%s: %s unbonding %d release %d", where, e.Address.Short(), e.Unbonding, e.Release)
		}
	}
	if st.Len() != n {
		t.Fatalf("%s: Len %d, %d accounts", where, st.Len(), n)
	}
}

// TestReleaseQueueClone: a clone shares the release queue in O(1), and
// neither sees what the other queues after.
func TestReleaseQueueClone(t *testing.T) {
	alice, bob, carol := testAddr("alice"), testAddr("bob"), testAddr("carol")
	st := NewState()
	st.SetAccount(alice, Account{Unbonding: 1, Release: 9})
	c := st.Clone()
	c.SetAccount(bob, Account{Unbonding: 2, Release: 9})
	st.SetAccount(carol, Account{Unbonding: 3, Release: 9})
	if got, want := st.Releasing(9), sorted(alice, carol); !slices.Equal(got, want) {
		t.Fatalf("state queue %v, want %v", got, want)
	}
	if got, want := c.Releasing(9), sorted(alice, bob); !slices.Equal(got, want) {
		t.Fatalf("clone queue %v, want %v", got, want)
	}
}

func sorted(as ...Address) []Address {
	slices.Sort(as)
	return as
}
