// Package tune sets the Go runtime the way posd runs it: the collector's
// pace, its soft memory limit and the number of Ps. posd calls Runtime at
// start; the node benchmarks call it too, so they measure what posd does.
package tune

import (
	"os"
	"runtime"
	"runtime/debug"
	"sync/atomic"
)

// MemoryLimit is the soft limit on the Go runtime's memory that posd sets
// per node (GOMEMLIMIT overrides it), and CatchUpMemoryLimit the lower one
// it keeps while a node catches up with a long sync (CatchingUp). Below a
// limit GOGC alone paces the collector; near it the collector runs as
// often as it must to stay under (never taking more than half the CPU: a
// node whose live data outgrows the limit slows down rather than failing).
//
// Why two. At GOGC=200 the heap may grow to three times what is live. A
// node holding a million accounts keeps ~200 MB live, so a fresh node
// syncing an 11,000,000-transaction chain reached 815 MiB of anonymous
// memory; under 400 MiB, 398 MiB, for about 20% more CPU on that sync,
// which still ran at 61,000 tx/s. A catching-up node holds no pool and
// serves no load, so its live heap is the state and one batch of blocks.
// A node under load on that state keeps more live (its pool, its clients'
// batches): held to 400 MiB it spent 25–35% more CPU per transfer (docs/PERFORMANCE.md, "Sync in
// bounded memory"), so the limit outside catch-up is the higher one. A
// node with a small state reaches neither.
const (
	MemoryLimit        = 1 << 30
	CatchUpMemoryLimit = 400 << 20
)

// catchingUp counts the long syncs under way in the process.
var catchingUp atomic.Int64

// nodes is how many nodes the process runs (ScaleMemoryLimit).
var nodes atomic.Int64

// ownLimit: Runtime set the memory limit (the environment did not), so
// ScaleMemoryLimit and CatchingUp may change it.
var ownLimit atomic.Bool

// GCPercent is posd's GOGC. A node under load allocates per transaction
// (decoding, pool entries, block and index encodings); with Go's default
// of 100 the collector took ~15% of its CPU, at 200 a single node under
// poscli load committed 10–15% more transactions per second for a heap at
// most twice as large (docs/PERFORMANCE.md).
const GCPercent = 200

// Runtime sets GOGC to GCPercent, the soft memory limit to MemoryLimit and
// GOMAXPROCS to one more than the runtime chose (the cores, or the
// container's CPU limit), each unless the environment sets it, and returns
// a function that restores them.
//
// The extra P: signature checks, which come in floods, may use every core
// but one P (chain's verification slots are GOMAXPROCS−1), so a P is
// always free to take a ready connection or the forger's commit at once,
// and the operating system shares the cores among the threads in slices
// of a few milliseconds. Measured on 2 cores (docs/PERFORMANCE.md): with
// 2 Ps and one verification core a single node under poscli load committed
// 27–37k tx/s, with 3 Ps and two 37–39k; a 4-node devnet 7.6–9.0k against
// 10.9–11.1k; read p99 under 10k-tx block imports 13–22 ms against 18–23.
func Runtime() (restore func()) {
	gc, procs, limit := -1, 0, int64(-1)
	if os.Getenv("GOGC") == "" {
		gc = debug.SetGCPercent(GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		limit = debug.SetMemoryLimit(MemoryLimit)
		ownLimit.Store(true)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		procs = runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
	return func() {
		if gc >= 0 {
			debug.SetGCPercent(gc)
		}
		if procs > 0 {
			runtime.GOMAXPROCS(procs)
		}
		if limit >= 0 {
			debug.SetMemoryLimit(limit)
			ownLimit.Store(false)
		}
	}
}

// ScaleMemoryLimit gives a process that runs n nodes (posd devnet) n
// times the limits, if the limit is Runtime's own.
func ScaleMemoryLimit(n int) {
	nodes.Store(int64(max(n, 1)))
	applyLimit()
}

// CatchingUp lowers the memory limit to CatchUpMemoryLimit (per node) for
// a long sync, until the returned function is called (p2p calls it around
// a sync session far behind its peer). Syncs of several nodes of one
// process overlap: the limit is the low one while any runs.
func CatchingUp() (done func()) {
	catchingUp.Add(1)
	applyLimit()
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			catchingUp.Add(-1)
			applyLimit()
		}
	}
}

// applyLimit sets the limit for the nodes and the syncs under way, if the
// limit is Runtime's own.
func applyLimit() {
	if !ownLimit.Load() {
		return
	}
	per := int64(MemoryLimit)
	if catchingUp.Load() > 0 {
		per = CatchUpMemoryLimit
	}
	debug.SetMemoryLimit(max(nodes.Load(), 1) * per)
}
