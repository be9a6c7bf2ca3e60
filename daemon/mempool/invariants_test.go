package mempool

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/testkit"
)

// walkRun is contiguousTop the plain way: the highest nonce n such that
// every nonce from accountNonce+1 to n is pooled.
func walkRun(s *sender, accountNonce uint64) uint64 {
	n := accountNonce
	for _, e := range s.txs {
		if e.tx.Nonce == n+1 {
			n++
		} else if e.tx.Nonce > n+1 {
			break
		}
	}
	return n
}

// TestPoolInvariantsUnderRandomOps runs random admissions (gaps, repeats,
// other transactions at a used nonce), blocks of pending transactions,
// reorgs that revert them and put them back, and removals, checking the
// pool's books (checkInvariants) after each.
func TestPoolInvariantsUnderRandomOps(t *testing.T) {
	g, st0, txs := benchSetup(t, 4, 40)
	// Another transaction at each nonce (a different amount): refused as
	// nonce_in_use while the first is pooled, taken otherwise.
	others := make([]chain.Transaction, len(txs))
	for i := range txs {
		k := testkit.KeyN(1000 + i%4)
		others[i] = testkit.Transfer(k, txs[i].To, 11, 1, txs[i].Nonce)
	}
	maxPooled, nblocks, nreorgs := 0, 0, 0
	for seed := range uint64(25) {
		rng := rand.New(rand.NewPCG(seed, 7))
		st := st0.Clone()
		p := New(g, Config{Sigs: trustAll{}, AccountSlots: 16, AccountQueue: 8})
		type applied struct {
			undo *chain.Undo
			txs  []chain.Transaction
		}
		var blocks []applied
		for step := range 150 {
			switch op := rng.IntN(10); {
			case op < 5: // a batch
				var batch []chain.Transaction
				for range 1 + rng.IntN(12) {
					i := rng.IntN(len(txs))
					if rng.IntN(5) == 0 {
						batch = append(batch, others[i])
					} else {
						batch = append(batch, txs[i])
					}
				}
				p.AddBatch(batch, st)
			case op < 8: // a block of what is pending
				pend := p.Pending(1+rng.IntN(10), st)
				if len(pend) == 0 {
					continue
				}
				u := applyBlock(t, g, st, uint64(len(blocks)+1), pend...)
				blocks = append(blocks, applied{u, pend})
				nblocks++
				p.Update(st)
			case op < 9: // a reorg: the newest blocks go back to the pool
				var back []chain.Transaction
				for k := 1 + rng.IntN(3); k > 0 && len(blocks) > 0; k-- {
					b := blocks[len(blocks)-1]
					blocks = blocks[:len(blocks)-1]
					st.Revert(b.undo)
					back = append(back, b.txs...)
				}
				p.Reinsert(back, st)
				nreorgs++
				p.Update(st)
			default: // removals
				all := p.All()
				if len(all) == 0 {
					continue
				}
				var ids []chain.Hash
				for range 1 + rng.IntN(3) {
					ids = append(ids, all[rng.IntN(len(all))].ID())
				}
				p.Remove(slices.Compact(ids)...)
			}
			func() {
				defer func() {
					if t.Failed() {
						t.Logf("seed %d, step %d", seed, step)
					}
				}()
				checkInvariants(t, p)
			}()
			maxPooled = max(maxPooled, p.Len())
		}
	}
	// The run must have done what it is for.
	if maxPooled < 20 || nblocks < 100 || nreorgs < 50 {
		t.Fatalf("a thin run: at most %d pooled, %d blocks, %d reorgs", maxPooled, nblocks, nreorgs)
	}
	t.Logf("at most %d pooled, %d blocks, %d reorgs", maxPooled, nblocks, nreorgs)
}

// TestUpdateKeepsWhatAFreshPoolWould: after each block, the pool holds
// exactly what a fresh pool admitting, on the new state, what the pool
// held before would hold, each pending or queued as there. Senders send
// their next nonces, sometimes with a gap (the gap bound is 6); the
// blocks take what is pending, sometimes another transaction at a pooled
// nonce (more spent: later ones no longer pay) or one the pool never saw;
// senders pay each other (coins received between blocks), a few send to
// themselves or stake; some admissions come after a block the pool has
// not been updated for, and some transactions are removed. So the
// shortcut for senders whose oldest transfers committed
// (committedTransfers, in Update and in admission) is checked against the
// full re-check.
func TestUpdateKeepsWhatAFreshPoolWould(t *testing.T) {
	const senders, nonces = 5, 60
	g := testGenesis()
	g.Allocations = nil
	keys := make([]testkit.Key, senders)
	for i := range keys {
		keys[i] = testkit.KeyN(2000 + i)
		g.Allocations = append(g.Allocations, testkit.Fund(keys[i], 500, 0))
	}
	// ring[i][n-1] is sender i's transfer of 10 to the next sender at nonce
	// n; other[i][n-1] another at the same nonce: 60 to the same
	// recipient, or a transfer to itself or a stake.
	ring := make([][]chain.Transaction, senders)
	other := make([][]chain.Transaction, senders)
	for i, k := range keys {
		for n := uint64(1); n <= nonces; n++ {
			ring[i] = append(ring[i], testkit.Transfer(k, keys[(i+1)%senders].Addr, 10, 1, n))
			switch n % 7 {
			case 3:
				other[i] = append(other[i], testkit.Transfer(k, k.Addr, 5, 1, n))
			case 5:
				other[i] = append(other[i], testkit.Tx(k, chain.TxStake, "", 5, 1, n))
			default:
				other[i] = append(other[i], testkit.Transfer(k, keys[(i+1)%senders].Addr, 60, 1, n))
			}
		}
	}
	sender := func(a chain.Address) int {
		return slices.IndexFunc(keys, func(k testkit.Key) bool { return k.Addr == a })
	}
	cfg := Config{Sigs: trustAll{}, MaxNonceGap: 6}
	height := uint64(0)
	// commit applies tx in a block of its own, if it applies.
	commit := func(st **chain.State, tx chain.Transaction) {
		c := (*st).Clone()
		height++
		if _, err := c.Apply(&chain.Block{Header: chain.Header{Height: height, Forger: forger.Addr}, Transactions: []chain.Transaction{tx}}, g); err == nil {
			*st = c
		}
	}
	// block commits up to n of what p has pending, now and then another
	// transaction at a pooled nonce instead.
	block := func(rng *rand.Rand, p *Pool, st **chain.State, n int) {
		for _, tx := range p.Pending(n, *st) {
			if rng.IntN(10) == 0 {
				tx = other[sender(tx.From)][tx.Nonce-1]
			}
			commit(st, tx)
		}
	}
	byNonce := func(a, b chain.Transaction) int {
		if a.From != b.From {
			return strings.Compare(string(a.From), string(b.From))
		}
		return cmp.Compare(a.Nonce, b.Nonce)
	}
	shortcuts, slow := 0, 0
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 11))
		st := g.State()
		p := New(g, cfg)
		for step := range 60 {
			if rng.IntN(5) == 0 { // admissions after a block the pool was not updated for
				block(rng, p, &st, 1+rng.IntN(8))
			}
			var batch []chain.Transaction
			for range 1 + rng.IntN(4) {
				i := rng.IntN(senders)
				next := p.PendingNonce(keys[i].Addr, st) + 1
				if rng.IntN(6) == 0 {
					next += uint64(1 + rng.IntN(3)) // a gap
				}
				for n := next; n < next+uint64(1+rng.IntN(6)) && n <= nonces; n++ {
					if rng.IntN(8) == 0 {
						batch = append(batch, other[i][n-1])
					} else {
						batch = append(batch, ring[i][n-1])
					}
				}
			}
			p.AddBatch(batch, st)
			if all := p.All(); len(all) > 0 && rng.IntN(8) == 0 {
				p.Remove(all[rng.IntN(len(all))].ID())
			}
			held := p.All()
			slices.SortFunc(held, byNonce)
			block(rng, p, &st, 1+rng.IntN(15))
			if rng.IntN(6) == 0 { // a transaction the pool never saw
				i := rng.IntN(senders)
				if n := st.Account(keys[i].Addr).Nonce; n < nonces {
					commit(&st, other[i][n])
				}
			}
			p.mu.Lock()
			for addr, s := range p.senders {
				if acc := st.Account(addr); acc != s.checked {
					if _, _, ok := committedTransfers(s, acc); ok {
						shortcuts++
					} else {
						slow++
					}
				}
			}
			p.mu.Unlock()
			p.Update(st)
			checkInvariants(t, p)

			fresh := New(g, cfg)
			fresh.AddBatch(held, st)
			got, want := p.All(), fresh.All()
			slices.SortFunc(got, byNonce)
			slices.SortFunc(want, byNonce)
			if !slices.EqualFunc(got, want, func(a, b chain.Transaction) bool { return a.ID() == b.ID() }) {
				t.Fatalf("seed %d step %d: the pool holds %d transactions, a fresh pool %d", seed, step, len(got), len(want))
			}
			for _, tx := range got {
				_, q1, _ := p.Status(tx.ID())
				_, q2, _ := fresh.Status(tx.ID())
				if q1 != q2 {
					t.Fatalf("seed %d step %d: %s/%d queued=%v, in a fresh pool %v", seed, step, tx.From.Short(), tx.Nonce, q1, q2)
				}
			}
		}
	}
	if shortcuts < 100 || slow < 100 {
		t.Fatalf("%d senders took the shortcut, %d the full re-check: the test does not test both", shortcuts, slow)
	}
	t.Logf("%d senders took the shortcut, %d the full re-check", shortcuts, slow)
}
