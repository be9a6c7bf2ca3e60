// Package tune sets the Go runtime the way posd runs it: the collector's
// pace and the number of Ps. posd calls Runtime at start; the node
// benchmarks call it too, so they measure what posd does.
package tune

import (
	"os"
	"runtime"
	"runtime/debug"
)

// GCPercent is posd's GOGC. A node under load allocates per transaction
// (decoding, pool entries, block and index encodings); with Go's default
// of 100 the collector took ~15% of its CPU, at 200 a single node under
// poscli load committed 10–15% more transactions per second for a heap at
// most twice as large (docs/PERFORMANCE.md).
const GCPercent = 200

// Runtime sets GOGC to GCPercent and GOMAXPROCS to one more than the
// runtime chose (the cores, or the container's CPU limit), each unless the
// environment sets it, and returns a function that restores both.
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
	gc, procs := -1, 0
	if os.Getenv("GOGC") == "" {
		gc = debug.SetGCPercent(GCPercent)
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
	}
}
