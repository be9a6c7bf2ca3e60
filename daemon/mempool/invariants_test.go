package mempool

import (
	"math/rand/v2"
	"slices"
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
