package store

import "sync"

// background runs the store's work that no commit waits for: the fold of
// diffs into the base (diff.go) and the merge of the transaction index
// (txmerge.go). At most one run of each job at a time, none started after
// close, and close waits for those running (a merge stops between chunks:
// stopping).
type background struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// bgJob is one kind of background work.
type bgJob struct {
	running bool
	again   bool // started while it ran: run once more
}

// start runs work in the background unless the job is running or the
// store is closing. With rerun, a start while the job runs makes it run
// once more after (the work may have looked before what asked for it).
func (b *background) start(j *bgJob, rerun bool, work func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if j.running {
		j.again = j.again || rerun
		return
	}
	j.running = true
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			work()
			b.mu.Lock()
			again := j.again && !b.closed
			j.again, j.running = false, again
			b.mu.Unlock()
			if !again {
				return
			}
		}
	}()
}

// stopping reports whether close has begun.
func (b *background) stopping() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// close starts nothing more and waits for the work running.
func (b *background) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
}

// Wait waits for the work running (tests: before Verify, which must not
// run beside a write).
func (b *background) Wait() { b.wg.Wait() }
