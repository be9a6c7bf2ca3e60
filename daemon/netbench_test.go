package daemon

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/poslab/posd/chain"
	"github.com/poslab/posd/internal/tune"
	"github.com/poslab/posd/keystore"
)

// BenchmarkSyncFreshNode10000 measures how fast a fresh node catches up over
// libp2p with a node holding 10,000 small blocks (one transfer each): every
// block validated, every signature verified, every block committed.
func BenchmarkSyncFreshNode10000(b *testing.B) {
	const blocks = 10000
	// A genesis an hour old leaves room for 10,000 blocks a millisecond apart.
	// Heartbeat off: the node must not forge on its own meanwhile.
	d := startNet(b, []uint64{1}, nil, func(p *GenesisParams) {
		p.Timestamp = time.Now().Add(-time.Hour).UnixMilli()
		p.Heartbeat = false
	})
	src := d.Nodes[0]
	k, _ := keystore.Generate()
	parent := src.API().Head().Header
	for i := 0; i < blocks; i++ {
		tx := chain.Transaction{Type: chain.TxExchange, ChainID: src.g.ChainID, To: k.Address(), Amount: 1, Nonce: uint64(i + 1)}
		k.SignTx(&tx)
		blk := chain.NewBlock(src.g, &parent, 0, parent.Timestamp+1, []chain.Transaction{tx})
		src.key.SignHeader(&blk.Header)
		if err := src.chain.ProcessBlock(blk); err != nil {
			b.Fatal(err)
		}
		parent = blk.Header
	}
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		fresh := joinLate(b, d)
		for fresh.API().Height() < blocks {
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		fresh.Close()
	}
	b.ReportMetric(float64(blocks*b.N)/total.Seconds(), "blocks/s")
}

// BenchmarkBlockPropagation4Nodes forges blocks on a 4-node devnet and
// measures, for each block, the time from its import on the forging node
// to its import on each other node (p50) and on the last of them (p50-all).
func BenchmarkBlockPropagation4Nodes(b *testing.B) {
	d := startNet(b, []uint64{1, 1, 1, 1}, nil)
	waitPeers(b, d, 3)
	var mu sync.Mutex
	arrivals := map[chain.Hash]map[int]time.Time{}
	for i, n := range d.Nodes {
		ch, cancel := n.API().SubscribeBlocks()
		b.Cleanup(cancel)
		go func(i int, ch <-chan *chain.Block) {
			for blk := range ch {
				now := time.Now()
				mu.Lock()
				if arrivals[blk.Hash()] == nil {
					arrivals[blk.Hash()] = map[int]time.Time{}
				}
				arrivals[blk.Hash()][i] = now
				mu.Unlock()
			}
		}(i, ch)
	}
	k, _ := keystore.Generate()
	const perIter = 50
	b.ResetTimer()
	for i := 0; i < b.N*perIter; i++ {
		// Send to the node forging the next block so gossip of the
		// transaction does not count as block propagation.
		n := d.Nodes[0]
		cands := n.chain.Snapshot().Candidates()
		for _, m := range d.Nodes {
			if m.Address() == cands[0] {
				n = m
			}
		}
		height := n.API().Height()
		sendFrom(b, n, k, chain.Transaction{Type: chain.TxExchange, To: k.Address(), Amount: 1})
		waitUntil(b, 10*time.Second, "a block on every node", func() bool {
			for _, m := range d.Nodes {
				if m.API().Height() <= height {
					return false
				}
			}
			return true
		})
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	var each, all []float64
	for _, at := range arrivals {
		if len(at) < 4 {
			continue
		}
		first, last := time.Time{}, time.Time{}
		for _, t := range at {
			if first.IsZero() || t.Before(first) {
				first = t
			}
			if t.After(last) {
				last = t
			}
		}
		for _, t := range at {
			if !t.Equal(first) {
				each = append(each, float64(t.Sub(first).Microseconds())/1000)
			}
		}
		all = append(all, float64(last.Sub(first).Microseconds())/1000)
	}
	b.ReportMetric(percentile(each, 50), "p50-ms")
	b.ReportMetric(percentile(each, 99), "p99-ms")
	b.ReportMetric(percentile(all, 50), "p50-all-ms")
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

// BenchmarkDevnetThroughput4Nodes sends pre-signed transfers in batches to
// all four nodes of a devnet (each sender to one node) and waits until
// every node has committed all of them and agrees on the head.
func BenchmarkDevnetThroughput4Nodes(b *testing.B) {
	b.Cleanup(tune.Runtime()) // as posd runs
	tune.ScaleMemoryLimit(4)  // as posd devnet --nodes 4 runs
	const senders, perIter = 200, 20000
	keys := make([]*keystore.Key, senders)
	var allocs []chain.Allocation
	for i := range keys {
		keys[i], _ = keystore.Generate()
		allocs = append(allocs, chain.Allocation{Address: keys[i].Address(), Balance: 1 << 50})
	}
	d := startNet(b, []uint64{1, 1, 1, 1}, func(_ int, c *Config) { c.PoolLimit = 1 << 20 },
		func(p *GenesisParams) { p.Allocations = allocs })
	waitPeers(b, d, 3)
	next := make([]uint64, senders)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		perNode := make([][]chain.Transaction, len(d.Nodes))
		for s := range keys {
			node := s % len(d.Nodes)
			perNode[node] = append(perNode[node], transfers(d.Nodes[0].g.ChainID, keys[s:s+1], next[s:s+1], perIter/senders)...)
		}
		before := make([]int64, len(d.Nodes))
		for j, n := range d.Nodes {
			before[j] = n.chain.Stats().TxsCommitted
		}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for j, n := range d.Nodes {
			wg.Add(1)
			go func(n *Node, txs []chain.Transaction) {
				defer wg.Done()
				for len(txs) > 0 {
					batch := txs[:min(1000, len(txs))]
					txs = txs[len(batch):]
					postBatch(b, n.APIURL(), batch)
				}
			}(n, perNode[j])
		}
		wg.Wait()
		deadline := time.Now().Add(30 * time.Second)
		for !(agreed(d.Nodes...) && d.Nodes[0].chain.Stats().TxsCommitted-before[0] >= perIter) {
			if time.Now().After(deadline) {
				for j, n := range d.Nodes {
					onChain := 0
					for h := uint64(1); h <= n.API().Height(); h++ {
						blk, _ := n.API().BlockByHeight(h)
						onChain += len(blk.Transactions)
					}
					b.Logf("node %d: height %d head %s pool %d on chain %d", j+1, n.API().Height(), n.API().Head().Hash().String()[:8], n.pool.Len(), onChain)
				}
				b.Fatal("timed out waiting for every node to commit every transfer")
			}
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(perIter*b.N)/total.Seconds(), "committed_tx/s")
}
