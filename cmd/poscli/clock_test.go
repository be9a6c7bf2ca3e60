package main

import (
	"strings"
	"testing"
)

// TestStatusShowsSlowClock: a node reporting clock_behind_ms gets a clock
// line in `poscli status` (and the field in -o json); a node on time none.
func TestStatusShowsSlowClock(t *testing.T) {
	node := newFakeNode(t)
	for _, behind := range []int64{0, 3000} {
		node.mu.Lock()
		node.clockBehindMs = behind
		node.mu.Unlock()
		for _, format := range []string{"table", "json"} {
			e := newTestEnv(t, node.URL)
			e.f.Globals.Output = format
			if err := e.run(NewCmdStatus(e.f, nil)); err != nil {
				t.Fatal(err)
			}
			out := e.out.String()
			want := map[string]string{"table": "looks 3s behind", "json": `"clock_behind_ms": 3000`}[format]
			if got := strings.Contains(out, want); got != (behind > 0) {
				t.Errorf("behind %d, %s: contains %q = %v:\n%s", behind, format, want, got, out)
			}
		}
	}
}
