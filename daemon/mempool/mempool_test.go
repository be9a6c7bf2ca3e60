package mempool

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/testkit"
)

// The cast: alice and bob stake, carol is the only exchange authority,
// dave is unfunded, forger signs the blocks applyBlock makes.
var (
	alice  = testkit.Alice
	bob    = testkit.Bob
	carol  = testkit.Carol
	dave   = testkit.Dave
	forger = testkit.KeyN(5)
)

// testGenesis: alice 1000/100, bob 1000/50, carol 0/0; EXCHANGE closed to all but carol.
func testGenesis() *chain.Genesis {
	return testkit.Genesis([]chain.Allocation{testkit.Fund(alice, 1000, 100), testkit.Fund(bob, 1000, 50)},
		func(g *chain.Genesis) { g.Exchange = chain.ExchangePolicy{Authorities: []chain.Address{carol.Addr}} })
}

// payBob is k's transfer of amount to bob with a fee of 1.
func payBob(k testkit.Key, amount, nonce uint64) chain.Transaction {
	return testkit.Transfer(k, bob.Addr, amount, 1, nonce)
}

func mustAdd(t *testing.T, p *Pool, st StateView, txs ...chain.Transaction) {
	t.Helper()
	for _, tx := range txs {
		if _, err := p.Add(tx, st); err != nil {
			t.Fatalf("Add nonce %d from %s: %v", tx.Nonce, tx.From.Short(), err)
		}
	}
}

func wantCode(t *testing.T, err error, want *chain.RuleError) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s", want.Code)
	}
	if !errors.Is(err, want) || chain.CodeOf(err) != want.Code {
		t.Fatalf("err = %v (code %q), want code %s", err, chain.CodeOf(err), want.Code)
	}
}

func ids(txs []chain.Transaction) []string {
	out := make([]string, len(txs))
	for i := range txs {
		out[i] = fmt.Sprintf("%s/%d", txs[i].From.Short(), txs[i].Nonce)
	}
	return out
}

func name(k testkit.Key, nonce uint64) string { return fmt.Sprintf("%s/%d", k.Addr.Short(), nonce) }

func TestAddRejects(t *testing.T) {
	wrongChain := chain.Transaction{Type: chain.TxTransfer, ChainID: "other", To: bob.Addr, Amount: 1, Nonce: 1}
	wrongChain.Sign(alice.Priv)
	zero := testkit.Transfer(alice, bob.Addr, 0, 1, 1)
	stakeOther := testkit.Tx(alice, chain.TxStake, bob.Addr, 5, 1, 1)
	otherKey := payBob(alice, 10, 1)
	otherKey.PublicKey = payBob(bob, 10, 1).PublicKey

	tests := []struct {
		name    string
		cfg     Config
		account *chain.Account // alice's account, if not the genesis one
		pre     []chain.Transaction
		tx      chain.Transaction
		want    *chain.RuleError
		msg     string // substring of the message
	}{
		{name: "wrong chain", tx: wrongChain, want: chain.ErrWrongChain},
		{name: "zero amount", tx: zero, want: chain.ErrZeroAmount},
		{name: "stake to other", tx: stakeOther, want: chain.ErrStakeNotSelf},
		{name: "from mismatch", tx: otherKey, want: chain.ErrFromMismatch},
		{name: "bad signature", tx: testkit.Corrupt(payBob(alice, 10, 1)), want: chain.ErrBadSignature},
		{name: "duplicate", pre: []chain.Transaction{payBob(alice, 10, 1)}, tx: payBob(alice, 10, 1), want: ErrAlreadyKnown},
		{name: "replay", account: &chain.Account{Balance: 1000, Nonce: 5}, tx: payBob(alice, 10, 5), want: chain.ErrBadNonce, msg: "already used"},
		{name: "replay older", account: &chain.Account{Balance: 1000, Nonce: 5}, tx: payBob(alice, 10, 2), want: chain.ErrBadNonce, msg: "already used"},
		{name: "nonce in use", pre: []chain.Transaction{payBob(alice, 10, 1)}, tx: payBob(alice, 11, 1), want: ErrNonceInUse},
		{name: "nonce gap", tx: payBob(alice, 10, 66), want: ErrNonceGap}, // 65 missing, 64 allowed
		{name: "nonce gap from account nonce", account: &chain.Account{Balance: 1000, Nonce: 10}, tx: payBob(alice, 10, 76), want: ErrNonceGap},
		{name: "nonce gap configured", cfg: Config{MaxNonceGap: 2}, tx: payBob(alice, 10, 4), want: ErrNonceGap},
		{name: "exchange not authority", tx: testkit.Exchange(alice, bob.Addr, 10, 0, 1), want: chain.ErrNotExchange},
		{name: "overspend", tx: payBob(alice, 1000, 1), want: chain.ErrInsufficientFunds, msg: "is 1000, needs 1001"},
		{name: "overspend with pending", pre: []chain.Transaction{payBob(alice, 600, 1)}, tx: payBob(alice, 399, 2), want: chain.ErrInsufficientFunds, msg: "is 1000, pending 601, needs 400"},
		{name: "stake overspend", tx: testkit.Stake(alice, 1000, 5, 1), want: chain.ErrInsufficientFunds},
		{name: "exchange fee unpaid", tx: testkit.Exchange(carol, bob.Addr, 10, 1, 1), want: chain.ErrInsufficientFunds},
		{name: "unstake fee unpaid", account: &chain.Account{Stake: 10}, tx: testkit.Unstake(alice, 5, 1, 1), want: chain.ErrInsufficientFunds},
		{name: "unstake beyond stake", tx: testkit.Unstake(alice, 101, 1, 1), want: chain.ErrInsufficientStake},
		{name: "unstake beyond pending", pre: []chain.Transaction{testkit.Unstake(alice, 60, 1, 1)}, tx: testkit.Unstake(alice, 41, 1, 2), want: chain.ErrInsufficientStake, msg: "is 100, pending unstakes 60, UNSTAKE needs 41"},
		{name: "pool full", cfg: Config{Limit: 1}, pre: []chain.Transaction{payBob(bob, 10, 1)}, tx: payBob(alice, 10, 1), want: ErrPoolFull},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := testGenesis()
			st := g.State()
			if tc.account != nil {
				st.SetAccount(alice.Addr, *tc.account)
			}
			p := New(g, tc.cfg)
			mustAdd(t, p, st, tc.pre...)
			id, err := p.Add(tc.tx, st)
			wantCode(t, err, tc.want)
			if id != tc.tx.ID() {
				t.Errorf("Add returned id %s, want %s", id, tc.tx.ID())
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to contain %q", err, tc.msg)
			}
			if p.Len() != len(tc.pre) {
				t.Errorf("Len = %d after a refusal, want %d", p.Len(), len(tc.pre))
			}
		})
	}
}

func TestAcceptsEdges(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	// Exactly the balance, an authority's EXCHANGE, a nonce exactly at the gap
	// bound, an UNSTAKE of the whole stake.
	mustAdd(t, p, st,
		payBob(alice, 499, 1),
		payBob(alice, 499, 64),
		testkit.Exchange(carol, carol.Addr, 500, 0, 1),
		testkit.Unstake(bob, 50, 0, 1),
	)
	if p.Len() != 4 {
		t.Fatalf("Len = %d, want 4", p.Len())
	}
}

func TestSequenceAndOverdraw(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	seq := []chain.Transaction{payBob(alice, 100, 1), payBob(alice, 100, 2), payBob(alice, 100, 3)}
	mustAdd(t, p, st, seq...)
	if got := p.PendingNonce(alice.Addr, st); got != 3 {
		t.Errorf("PendingNonce = %d, want 3", got)
	}
	if got := ids(p.Pending(10, st)); strings.Join(got, " ") != strings.Join(ids(seq), " ") {
		t.Errorf("Pending = %v, want %v", got, ids(seq))
	}
	// 3×101 pending, 697 left: 600+1 fits, then 96+1 does not.
	mustAdd(t, p, st, payBob(alice, 600, 4))
	_, err := p.Add(payBob(alice, 96, 5), st)
	wantCode(t, err, chain.ErrInsufficientFunds)
	if want := "is 1000, pending 904, needs 97"; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want %q", err, want)
	}
	// Incoming credits are not counted: bob's pending transfers to alice
	// do not let her spend more.
	mustAdd(t, p, st, testkit.Transfer(bob, alice.Addr, 500, 0, 1))
	_, err = p.Add(payBob(alice, 96, 5), st)
	wantCode(t, err, chain.ErrInsufficientFunds)
}

func TestPendingOrderAndContiguity(t *testing.T) {
	g := testGenesis()
	g.Allocations = append(g.Allocations, chain.Allocation{Address: dave.Addr, Balance: 1000})
	st := g.State()
	p := New(g, Config{})
	mustAdd(t, p, st,
		payBob(alice, 1, 1),
		payBob(bob, 1, 1),
		payBob(alice, 1, 2),
		testkit.Exchange(carol, carol.Addr, 1, 0, 2), // carol has no nonce 1: not executable
		payBob(dave, 1, 2),                           // dave's 2 arrives before his 1
		payBob(bob, 1, 2),
		payBob(alice, 1, 4), // gap after alice 2
		payBob(dave, 1, 1),
	)
	want := []string{name(alice, 1), name(bob, 1), name(alice, 2), name(bob, 2), name(dave, 1), name(dave, 2)}
	if got := ids(p.Pending(100, st)); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Pending = %v\nwant      %v", got, want)
	}
	if got := ids(p.Pending(3, st)); strings.Join(got, " ") != strings.Join(want[:3], " ") {
		t.Errorf("Pending(3) = %v, want %v", got, want[:3])
	}
	if got := p.Pending(0, st); len(got) != 0 {
		t.Errorf("Pending(0) = %v, want none", ids(got))
	}
	if got := p.PendingNonce(alice.Addr, st); got != 2 {
		t.Errorf("PendingNonce(alice) = %d, want 2 (gap at 3)", got)
	}
	if got := p.PendingNonce(carol.Addr, st); got != 0 {
		t.Errorf("PendingNonce(carol) = %d, want 0", got)
	}
	// Filling alice's gap makes 3 and 4 executable, after her 2.
	mustAdd(t, p, st, payBob(alice, 1, 3))
	if got := p.PendingNonce(alice.Addr, st); got != 4 {
		t.Errorf("PendingNonce(alice) = %d, want 4", got)
	}
	got := ids(p.Pending(100, st))
	want = []string{name(alice, 1), name(bob, 1), name(alice, 2), name(bob, 2), name(dave, 1), name(dave, 2), name(alice, 3), name(alice, 4)}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Pending = %v\nwant      %v", got, want)
	}
	// Pending follows st: when alice's committed balance shrinks (no Update
	// yet), her run stops where the balance runs out.
	acc := st.Account(alice.Addr)
	acc.Balance = 5 // pays two transfers of 1+1
	st.SetAccount(alice.Addr, acc)
	n := 0
	for _, tx := range p.Pending(100, st) {
		if tx.From == alice.Addr {
			n++
		}
	}
	if n != 2 {
		t.Errorf("Pending has %d of alice's, want 2", n)
	}
}

func applyBlock(t *testing.T, g *chain.Genesis, st *chain.State, height uint64, txs ...chain.Transaction) *chain.Undo {
	t.Helper()
	b := &chain.Block{Header: chain.Header{Height: height, Forger: forger.Addr}, Transactions: txs}
	u, err := st.Apply(b, g)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return u
}

func TestUpdateAfterBlock(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	a1, a2, a3 := payBob(alice, 100, 1), payBob(alice, 300, 2), payBob(alice, 100, 3)
	b1, b2 := payBob(bob, 10, 1), testkit.Unstake(bob, 50, 0, 2)
	mustAdd(t, p, st, a1, a2, a3, b1, b2)

	// The block commits a1 and b1 from the pool, plus a spend of alice's and
	// an unstake of bob's the pool never saw (another node's), at the next nonces.
	a2other := payBob(alice, 550, 2)
	b2other := testkit.Unstake(bob, 20, 0, 2)
	applyBlock(t, g, st, 1, a1, b1, a2other, b2other)
	// alice: 1000-101-551 = 348, nonce 2. a2 is committed (nonce 2, though
	// another tx), a3 (101) still fits. bob: stake 30, nonce 2: b2 committed.
	ev := p.Update(st)
	if len(ev) != 0 {
		t.Fatalf("Update evicted %v, want nothing", ev)
	}
	if p.Len() != 1 {
		t.Fatalf("Len = %d, want 1 (alice 3)", p.Len())
	}
	for _, tx := range []chain.Transaction{a1, a2, b1, b2} {
		if _, ok := p.Get(tx.ID()); ok {
			t.Errorf("committed %s still pooled", name(testkit.Key{Addr: tx.From}, tx.Nonce))
		}
	}

	// Block 2 commits a3 and another node's spend at alice's nonce 4,
	// leaving her 348-101-201 = 46.
	a4, a5 := payBob(alice, 50, 4), payBob(alice, 10, 5)
	mustAdd(t, p, st, a4, a5)
	applyBlock(t, g, st, 2, a3, payBob(alice, 200, 4))
	// alice: balance 46, nonce 4. a4 is committed; a5 (11) fits.
	if ev := p.Update(st); len(ev) != 0 {
		t.Fatalf("evicted %v", ev)
	}
	a6 := payBob(alice, 30, 6)
	mustAdd(t, p, st, a6) // 11 + 31 <= 46
	// Block 3: another node's spend at nonce 5 leaves 46-21 = 25: a5 is
	// committed, a6 (31) can no longer pay.
	applyBlock(t, g, st, 3, payBob(alice, 20, 5))
	ev = p.Update(st)
	if len(ev) != 1 || ev[0].Tx.ID() != a6.ID() {
		t.Fatalf("Update evicted %v, want alice 6", ev)
	}
	wantCode(t, ev[0].Err, chain.ErrInsufficientFunds)
	if p.Len() != 0 {
		t.Errorf("Len = %d, want 0", p.Len())
	}
}

func TestAddBeforeUpdate(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	a1 := payBob(alice, 600, 1)
	mustAdd(t, p, st, a1)
	applyBlock(t, g, st, 1, a1) // alice 399, nonce 1; the pool has not seen Update yet
	// a1 is committed, so its debit no longer counts against alice 2.
	mustAdd(t, p, st, payBob(alice, 300, 2))
	_, err := p.Add(payBob(alice, 98, 3), st)
	wantCode(t, err, chain.ErrInsufficientFunds)
	if got := ids(p.Pending(10, st)); len(got) != 1 || got[0] != name(alice, 2) {
		t.Errorf("Pending = %v, want alice 2", got)
	}
	if ev := p.Update(st); len(ev) != 0 || p.Len() != 1 {
		t.Errorf("Update evicted %v, Len %d", ev, p.Len())
	}
}

func TestUpdateEvictsByNonceOrder(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	a1, a2, a3 := payBob(alice, 300, 1), payBob(alice, 300, 2), payBob(alice, 100, 3)
	mustAdd(t, p, st, a3, a1, a2)
	// Balance drops to 500 (a block spent it elsewhere, nonce unchanged):
	// a1 fits (301), a2 does not (301 more), a3 does (101).
	st.SetAccount(alice.Addr, chain.Account{Balance: 500, Stake: 100})
	ev := p.Update(st)
	if len(ev) != 1 || ev[0].Tx.ID() != a2.ID() {
		t.Fatalf("evicted %v, want a2", ev)
	}
	wantCode(t, ev[0].Err, chain.ErrInsufficientFunds)
	// Stake shrinks below a pending unstake.
	u := testkit.Unstake(bob, 40, 0, 1)
	mustAdd(t, p, st, u)
	st.SetAccount(bob.Addr, chain.Account{Balance: 1000, Stake: 39})
	ev = p.Update(st)
	if len(ev) != 1 || ev[0].Tx.ID() != u.ID() {
		t.Fatalf("evicted %v, want bob's unstake", ev)
	}
	wantCode(t, ev[0].Err, chain.ErrInsufficientStake)
}

func TestUpdateReorgGap(t *testing.T) {
	g := testGenesis()
	st := g.State()
	st.SetAccount(alice.Addr, chain.Account{Balance: 1000, Nonce: 10})
	p := New(g, Config{})
	a11, a74 := payBob(alice, 1, 11), payBob(alice, 1, 74)
	mustAdd(t, p, st, a11, a74)
	// A reorg takes alice back to nonce 5: 74 is now 69 beyond.
	st.SetAccount(alice.Addr, chain.Account{Balance: 1000, Nonce: 5})
	ev := p.Update(st)
	if len(ev) != 1 || ev[0].Tx.ID() != a74.ID() {
		t.Fatalf("evicted %v, want alice 74", ev)
	}
	wantCode(t, ev[0].Err, ErrNonceGap)
	if _, ok := p.Get(a11.ID()); !ok {
		t.Error("alice 11 evicted")
	}
}

func TestReinsert(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	a1, a2, b1 := payBob(alice, 100, 1), payBob(alice, 100, 2), payBob(bob, 100, 1)
	mustAdd(t, p, st, a1, a2, b1)
	undo := applyBlock(t, g, st, 1, a1, a2, b1)
	p.Update(st)
	if p.Len() != 0 {
		t.Fatalf("Len = %d after commit", p.Len())
	}
	// A reorg reverts the block; the new branch committed b1 only.
	st.Revert(undo)
	applyBlock(t, g, st, 1, b1)
	p.Update(st)
	bad := testkit.Corrupt(payBob(alice, 5, 3))
	p.Reinsert([]chain.Transaction{a1, a2, b1, bad}, st)
	if got, want := ids(p.Pending(10, st)), []string{name(alice, 1), name(alice, 2)}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Pending after Reinsert = %v, want %v", got, want)
	}
	if p.Len() != 2 {
		t.Errorf("Len = %d, want 2", p.Len())
	}
}

func TestAddBatch(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	wrong := payBob(bob, 5, 2)
	wrong.ChainID = "other"
	wrong.Sign(bob.Priv)
	batch := []chain.Transaction{
		payBob(alice, 10, 1),
		testkit.Corrupt(payBob(bob, 10, 1)),
		payBob(alice, 10, 2),
		payBob(alice, 10, 1),
		payBob(alice, 10, 99),
		wrong,
		payBob(bob, 10, 1),
		payBob(alice, 990, 3),
	}
	want := []*chain.RuleError{nil, chain.ErrBadSignature, nil, ErrAlreadyKnown, ErrNonceGap, chain.ErrWrongChain, nil, chain.ErrInsufficientFunds}
	errs := p.AddBatch(batch, st)
	if len(errs) != len(batch) {
		t.Fatalf("%d results for %d txs", len(errs), len(batch))
	}
	for i, err := range errs {
		if want[i] == nil {
			if err != nil {
				t.Errorf("item %d: %v, want admitted", i, err)
			}
			continue
		}
		if !errors.Is(err, want[i]) || chain.CodeOf(err) != want[i].Code {
			t.Errorf("item %d: %v, want %s", i, err, want[i].Code)
		}
	}
	if p.Len() != 3 {
		t.Errorf("Len = %d, want 3", p.Len())
	}
	if errs := p.AddBatch(nil, st); len(errs) != 0 {
		t.Errorf("empty batch: %v", errs)
	}
}

func TestGetAllOldestLimit(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	if p.Limit() != DefaultLimit {
		t.Errorf("Limit = %d, want %d", p.Limit(), DefaultLimit)
	}
	clock := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return clock }
	if _, ok := p.Oldest(); ok {
		t.Error("Oldest on an empty pool")
	}
	b1 := payBob(bob, 10, 1)
	a1 := payBob(alice, 10, 1)
	mustAdd(t, p, st, b1)
	t0 := clock
	clock = clock.Add(time.Second)
	mustAdd(t, p, st, a1)
	if at, ok := p.Oldest(); !ok || !at.Equal(t0) {
		t.Errorf("Oldest = %v %v, want %v", at, ok, t0)
	}
	if got := ids(p.All()); strings.Join(got, " ") != name(bob, 1)+" "+name(alice, 1) {
		t.Errorf("All = %v", got)
	}
	if tx, ok := p.Get(a1.ID()); !ok || tx != a1 {
		t.Errorf("Get = %v %v", tx, ok)
	}
	if _, ok := p.Get(chain.Hash{1}); ok {
		t.Error("Get of an unknown id")
	}
	applyBlock(t, g, st, 1, b1)
	p.Update(st)
	if at, ok := p.Oldest(); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Errorf("Oldest after commit = %v %v", at, ok)
	}
	p.SetLimit(1)
	if p.Limit() != 1 {
		t.Errorf("Limit = %d, want 1", p.Limit())
	}
	_, err := p.Add(payBob(alice, 10, 2), st)
	wantCode(t, err, ErrPoolFull)
	p.SetLimit(0)
	if p.Limit() != DefaultLimit {
		t.Errorf("SetLimit(0): Limit = %d", p.Limit())
	}
}

func TestConcurrent(t *testing.T) {
	g := testGenesis()
	const senders, per = 8, 25
	keys := make([]testkit.Key, senders)
	g.Allocations = nil
	for i := range keys {
		keys[i] = testkit.KeyN(100 + i)
		g.Allocations = append(g.Allocations, chain.Allocation{Address: keys[i].Addr, Balance: 1_000_000, Stake: 1})
	}
	st := g.State()
	p := New(g, Config{})
	txs := make([][]chain.Transaction, senders)
	for i, k := range keys {
		for n := uint64(1); n <= per; n++ {
			txs[i] = append(txs[i], testkit.Transfer(k, keys[0].Addr, 10, 1, n))
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	// Every goroutine submits every sender's txs, some one by one, some in
	// batches: each tx is admitted exactly once.
	for w := range 4 {
		wg.Go(func() {
			for i := range senders {
				if (i+w)%2 == 0 {
					for _, err := range p.AddBatch(txs[i], st) {
						if err == nil {
							mu.Lock()
							admitted++
							mu.Unlock()
						} else if !errors.Is(err, ErrAlreadyKnown) {
							t.Errorf("AddBatch: %v", err)
						}
					}
					continue
				}
				for _, tx := range txs[i] {
					if _, err := p.Add(tx, st); err == nil {
						mu.Lock()
						admitted++
						mu.Unlock()
					} else if !errors.Is(err, ErrAlreadyKnown) {
						t.Errorf("Add: %v", err)
					}
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 50 {
				p.Pending(1000, st)
				p.Len()
				p.All()
				p.Oldest()
				p.PendingNonce(keys[1].Addr, st)
				p.Update(st)
			}
		})
	}
	wg.Wait()
	if admitted != senders*per || p.Len() != senders*per {
		t.Fatalf("admitted %d, Len %d, want %d", admitted, p.Len(), senders*per)
	}
	pending := p.Pending(10000, st)
	if len(pending) != senders*per {
		t.Fatalf("Pending has %d, want %d", len(pending), senders*per)
	}
	next := map[chain.Address]uint64{}
	for _, tx := range pending {
		next[tx.From]++
		if tx.Nonce != next[tx.From] {
			t.Fatalf("%s: nonce %d out of order", tx.From.Short(), tx.Nonce)
		}
	}
}

func TestRemove(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	tx1, tx2 := payBob(alice, 10, 1), payBob(alice, 10, 2)
	mustAdd(t, p, st, tx1, tx2)
	p.Remove(tx1.ID(), chain.Hash{1})
	if _, ok := p.Get(tx1.ID()); ok || p.Len() != 1 {
		t.Fatalf("tx1 still pooled (len %d)", p.Len())
	}
	if got := p.Pending(10, st); len(got) != 0 {
		t.Fatalf("tx2 is behind a gap now, yet Pending returned %d", len(got))
	}
	mustAdd(t, p, st, tx1)
	if got := p.Pending(10, st); len(got) != 2 {
		t.Fatalf("after refilling the gap Pending returned %d, want 2", len(got))
	}
}

// TestLongRunIsNoGap: the gap bound counts missing nonces, so a sender may
// pool a long run of consecutive nonces, and a gap is measured from its end.
func TestLongRunIsNoGap(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{MaxNonceGap: 4})
	for n := uint64(1); n <= 100; n++ {
		mustAdd(t, p, st, payBob(alice, 1, n))
	}
	mustAdd(t, p, st, payBob(alice, 1, 105))   // 101..104 missing: 4, allowed
	_, err := p.Add(payBob(alice, 1, 111), st) // 10 beyond the run that ends at 100
	wantCode(t, err, ErrNonceGap)
}

// TestOverflowIsRefusedAtAdmission: what would overflow the recipient's
// balance would be refused by the block, so the pool refuses it first.
func TestOverflowIsRefusedAtAdmission(t *testing.T) {
	g := testGenesis()
	st := g.State()
	st.SetAccount(bob.Addr, chain.Account{Balance: math.MaxUint64 - 5})
	p := New(g, Config{})
	_, err := p.Add(testkit.Transfer(alice, bob.Addr, 6, 0, 1), st)
	wantCode(t, err, chain.ErrAmountOverflow)
	mustAdd(t, p, st, testkit.Transfer(alice, bob.Addr, 5, 0, 1))
}
