package store

import "testing"

// A job runs once at a time; a start while it runs makes it run once more
// only with rerun; nothing starts after close, and close waits.
func TestBackground(t *testing.T) {
	for _, rerun := range []bool{false, true} {
		var b background
		var j bgJob
		release := make(chan struct{})
		started := make(chan struct{}, 4)
		runs := 0
		work := func() {
			runs++
			started <- struct{}{}
			<-release
		}
		b.start(&j, rerun, work)
		<-started
		b.start(&j, rerun, work) // while it runs
		b.start(&j, rerun, work)
		release <- struct{}{}
		if rerun {
			<-started
			release <- struct{}{}
		}
		b.Wait()
		want := 1
		if rerun {
			want = 2
		}
		if runs != want {
			t.Fatalf("rerun %v: %d runs, want %d", rerun, runs, want)
		}
		if b.stopping() {
			t.Fatal("stopping before close")
		}
		b.close()
		b.start(&j, rerun, work)
		b.Wait()
		if runs != want || !b.stopping() {
			t.Fatalf("rerun %v: a start after close ran (%d runs)", rerun, runs)
		}
	}
}
