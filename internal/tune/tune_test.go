package tune

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// TestRuntime: one more P, GOGC=200 and the memory limit unless the
// environment says otherwise, and restore puts them back.
func TestRuntime(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMAXPROCS", "")
	t.Setenv("GOMEMLIMIT", "")
	procs := runtime.GOMAXPROCS(0)
	gc := debug.SetGCPercent(100)
	defer debug.SetGCPercent(gc)
	limit := debug.SetMemoryLimit(-1)
	restore := Runtime()
	if got := debug.SetMemoryLimit(-1); got != MemoryLimit {
		t.Errorf("memory limit %d, want %d", got, MemoryLimit)
	}
	ScaleMemoryLimit(3)
	if got := debug.SetMemoryLimit(-1); got != 3*MemoryLimit {
		t.Errorf("memory limit for 3 nodes %d, want %d", got, 3*MemoryLimit)
	}
	done1, done2 := CatchingUp(), CatchingUp()
	if got := debug.SetMemoryLimit(-1); got != 3*CatchUpMemoryLimit {
		t.Errorf("memory limit for 3 nodes catching up %d, want %d", got, 3*CatchUpMemoryLimit)
	}
	done1()
	done1() // twice counts once
	if got := debug.SetMemoryLimit(-1); got != 3*CatchUpMemoryLimit {
		t.Errorf("memory limit with one sync still under way %d, want %d", got, 3*CatchUpMemoryLimit)
	}
	done2()
	if got := debug.SetMemoryLimit(-1); got != 3*MemoryLimit {
		t.Errorf("memory limit after the syncs %d, want %d", got, 3*MemoryLimit)
	}
	ScaleMemoryLimit(1)
	if got := runtime.GOMAXPROCS(0); got != procs+1 {
		t.Errorf("GOMAXPROCS %d, want %d", got, procs+1)
	}
	if got := debug.SetGCPercent(GCPercent); got != GCPercent {
		t.Errorf("GOGC %d, want %d", got, GCPercent)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("after restore GOMAXPROCS %d, want %d", got, procs)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("after restore GOGC %d, want 100", got)
	}
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("after restore the memory limit is %d, want %d", got, limit)
	}

	t.Setenv("GOGC", "50")
	t.Setenv("GOMAXPROCS", "1")
	t.Setenv("GOMEMLIMIT", "1GiB")
	restore = Runtime()
	ScaleMemoryLimit(3)
	CatchingUp()()
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("GOMEMLIMIT set in the environment, yet the limit changed to %d", got)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS set in the environment, yet changed to %d", got)
	}
}
