package daemon

import (
	"testing"
	"time"

	"github.com/poslab/posd/chain"
)

// costChain is a forgerChain that only knows its import cost.
type costChain struct {
	forgerChain
	per time.Duration
}

func (c costChain) ImportCostPerTx() time.Duration { return c.per }

// TestForgeLimit: the forger fills a block with what it imports in a
// sixteenth of a slot at its recent cost, within [minForgeTxs,
// max_block_txs], and fills max_block_txs before anything was measured.
func TestForgeLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		slotMs int64
		max    int
		per    time.Duration
		want   int
	}{
		{"nothing measured", 2000, 10000, 0, 10000},
		{"125 ms at 25 µs", 2000, 10000, 25 * time.Microsecond, 5000},
		{"fast: max_block_txs", 2000, 10000, time.Microsecond, 10000},
		{"slow: the floor", 2000, 10000, time.Millisecond, minForgeTxs},
		{"floor above max_block_txs", 2000, 100, time.Millisecond, 100},
		{"longer slot, larger block", 4000, 10000, 25 * time.Microsecond, 10000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := chain.DefaultGenesis()
			g.SlotMs, g.MaxBlockTxs = tc.slotMs, tc.max
			f := &forger{g: g, chain: costChain{per: tc.per}}
			if got := f.forgeLimit(); got != tc.want {
				t.Fatalf("forgeLimit = %d, want %d", got, tc.want)
			}
		})
	}
}
