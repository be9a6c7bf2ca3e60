package tune

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// TestRuntime: one more P and GOGC=200 unless the environment says
// otherwise, and restore puts both back.
func TestRuntime(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMAXPROCS", "")
	procs := runtime.GOMAXPROCS(0)
	gc := debug.SetGCPercent(100)
	defer debug.SetGCPercent(gc)
	restore := Runtime()
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

	t.Setenv("GOGC", "50")
	t.Setenv("GOMAXPROCS", "1")
	Runtime()()
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS set in the environment, yet changed to %d", got)
	}
}
