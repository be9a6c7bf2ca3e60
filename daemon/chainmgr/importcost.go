package chainmgr

import (
	"sync"
	"time"
)

// ImportCostPerTx is what importing a block from a peer cost this node
// lately, per transaction: a moving average over the peers' blocks that
// extended the head and were large enough for per-block costs not to
// dominate, taken under whatever load the node carried. A sample is the
// block's checks, validation and commit: not the wait for the import lock,
// and never a reorganisation. Zero until such a block was imported. The
// forger sizes its blocks by it.
func (m *Manager) ImportCostPerTx() time.Duration { return m.cost.perTx() }

// minCostSample is the least transactions a block must hold to be measured.
const minCostSample = 200

// maxCostJump bounds a sample to this many times the average: one slow
// block (a pause, a block of transactions nobody had seen) moves the
// forger's block size by a step, not to its floor.
const maxCostJump = 4

// importCost is ImportCostPerTx's moving average.
type importCost struct {
	mu sync.Mutex
	ns float64 // 0: nothing measured yet
}

func (c *importCost) observe(txs int, took time.Duration) {
	if txs < minCostSample {
		return
	}
	x := float64(took) / float64(txs)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ns == 0 {
		c.ns = x
		return
	}
	c.ns = 0.7*c.ns + 0.3*min(x, maxCostJump*c.ns)
}

func (c *importCost) perTx() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Duration(c.ns)
}
