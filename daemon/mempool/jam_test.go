package mempool

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/testkit"
)

// fundedGenesis funds n fresh keys (from index base) with balance each.
func fundedGenesis(n, base int, balance uint64) (*chain.Genesis, []testkit.Key) {
	g := testGenesis()
	keys := make([]testkit.Key, n)
	for i := range keys {
		keys[i] = testkit.KeyN(base + i)
		g.Allocations = append(g.Allocations, testkit.Fund(keys[i], balance, 0))
	}
	return g, keys
}

func idOf(tx chain.Transaction) chain.Hash { return tx.ID() }

func feeTx(k testkit.Key, fee, nonce uint64) chain.Transaction {
	return testkit.Transfer(k, bob.Addr, 1, fee, nonce)
}

func wantStats(t *testing.T, p *Pool, pending, queued int) {
	t.Helper()
	if s := p.Stats(); s.Pending != pending || s.Queued != queued {
		t.Fatalf("Stats = %+v, want %d pending, %d queued", s, pending, queued)
	}
}

// checkInvariants walks the pool's structures and fails on any mismatch.
func checkInvariants(t *testing.T, p *Pool) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	n, queued := 0, 0
	var bytes int64
	for addr, s := range p.senders {
		if len(s.txs) == 0 {
			t.Fatalf("empty sender %s kept", addr.Short())
		}
		var debit uint64
		others := 0
		for i, e := range s.txs {
			n++
			bytes += int64(e.size)
			debit += e.debit
			if p.byID[e.id] != e || e.gone || e.owner != s {
				t.Fatalf("%s/%d: indexes disagree", addr.Short(), e.tx.Nonce)
			}
			if e.plain != plainTransfer(&e.tx) {
				t.Fatalf("%s/%d: plain=%v for a %s to %s", addr.Short(), e.tx.Nonce, e.plain, e.tx.Type, e.tx.To.Short())
			}
			if !e.plain {
				others++
			}
			wantPend := i < s.npend
			if wantPend != !e.queued {
				t.Fatalf("%s/%d: queued=%v, npend %d", addr.Short(), e.tx.Nonce, e.queued, s.npend)
			}
			if wantPend && e.tx.Nonce != s.checked.Nonce+1+uint64(i) {
				t.Fatalf("%s/%d pending out of its run", addr.Short(), e.tx.Nonce)
			}
			if e.queued {
				queued++
				if p.queue[e.qidx] != e {
					t.Fatalf("%s/%d: queue index", addr.Short(), e.tx.Nonce)
				}
			}
		}
		if i := s.npend; i < len(s.txs) && s.txs[i].tx.Nonce == s.checked.Nonce+1+uint64(i) {
			t.Fatalf("%s: nonce %d contiguous but queued", addr.Short(), s.txs[i].tx.Nonce)
		}
		if debit != s.debit {
			t.Fatalf("%s: debit %d, sum %d", addr.Short(), s.debit, debit)
		}
		if others != s.others {
			t.Fatalf("%s: others %d, counted %d", addr.Short(), s.others, others)
		}
		for _, from := range []uint64{s.checked.Nonce, s.checked.Nonce + 1, 0} {
			if got, want := s.contiguousTop(from), walkRun(s, from); got != want {
				t.Fatalf("%s: contiguousTop(%d) = %d, a walk says %d", addr.Short(), from, got, want)
			}
		}
		if (s.npend > 0) != (s.hidx >= 0) || s.hidx >= 0 && p.victims.h[s.hidx] != s {
			t.Fatalf("%s: victim heap index", addr.Short())
		}
	}
	if n != len(p.byID) || queued != p.nqueued || queued != len(p.queue) || bytes != p.bytes {
		t.Fatalf("counts: %d in senders, %d by id; %d queued, nqueued %d, heap %d; bytes %d vs %d",
			n, len(p.byID), queued, p.nqueued, len(p.queue), bytes, p.bytes)
	}
}

func TestPendingAndQueuedKeptApart(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	a1, a3, a4 := feeTx(alice, 1, 1), feeTx(alice, 1, 3), feeTx(alice, 1, 4)
	errs, ready := p.Admit([]chain.Transaction{a1, a3, a4}, st)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := ids(ready); strings.Join(got, " ") != name(alice, 1) {
		t.Fatalf("ready = %v, want only alice/1: gapped transactions are not gossiped", got)
	}
	wantStats(t, p, 1, 2)
	if _, queued, ok := p.Status(a3.ID()); !ok || !queued {
		t.Errorf("Status(a3) queued=%v ok=%v", queued, ok)
	}
	if got := ids(p.Executable(10)); strings.Join(got, " ") != name(alice, 1) {
		t.Errorf("Executable = %v", got)
	}
	// Filling the gap promotes 3 and 4: they are ready now, in nonce order.
	a2 := feeTx(alice, 1, 2)
	_, ready = p.Admit([]chain.Transaction{a2}, st)
	want := []string{name(alice, 2), name(alice, 3), name(alice, 4)}
	if got := ids(ready); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ready = %v, want %v", got, want)
	}
	wantStats(t, p, 4, 0)
	checkInvariants(t, p)
	// Removing 2 (a block refused it) queues 3 and 4 again.
	p.Remove(a2.ID())
	wantStats(t, p, 1, 2)
	checkInvariants(t, p)
	// A block commits alice 1 and another alice 2: 3 and 4 run again.
	applyBlock(t, g, st, 1, a1, feeTx(alice, 2, 2))
	if ev := p.Update(st); len(ev) != 0 {
		t.Fatalf("evicted %v", ev)
	}
	wantStats(t, p, 2, 0)
	checkInvariants(t, p)
}

func TestQueueCaps(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{AccountQueue: 2, GlobalQueue: 3})
	mustAdd(t, p, st, feeTx(alice, 1, 3), feeTx(alice, 1, 4))
	_, err := p.Add(feeTx(alice, 5, 5), st)
	wantCode(t, err, ErrQueueFull) // per sender, whatever the fee
	mustAdd(t, p, st, feeTx(bob, 1, 3))
	// The global queue is full: a gapped tx must pay more than the cheapest.
	_, err = p.Add(feeTx(carol, 0, 3), st)
	wantCode(t, err, chain.ErrInsufficientFunds) // carol has nothing (screened first)
	_, err = p.Add(feeTx(bob, 1, 4), st)
	wantCode(t, err, ErrQueueFull)
	mustAdd(t, p, st, feeTx(bob, 2, 5))
	wantStats(t, p, 0, 3)
	// The newest of the cheapest went: bob/3 (fee 1, the latest of fee 1).
	ev := p.Update(st)
	if len(ev) != 1 || ev[0].Tx.ID() != idOf(feeTx(bob, 1, 3)) {
		t.Fatalf("evictions %v, want bob/3", ev)
	}
	wantCode(t, ev[0].Err, ErrEvicted)
	checkInvariants(t, p)
}

func TestGappedNeverEvictsPending(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{Limit: 2})
	mustAdd(t, p, st, feeTx(alice, 0, 1), feeTx(alice, 0, 2))
	_, err := p.Add(feeTx(bob, 100, 5), st)
	wantCode(t, err, ErrPoolFull)
	wantStats(t, p, 2, 0)
	checkInvariants(t, p)
}

func TestPendingEvictsWhenFull(t *testing.T) {
	g, keys := fundedGenesis(4, 200, 1_000_000)
	st := g.State()
	p := New(g, Config{Limit: 10, AccountSlots: 3})
	hog, cheap, honest, other := keys[0], keys[1], keys[2], keys[3]
	// hog: 6 pending (3 over its share), cheap: 2 pending at fee 0,
	// alice: 2 queued.
	for n := uint64(1); n <= 6; n++ {
		mustAdd(t, p, st, feeTx(hog, 5, n))
	}
	mustAdd(t, p, st, feeTx(cheap, 0, 1), feeTx(cheap, 0, 2), feeTx(alice, 9, 5), feeTx(alice, 9, 6))
	wantStats(t, p, 8, 2)

	// Executable newcomers take the queued ones first, whatever their fee.
	mustAdd(t, p, st, feeTx(honest, 0, 1), feeTx(honest, 0, 2))
	wantStats(t, p, 10, 0)
	// Then the tails of senders over their share, whatever the fee.
	mustAdd(t, p, st, feeTx(honest, 0, 3), feeTx(other, 0, 1), feeTx(other, 0, 2))
	if _, ok := p.Get(idOf(feeTx(hog, 5, 6))); ok {
		t.Fatal("hog/6 kept")
	}
	if _, ok := p.Get(idOf(feeTx(hog, 5, 3))); !ok {
		t.Fatal("hog/3 (within its share) evicted")
	}
	// A sender beyond its share cannot evict anybody.
	_, err := p.Add(feeTx(honest, 50, 4), st)
	wantCode(t, err, ErrPoolFull)
	// Within the share, only a strictly higher fee evicts: the cheapest
	// tail goes, the latest arrival among equals (honest/3, not cheap/2).
	_, err = p.Add(feeTx(other, 0, 3), st)
	wantCode(t, err, ErrPoolFull)
	before := p.Stats()
	mustAdd(t, p, st, feeTx(other, 1, 3))
	if _, ok := p.Get(idOf(feeTx(honest, 0, 3))); ok {
		t.Fatal("the cheapest, latest tail (honest/3) kept")
	}
	if after := p.Stats(); after != before && after.Pending != before.Pending {
		t.Fatalf("stats %+v → %+v", before, after)
	}
	ev := p.Update(st)
	var got []string
	for _, e := range ev {
		got = append(got, name(testkit.Key{Addr: e.Tx.From}, e.Tx.Nonce))
		wantCode(t, e.Err, ErrEvicted)
	}
	want := []string{name(hog, 4), name(hog, 5), name(hog, 6), name(honest, 3), name(alice, 5), name(alice, 6)}
	slices.Sort(got)
	slices.Sort(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("evicted %v, want %v", got, want)
	}
	checkInvariants(t, p)
}

func TestByteLimitAndRollback(t *testing.T) {
	g := testGenesis()
	st := g.State()
	a1 := feeTx(alice, 1, 1)
	size := int64(len(chain.EncodeTx(&a1)))
	p := New(g, Config{MaxBytes: 2*size + size/2})
	mustAdd(t, p, st, a1, feeTx(alice, 1, 3))
	// bob/1 (fee 1) fits only by evicting the queued alice/3.
	mustAdd(t, p, st, feeTx(bob, 1, 1))
	wantStats(t, p, 2, 0)
	// Another needs a victim, and alice/1 pays as much and is within her
	// share: nothing may go, nothing moves.
	big := testkit.Transfer(bob, carol.Addr, 1, 1, 2)
	_, err := p.Add(big, st)
	wantCode(t, err, ErrPoolFull)
	wantStats(t, p, 2, 0)
	checkInvariants(t, p)
	if p.Stats().Bytes > 2*size+size/2 {
		t.Fatalf("bytes %d over the limit", p.Stats().Bytes)
	}
}

// TestEvictionRollback: when room can only be partly made, every victim
// taken so far is put back exactly.
func TestEvictionRollback(t *testing.T) {
	g, keys := fundedGenesis(1, 300, 1000)
	st := g.State()
	a1 := feeTx(alice, 5, 1)
	size := int64(len(chain.EncodeTx(&a1)))
	p := New(g, Config{})
	mustAdd(t, p, st, a1, feeTx(alice, 1, 3), feeTx(bob, 5, 1))
	before := ids(p.All())
	// Lower the byte bound under the pool's content: a newcomer now needs
	// two victims; the queued alice/3 may go, but no pending one (fee 5 ≥ 2).
	p.cfg.MaxBytes = 2*size + size/2
	_, err := p.Add(feeTx(keys[0], 2, 1), st)
	wantCode(t, err, ErrPoolFull)
	if after := ids(p.All()); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("All = %v, want %v", after, before)
	}
	wantStats(t, p, 2, 1)
	checkInvariants(t, p)
	if ev := p.Update(st); len(ev) != 0 {
		t.Fatalf("rolled-back victims reported: %v", ev)
	}
	// With a higher fee both go: the queued one and the cheapest tail.
	mustAdd(t, p, st, feeTx(keys[0], 6, 1))
	wantStats(t, p, 2, 0)
	checkInvariants(t, p)
}

func TestMinFee(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{MinFee: 2})
	_, err := p.Add(feeTx(alice, 1, 1), st)
	wantCode(t, err, ErrFeeTooLow)
	mustAdd(t, p, st, feeTx(alice, 2, 1))
	if p.MinFee() != 2 {
		t.Errorf("MinFee = %d", p.MinFee())
	}
}

// TestScreenBeforeSignature: what the committed state rules out is refused
// without verifying the signature, so floods from unfunded keys are cheap.
func TestScreenBeforeSignature(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{})
	for _, tc := range []struct {
		tx   chain.Transaction
		want *chain.RuleError
	}{
		{testkit.Corrupt(feeTx(dave, 1, 1)), chain.ErrInsufficientFunds},
		{testkit.Corrupt(testkit.Unstake(alice, 101, 0, 1)), chain.ErrInsufficientStake},
		{testkit.Corrupt(testkit.Exchange(alice, alice.Addr, 1, 0, 1)), chain.ErrNotExchange},
		{testkit.Corrupt(feeTx(alice, 1, 1)), chain.ErrBadSignature},
	} {
		_, err := p.Add(tc.tx, st)
		wantCode(t, err, tc.want)
	}
	st.SetAccount(alice.Addr, chain.Account{Balance: 10, Nonce: 4})
	_, err := p.Add(testkit.Corrupt(feeTx(alice, 1, 4)), st)
	wantCode(t, err, chain.ErrBadNonce)
}

func TestQueuedExpiry(t *testing.T) {
	g := testGenesis()
	st := g.State()
	p := New(g, Config{Lifetime: time.Minute})
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return clock }
	a3, b1, b3 := feeTx(alice, 1, 3), feeTx(bob, 1, 1), feeTx(bob, 1, 3)
	mustAdd(t, p, st, a3, b1, b3)
	clock = clock.Add(50 * time.Second)
	mustAdd(t, p, st, feeTx(bob, 1, 4)) // bob is active
	clock = clock.Add(20 * time.Second)
	ev := p.Update(st)
	if len(ev) != 1 || ev[0].Tx.ID() != a3.ID() {
		t.Fatalf("evicted %v, want alice/3 only", ev)
	}
	wantCode(t, ev[0].Err, ErrExpired)
	clock = clock.Add(time.Minute)
	ev = p.Update(st)
	if len(ev) != 2 {
		t.Fatalf("evicted %v, want bob/3 and bob/4", ev)
	}
	// The pending bob/1 never expires.
	wantStats(t, p, 1, 0)
	checkInvariants(t, p)
}

func TestPage(t *testing.T) {
	g, keys := fundedGenesis(10, 400, 1000)
	st := g.State()
	p := New(g, Config{})
	var all []string
	for _, k := range keys {
		mustAdd(t, p, st, feeTx(k, 1, 1), feeTx(k, 1, 3))
		all = append(all, name(k, 1), name(k, 3))
	}
	one := feeTx(keys[0], 1, 1)
	size := len(chain.EncodeTx(&one))
	var got []string
	cursor := uint64(0)
	pages := 0
	for {
		pg := p.Page(cursor, 7, 3*size) // the byte bound wins: 3 a page
		pages++
		if len(pg.Txs) > 3 {
			t.Fatalf("page of %d, over the byte bound", len(pg.Txs))
		}
		for _, pt := range pg.Txs {
			got = append(got, name(testkit.Key{Addr: pt.Tx.From}, pt.Tx.Nonce))
			if pt.Queued != (pt.Tx.Nonce == 3) {
				t.Fatalf("%v queued=%v", pt.Tx.Nonce, pt.Queued)
			}
		}
		if pg.Next == 0 {
			break
		}
		cursor = pg.Next
		if pages == 2 {
			// Removing what the cursor points at does not break paging.
			p.Remove(idOf(feeTx(keys[5], 1, 1)))
			all = slices.DeleteFunc(all, func(s string) bool { return s == name(keys[5], 1) })
		}
	}
	if strings.Join(got, " ") != strings.Join(all, " ") {
		t.Fatalf("pages gave %v\nwant %v", got, all)
	}
	if pg := p.Page(0, 0, 0); len(pg.Txs) != 0 {
		t.Fatal("limit 0 returned transactions")
	}
	if pg := p.Page(0, 100, 0); len(pg.Txs) != len(all) || pg.Next != 0 {
		t.Fatalf("one page of all: %d, next %d", len(pg.Txs), pg.Next)
	}
}

var _ = errors.Is

// TestJamA4 replays the nonce-gap jam (A4) at a smaller scale, same shape:
// many minted keys each submit nonces 3..66 (1 and 2 skipped), as many as
// the pool's limit. Then executable floods: keys far beyond their share,
// and many keys within it. Through all of it an honest transaction gets
// in, is the only thing offered for gossip, and is forged.
func TestJamA4(t *testing.T) {
	const jammers = 100 // 1,563 in the attack on a 100,000 pool
	const limit = jammers * 64
	g, keys := fundedGenesis(jammers+40, 1000, 1_000_000)
	jam, floods, honest := keys[:jammers], keys[jammers:jammers+36], keys[jammers+36:]
	st := g.State()
	p := New(g, Config{Limit: limit})
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return clock }

	accepted, refused := 0, map[string]int{}
	for _, k := range jam {
		batch := make([]chain.Transaction, 0, 64)
		for n := uint64(3); n <= 66; n++ {
			batch = append(batch, feeTx(k, 0, n))
		}
		errs, ready := p.Admit(batch, st)
		if len(ready) != 0 {
			t.Fatalf("gapped transactions offered for gossip: %v", ids(ready))
		}
		for _, err := range errs {
			if err == nil {
				accepted++
			} else {
				refused[string(chain.CodeOf(err))]++
			}
		}
	}
	s := p.Stats()
	t.Logf("jam: %d gapped submitted, %d accepted, refused %v; pool %+v", jammers*64, accepted, refused, s)
	// Nonce 66 leaves 65 missing (nonce_gap); of the rest, a quarter of the
	// pool is queued and the others are refused (queue_full).
	if s.Pending != 0 || s.Queued != limit/4 || accepted != limit/4 ||
		refused["nonce_gap"] != jammers || refused["queue_full"] != jammers*63-limit/4 {
		t.Fatalf("after the jam: %+v, accepted %d, refused %v; want %d queued, the rest queue_full", s, accepted, refused, limit/4)
	}
	if got := p.Executable(limit); len(got) != 0 {
		t.Fatalf("Executable lists %d gapped transactions", len(got))
	}

	// An honest transaction, fee 0 like the jam's, gets in and is gossiped.
	// forge builds blocks from Pending, as the forger does, until want is
	// committed: within as many blocks as a full pool takes to drain.
	height := 0
	forge := func(want chain.Transaction) {
		t.Helper()
		for range limit/g.MaxBlockTxs + 1 {
			height++
			txs := p.Pending(g.MaxBlockTxs, st)
			b := &chain.Block{Header: chain.Header{Height: uint64(height), Forger: forger.Addr}, Transactions: txs}
			if _, err := st.Apply(b, g); err != nil {
				t.Fatalf("block %d does not apply: %v", height, err)
			}
			p.Update(st)
			checkInvariants(t, p)
			if slices.ContainsFunc(txs, func(tx chain.Transaction) bool { return tx.ID() == want.ID() }) {
				return
			}
		}
		t.Fatalf("honest transaction not forged by block %d", height)
	}
	h1 := feeTx(honest[0], 0, 1)
	errs, ready := p.Admit([]chain.Transaction{h1}, st)
	if errs[0] != nil || len(ready) != 1 || ready[0].ID() != h1.ID() {
		t.Fatalf("honest tx: %v, ready %v", errs[0], ids(ready))
	}
	forge(h1)

	// Executable flood 1: 4 keys hold far more than their share and fill
	// the pool (the queued jam goes first). An honest fee-0 tx evicts the
	// tail of a hog.
	for _, k := range floods[:4] {
		var batch []chain.Transaction
		for n := uint64(1); n <= limit/4; n++ {
			batch = append(batch, feeTx(k, 0, n))
		}
		p.AddBatch(batch, st)
	}
	if s := p.Stats(); s.Pending+s.Queued != limit || s.Queued != 0 {
		t.Fatalf("after the flood %+v, want a full pool of pending", s)
	}
	h2 := feeTx(honest[1], 0, 1)
	if _, err := p.Add(h2, st); err != nil {
		t.Fatalf("honest tx refused by a pool of hogs: %v", err)
	}
	forge(h2)

	// Executable flood 2: many keys within their share fill the pool at
	// fee 1. Honest pays 2 and gets in; at fee 1 it would wait its turn.
	p = New(g, Config{Limit: 32 * 16})
	for _, k := range floods[4:] {
		var batch []chain.Transaction
		acc := st.Account(k.Addr)
		for n := acc.Nonce + 1; n <= acc.Nonce+16; n++ {
			batch = append(batch, feeTx(k, 1, n))
		}
		p.AddBatch(batch, st)
	}
	if s := p.Stats(); s.Pending != 32*16 {
		t.Fatalf("flood 2: %+v", s)
	}
	_, err := p.Add(feeTx(honest[2], 1, 1), st)
	wantCode(t, err, ErrPoolFull)
	h3 := feeTx(honest[2], 2, 1)
	if _, err := p.Add(h3, st); err != nil {
		t.Fatalf("honest tx at a higher fee refused: %v", err)
	}
	if txs := p.Pending(1, st); len(txs) != 1 || txs[0].ID() != h3.ID() {
		t.Fatalf("the higher fee is not forged first: %v", ids(txs))
	}
	forge(h3)

	// And the queued jam does not stay for good: idle senders expire.
	p = New(g, Config{Limit: limit, Lifetime: time.Minute})
	p.now = func() time.Time { return clock }
	for _, k := range jam[:10] {
		acc := st.Account(k.Addr)
		p.AddBatch([]chain.Transaction{feeTx(k, 0, acc.Nonce+3)}, st)
	}
	clock = clock.Add(2 * time.Minute)
	if ev := p.Update(st); len(ev) != 10 || p.Len() != 0 {
		t.Fatalf("expiry evicted %d, %d left", len(ev), p.Len())
	}
}

// TestAdmitUnder: the state is read twice, briefly (screen, then admit),
// and signatures are checked in between; what changed in between (a block
// committed the nonce) is caught by the second look.
func TestAdmitUnder(t *testing.T) {
	g := testGenesis()
	before := g.State()
	after := g.State()
	after.SetAccount(alice.Addr, chain.Account{Balance: 1000, Nonce: 1})
	p := New(g, Config{})
	calls := 0
	view := func(fn func(StateView)) {
		calls++
		if calls == 1 {
			fn(before)
			return
		}
		fn(after)
	}
	errs, ready := p.AdmitUnder([]chain.Transaction{feeTx(alice, 1, 1), feeTx(bob, 1, 1)}, view)
	if calls != 2 {
		t.Fatalf("view called %d times, want 2", calls)
	}
	wantCode(t, errs[0], chain.ErrBadNonce)
	if errs[1] != nil || len(ready) != 1 || ready[0].From != bob.Addr {
		t.Fatalf("bob: %v, ready %v", errs[1], ids(ready))
	}
}

// TestRelayShare: a client's transaction (Local) finds the pool full at
// 3/4 of its bounds, count or bytes; a peer's (Relayed) may fill it. In a
// pool past 3/4, a client's transaction gets in only by evicting, by the
// rules of a full pool: a gapped one of any fee, one that pays less, or
// (within its sender's share) the last of a sender over its own. A
// refusal changes nothing.
func TestRelayShare(t *testing.T) {
	g, keys := fundedGenesis(20, 400, 1000)
	st := g.State()
	first := feeTx(keys[0], 1, 1)
	size := int64(len(chain.EncodeTx(&first)))
	const none = 0
	tests := []struct {
		name   string
		cfg    Config
		pooled int    // one transaction (fee 1) each of keys[0..pooled-1]
		gapped uint64 // and, if not none, a gapped one of keys[pooled] paying this
		from   Origin
		fee    uint64
		want   *chain.RuleError
		after  int // pooled after an admission
	}{
		{"local under 3/4 of the count", Config{Limit: 16}, 11, none, Local, 1, nil, 12},
		{"local at 3/4 of the count", Config{Limit: 16}, 12, none, Local, 1, ErrPoolFull, 0},
		{"local past 3/4 of the count", Config{Limit: 16}, 13, none, Local, 1, ErrPoolFull, 0},
		{"local past 3/4 of the count, paying more", Config{Limit: 16}, 13, none, Local, 2, nil, 13},
		{"local past 3/4, a dearer gapped one pooled", Config{Limit: 16}, 12, 100, Local, 1, nil, 13},
		{"local past 3/4, a cheaper gapped one pooled", Config{Limit: 16}, 12, 1, Local, 2, nil, 13},
		{"relayed at 3/4 of the count", Config{Limit: 16}, 12, none, Relayed, 1, nil, 13},
		{"relayed at the count", Config{Limit: 16}, 16, none, Relayed, 1, ErrPoolFull, 0},
		{"relayed at the count, paying more", Config{Limit: 16}, 16, none, Relayed, 2, nil, 16},
		{"relayed at the count, a dearer gapped one pooled", Config{Limit: 16}, 15, 100, Relayed, 1, nil, 16},
		{"local at the count, a dearer gapped one pooled", Config{Limit: 16}, 15, 100, Local, 1, nil, 16},
		{"local, a pool of one", Config{Limit: 1}, 0, none, Local, 1, nil, 1},
		{"local under 3/4 of the bytes", Config{MaxBytes: 16 * size}, 11, none, Local, 1, nil, 12},
		{"local at 3/4 of the bytes", Config{MaxBytes: 16 * size}, 12, none, Local, 1, ErrPoolFull, 0},
		{"local past 3/4 of the bytes, paying more", Config{MaxBytes: 16 * size}, 13, none, Local, 2, nil, 13},
		{"relayed at 3/4 of the bytes", Config{MaxBytes: 16 * size}, 12, none, Relayed, 1, nil, 13},
		{"relayed at the bytes", Config{MaxBytes: 16 * size}, 16, none, Relayed, 1, ErrPoolFull, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(g, tc.cfg)
			for i := range tc.pooled {
				mustAdd(t, p, st, feeTx(keys[i], 1, 1))
			}
			if tc.gapped != none {
				mustAdd(t, p, st, feeTx(keys[tc.pooled], tc.gapped, 3))
			}
			before := ids(p.All())
			newcomer := feeTx(keys[len(keys)-1], tc.fee, 1)
			errs, ready := p.AdmitNewest([]chain.Transaction{newcomer}, tc.from, func() StateView { return st })
			if tc.want == nil && errs[0] != nil {
				t.Fatalf("got %v, want it pooled", errs[0])
			}
			if tc.want != nil {
				wantCode(t, errs[0], tc.want)
				if after := ids(p.All()); strings.Join(after, " ") != strings.Join(before, " ") || len(ready) != 0 {
					t.Fatalf("a refusal changed the pool: %v, want %v (ready %d)", after, before, len(ready))
				}
			} else if len(ready) != 1 || p.Len() != tc.after {
				t.Fatalf("ready %d, pooled %d; want 1, %d", len(ready), p.Len(), tc.after)
			}
			checkInvariants(t, p)
		})
	}
	// Past 3/4 but not full, a client's transaction within its sender's
	// share takes the last pending transaction of a sender over its own,
	// whatever it pays, as in a full pool: keys[0] holds three pending at
	// fee 5 (a share of one), ten others one each at fee 5, the pool
	// 13 of 16.
	p := New(g, Config{Limit: 16, AccountSlots: 1})
	for n := uint64(1); n <= 3; n++ {
		mustAdd(t, p, st, feeTx(keys[0], 5, n))
	}
	for i := 1; i <= 10; i++ {
		mustAdd(t, p, st, feeTx(keys[i], 5, 1))
	}
	newcomer := feeTx(keys[len(keys)-1], 2, 1)
	if errs, _ := p.AdmitNewest([]chain.Transaction{newcomer}, Local, func() StateView { return st }); errs[0] != nil {
		t.Fatalf("got %v, want it pooled", errs[0])
	}
	tail := feeTx(keys[0], 5, 3)
	if _, _, ok := p.Status(tail.ID()); ok || p.Len() != 13 {
		t.Fatalf("pooled %d (keys[0]'s nonce 3 kept: %v), want 13 without it", p.Len(), ok)
	}
	checkInvariants(t, p)
}
