package chainmgr

import (
	"testing"

	"github.com/poslab/posd/chain"
)

// TestImportCostPerTx: measured on peers' blocks of at least
// minCostSample transactions, not on small blocks nor the forger's own
// (imported with ids).
func TestImportCostPerTx(t *testing.T) {
	tc := newTestChain(t)
	nonce := uint64(0)
	txs := func(n int) []chain.Transaction {
		out := make([]chain.Transaction, n)
		for i := range out {
			nonce++
			out[i] = tc.transfer(tc.rich, 1, nonce)
		}
		return out
	}
	small := tc.block(tc.forger, tc.m.Head(), 1000, txs(minCostSample-1)...)
	if err := tc.m.ProcessBlock(small); err != nil {
		t.Fatal(err)
	}
	if c := tc.m.ImportCostPerTx(); c != 0 {
		t.Fatalf("a block of %d transactions was measured: %v", minCostSample-1, c)
	}
	own := tc.block(tc.forger, small, 1000, txs(minCostSample)...)
	if err := tc.m.ProcessOwnBlock(own); err != nil {
		t.Fatal(err)
	}
	if c := tc.m.ImportCostPerTx(); c != 0 {
		t.Fatalf("the forger's own block was measured: %v", c)
	}
	peer := tc.block(tc.forger, own, 1000, txs(minCostSample)...)
	if err := tc.m.ProcessBlock(peer); err != nil {
		t.Fatal(err)
	}
	if c := tc.m.ImportCostPerTx(); c <= 0 {
		t.Fatalf("a peer's block of %d transactions was not measured", minCostSample)
	}
}

func TestImportCostAverage(t *testing.T) {
	var c importCost
	c.observe(1000, 10_000_000) // 10 µs
	if got := c.perTx(); got != 10_000 {
		t.Fatalf("first sample: %v, want 10µs", got)
	}
	c.observe(1000, 20_000_000) // 20 µs: 0.7·10 + 0.3·20
	if got := c.perTx(); got != 13_000 {
		t.Fatalf("after 20µs: %v, want 13µs", got)
	}
	c.observe(minCostSample-1, 1) // too small to count
	if got := c.perTx(); got != 13_000 {
		t.Fatalf("a small block moved the average: %v", got)
	}
	c.observe(1000, 1_000_000_000) // 1 ms: counted as 4·13 µs at most
	if got := c.perTx(); got != 24_700 {
		t.Fatalf("after an outlier: %v, want 0.7·13 + 0.3·52 = 24.7µs", got)
	}
}
