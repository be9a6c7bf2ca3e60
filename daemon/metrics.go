package daemon

import "github.com/poslab/posd/daemon/chainmgr"

// registerMetrics puts the node's gauges and the counters other parts
// already keep (the chain manager's Stats, the forger's and the pool's
// counts) on the node's registry, read at each scrape. The names are those
// /metrics has always had (posd_height, posd_blocks_imported_total, ...).
// Histograms and the transaction counters are recorded where the events
// happen: the chain manager (chainmgr.Config.Metrics), admission
// (SubmitTxs, the p2p handler) and the API.
func (n *Node) registerMetrics() {
	m := n.prom
	m.GaugeFunc("height", "Height of the head block.", func() float64 { return float64(n.chain.Snapshot().Height()) })
	m.GaugeFunc("accounts", "Accounts in the state after the head.", func() float64 { return float64(n.chain.Snapshot().Len()) })
	m.GaugeFunc("peers", "Connected peers.", func() float64 {
		if n.net == nil {
			return 0
		}
		return float64(len(n.net.Peers()))
	})
	m.GaugeFunc("pool_size", "Transactions in the pool, pending and queued.", func() float64 { return float64(n.pool.Len()) })
	m.GaugeFunc("pool_pending", "Executable transactions in the pool.", func() float64 { return float64(n.pool.Stats().Pending) })
	m.GaugeFunc("pool_queued", "Nonce-gapped transactions in the pool.", func() float64 { return float64(n.pool.Stats().Queued) })
	m.GaugeFunc("pool_bytes", "Encoded bytes of the pool's transactions.", func() float64 { return float64(n.pool.Stats().Bytes) })
	m.GaugeFunc("clock_behind_seconds", "How far this node's clock looks behind the network's (0: it does not).", func() float64 {
		d, ok := n.chain.ClockBehind()
		if !ok {
			return 0
		}
		return d.Seconds()
	})
	m.GaugeFunc("future_blocks", "Blocks from a little ahead of this node's clock, kept until due.", func() float64 { return float64(n.chain.FutureBlocks()) })

	stat := func(f func(s chainmgr.Stats) int64) func() float64 {
		return func() float64 { return float64(f(n.chain.Stats())) }
	}
	m.CounterFunc("blocks_imported_total", "Blocks that joined the main chain (forged here or received).",
		stat(func(s chainmgr.Stats) int64 { return s.BlocksImported }))
	m.CounterFunc("txs_committed_total", "Transactions of main-chain blocks, less those reverted by reorgs.",
		stat(func(s chainmgr.Stats) int64 { return s.TxsCommitted }))
	m.CounterFunc("reorgs_total", "Switches of the main chain to another branch.",
		stat(func(s chainmgr.Stats) int64 { return s.Reorgs }))
	m.CounterFunc("side_blocks_pruned_total", "Side blocks removed below the reorg limit.",
		stat(func(s chainmgr.Stats) int64 { return s.SidePruned }))
	m.CounterFunc("known_invalid_blocks_total", "Blocks refused at once as known invalid.",
		stat(func(s chainmgr.Stats) int64 { return s.KnownInvalid }))
	m.CounterFunc("chain_events_dropped_total", "Chain events a slow subscriber missed.",
		stat(func(s chainmgr.Stats) int64 { return s.EventsDropped }))
	m.CounterFunc("blocks_forged_total", "Blocks this node forged and imported.",
		func() float64 { return float64(n.metrics.blocksForged.Load()) })
	m.CounterFunc("txs_evicted_total", "Pool transactions dropped after a block or reorg made them invalid.",
		func() float64 { return float64(n.metrics.evicted.Load()) })
}
